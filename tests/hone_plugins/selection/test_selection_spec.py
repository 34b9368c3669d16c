"""Bad `selection:` sections are refused before any work, each problem at its line with what would be valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hone.cli import main
from hone.spec.loading import SpecError, load_spec
from hone_plugins.selection.check import check_selection

from .conftest import selection_spec, two_candidates


def spec_text(tiny_bert: Path, selection: str) -> str:
    """A selection spec whose section is ``selection`` as written (so the test knows its lines)."""
    text = yaml.safe_dump({k: v for k, v in selection_spec(tiny_bert, {}).items() if k != "selection"}, sort_keys=False)
    return text + "selection:\n" + selection


def issues(path: Path) -> list[tuple[str, int | None, str]]:
    with pytest.raises(SpecError) as error:
        spec, _ = load_spec(path)
        check_selection(path, spec)
    return [(issue.path, issue.line, issue.message) for issue in error.value.issues]


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if fragment in line)


def test_misspelt_fields_and_unknown_measures_get_lines_and_suggestions(tmp_path: Path, tiny_bert: Path) -> None:
    text = spec_text(tiny_bert, """\
  candidates:
    - name: a
      modle: x
    - name: a
      layers: 0
  objective:
    metric: test.entity_f2
    penalties: {latency: 0.1, size_mb: -1}
  latncy: {examples: 3}
""")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    found = issues(path)
    by_path = {p: (line, message) for p, line, message in found}
    assert by_path["selection.candidates[0].modle"][0] == line_of(text, "modle:")
    assert "Did you mean 'model'?" in by_path["selection.candidates[0].modle"][1]
    assert by_path["selection.candidates[1].layers"][0] == line_of(text, "layers: 0")
    assert "keep at least one layer" in by_path["selection.candidates[1].layers"][1]
    assert "Did you mean 'latency_ms'?" in by_path["selection.objective.penalties.latency"][1]
    assert by_path["selection.objective.penalties.size_mb"][0] == line_of(text, "penalties:")
    assert "Did you mean 'latency'?" in by_path["selection.latncy"][1]


def test_a_duplicate_name_and_a_result_no_stage_reports(tmp_path: Path, tiny_bert: Path) -> None:
    text = spec_text(tiny_bert, """\
  candidates:
    - name: a
    - name: a
  objective: test.entity_f1
""")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert issues(path) == [("selection.candidates[1].name", line_of(text, "candidates:") + 2,
                             "candidate 'a' is named twice (also candidates[0]): names must differ")]
    # a result no stage reports: at the objective, with the name it resembles (the section's own fields validate first)
    path.write_text(text.replace("name: a\n  objective: test.entity_f1", "name: b\n  objective: test.entity_f2"))
    [(where, line, message)] = issues(path)
    assert where.startswith("selection.objective") and line == line_of(text, "objective:")
    assert "'entity_f2' is not among the results stage 'test' reports. Did you mean 'test.entity_f1'?" in message


def test_cuts_beyond_the_model_missing_folders_and_splits_are_found_before_work(tmp_path: Path,
                                                                                tiny_bert: Path) -> None:
    data = selection_spec(tiny_bert, {
        "candidates": [{"name": "deep", "layers": 3}, {"name": "picked", "model": str(tiny_bert), "layers": [0, 5]},
                       {"name": "gone", "model": "./no-such-model"}],
        "objective": "test.entity_f1", "latency": {"split": "test"}})
    del data["data"]["test"]  # the evaluate stage named `test` scores the validation split: no test split to time
    data["stages"][1]["split"] = "validation"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    text = path.read_text()
    found = {p: (line, message) for p, line, message in issues(path)}
    assert "has 2 layers (0..1): keep at most 2" in found["selection.candidates[0].layers"][1]
    assert "has 2 layers" in found["selection.candidates[1].layers"][1]
    assert found["selection.candidates[2].model"] == (line_of(text, "no-such-model"),
                                                      f"{tmp_path / 'no-such-model'}: model folder not found")
    assert found["selection.latency.split"][1] == ("the spec's data has no test split to time predictions on; "
                                                   "use one of train, validation")


def test_hone_select_reports_problems_at_file_line_and_trains_nothing(tmp_path: Path, tiny_bert: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    selection = two_candidates(tiny_bert)
    selection["objective"]["penalties"] = {"latency_ms": 0.1, "sise_mb": 1}
    data = selection_spec(tiny_bert, selection)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["select", str(path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    line = line_of(path.read_text(), "sise_mb")
    expected = "selection.objective.penalties.sise_mb: unknown field 'sise_mb'. Did you mean 'size_mb'?"
    assert f"{path}:{line}: {expected}" in error
    assert not (tmp_path / "out").exists()


def test_a_spec_without_a_selection_section_is_refused(tmp_path: Path, tiny_bert: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data: dict[str, Any] = selection_spec(tiny_bert, {})
    data.pop("selection")
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["select", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "`hone select` needs a `selection:` section" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
