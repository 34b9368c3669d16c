"""The model-selection recipe: candidates fine-tuned on one spec and ranked by a composite objective (tiny models)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model-selection"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("model_selection", EXAMPLE / "select.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_selection_and_spec_are_valid() -> None:
    from hone.spec.loading import load_spec

    config = load_script().load_config(EXAMPLE / "selection.yaml")
    spec, _ = load_spec(EXAMPLE / config["spec"])
    assert [c["name"] for c in config["candidates"]] == ["minilm-l6", "minilm-l3", "minilm-l1"]
    assert Path(spec.data.train).exists()


def test_candidates_are_ranked_by_the_composite_objective(tmp_path: Path, tiny_bert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared = yaml.safe_load((EXAMPLE / "ner.yaml").read_text())
    shared["model"] = str(tiny_bert)
    shared["stages"][0]["epochs"] = 1
    shared["data"]["limit"] = 16
    for split in ("train", "validation", "test"):
        shared["data"][split] = str((EXAMPLE / shared["data"][split]).resolve())
    (tmp_path / "ner.yaml").write_text(yaml.safe_dump(shared))
    (tmp_path / "selection.yaml").write_text(yaml.safe_dump({
        "spec": "ner.yaml",
        "candidates": [{"name": "full", "model": str(tiny_bert)}, {"name": "one-layer", "model": str(tiny_bert), "layers": 1}],
        # a huge size penalty: the smaller model must win whatever its F1
        "objective": {"metric": "entity_f1", "penalties": {"latency_ms": 0.0, "parameters_m": 1000.0}},
        "latency": {"sentences": 3},
    }))
    assert load_script().main([str(tmp_path / "selection.yaml"), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "ranking.csv").open()))
    assert [r["candidate"] for r in rows] == ["one-layer", "full"]
    assert float(rows[0]["parameters_m"]) < float(rows[1]["parameters_m"])
    assert all(float(r["latency_ms"]) > 0 for r in rows)
    for row in rows:
        assert float(row["score"]) == pytest.approx(float(row["entity_f1"]) - 1000.0 * float(row["parameters_m"]), abs=1e-3)
    assert (tmp_path / "out" / "compare.png").exists()
    assert "best: one-layer" in capsys.readouterr().out


def test_an_unknown_penalty_is_refused(tmp_path: Path) -> None:
    from hone.errors import HoneError

    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"spec": "x.yaml", "candidates": [{"name": "a", "model": "m"}],
                                                    "objective": {"metric": "f1", "penalties": {"latency": 1}}}))
    with pytest.raises(HoneError, match="unknown measure"):
        load_script().load_config(tmp_path / "s.yaml")
