"""A stage kind from a plugins directory (CONTRIBUTING's worked example) in hone run, resume, hone search and validate."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hone.errors import Interrupted
from hone.run.events import read_events
from hone.run.runner import run
from hone.spec.loading import SpecError, load_spec
from hone_plugins.search.command import search_command

from tests.conftest import REPO
from tests.reproducible import reproducible
from tests.runs import InterruptAt, ner_spec, write_spec

EXAMPLE = REPO / "examples" / "stage-plugin" / "acme_weight_noise.py"
NOISE = {"type": "acme-weight-noise", "name": "noise", "scale": 0.5, "seed": 3}


def noise_spec(tmp_path: Path, model: Path, **noise: Any) -> dict[str, Any]:
    (tmp_path / "plugins").mkdir(exist_ok=True)
    shutil.copy(EXAMPLE, tmp_path / "plugins" / EXAMPLE.name)
    spec = ner_spec(model, plugins_dir=["plugins"])
    head, train, test = spec["stages"]
    spec["stages"] = [head, {**NOISE, **noise}, train, test]
    spec["data"]["limit"] = 24  # 3 batches of 8 an epoch
    return spec


def run_spec(tmp_path: Path, spec: dict[str, Any], out: str, **kwargs: Any) -> Path:
    loaded, host = load_spec(write_spec(tmp_path, spec))
    return run(loaded, host, out=tmp_path / out, **kwargs)


def starts(run_dir: Path, stage: str) -> int:
    return sum(e["event"] == "stage_start" and e["stage"] == stage for e in read_events(run_dir / "events.jsonl"))


def test_the_plugin_stage_runs_and_changes_the_model(tmp_path: Path, tiny_bert: Path) -> None:
    noisy = run_spec(tmp_path, noise_spec(tmp_path, tiny_bert), "noisy")
    quiet = run_spec(tmp_path, noise_spec(tmp_path, tiny_bert, scale=0.0), "quiet")
    results = reproducible(json.loads((noisy / "metrics.json").read_text()))
    assert results["noise"] == {"perturbed_tensors": results["noise"]["perturbed_tensors"], "scale": 0.5}
    assert results["noise"]["perturbed_tensors"] > 0
    assert reproducible(json.loads((quiet / "metrics.json").read_text()))["all"] != results["all"]  # the noise changed training
    spec = (noisy / "spec.yaml").read_text()
    assert "type: acme-weight-noise" in spec and "seed: 3" in spec


def test_an_interrupted_run_resumes_without_running_the_finished_plugin_stage_again(tmp_path: Path, tiny_bert: Path) -> None:
    spec = noise_spec(tmp_path, tiny_bert)
    reference = run_spec(tmp_path, spec, "reference")
    with pytest.raises(Interrupted):
        run_spec(tmp_path, spec, "resumed", callbacks=[("interrupt", InterruptAt("all", 2))])
    resumed = run_spec(tmp_path, spec, "resumed", resume=True)
    assert reproducible(json.loads((resumed / "metrics.json").read_text())) == reproducible(json.loads((reference / "metrics.json").read_text()))
    assert starts(resumed, "noise") == 1  # its weights came back from the stage's checkpoint, not from noising twice


def test_hone_search_sweeps_a_field_of_the_plugin_stage(tmp_path: Path, tiny_bert: Path) -> None:
    spec = noise_spec(tmp_path, tiny_bert)
    spec["stages"][2]["epochs"] = 1
    spec["search"] = {"searcher": "grid", "objectives": "test.entity_f1", "space": {"stages[1].scale": [0.0, 0.5]}}
    summary = search_command(write_spec(tmp_path, spec), tmp_path / "search", quiet=True)
    assert summary is not None and summary["status"] == "completed" and summary["trials"]["complete"] == 2
    with (tmp_path / "search" / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(float(row["stages[1].scale"]) for row in rows) == [0.0, 0.5]
    for row in rows:
        trial = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
        assert trial["noise"]["scale"] == float(row["stages[1].scale"])


@pytest.mark.parametrize(("stage", "expected"), [
    ({"scale": -1}, "stages[1].scale: Input should be greater than or equal to 0"),
    ({"type": "acme-weight-nois"}, "Did you mean 'acme-weight-noise'?"),
    ({"scael": 0.1}, "Did you mean 'scale'?"),
])
def test_the_plugin_stage_is_validated_like_a_built_in_one(tmp_path: Path, tiny_bert: Path, stage: dict[str, Any],
                                                          expected: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(tmp_path, noise_spec(tmp_path, tiny_bert, **stage)))
    assert expected in str(caught.value)
