"""A stage kind's own checks: the files it names, at their line, against the spec's folder; check() before stage one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hone.errors import HoneError
from hone.run.runner import run
from hone.spec.loading import SpecError, load_spec

from tests.reproducible import reproducible

from tests.runs import ner_spec, write_spec

PROBE = '''
from pathlib import Path

from pydantic import ValidationInfo, model_validator

from hone.errors import HoneError
from hone.hookspecs import hookimpl
from hone.spec.models import StageSpec, spec_dir


class ProbeStage(StageSpec):
    notes: str

    @model_validator(mode="after")
    def _exists(self, info: ValidationInfo) -> "ProbeStage":
        base = spec_dir(info)
        if base is not None and not (base / self.notes).exists():
            raise ValueError(f"notes: no file {base / self.notes}")
        return self

    def resolve_paths(self, local):
        return self.model_copy(update={"notes": local.path(self.notes)})


class Probe:
    def __init__(self, spec):
        self.spec = spec

    def check(self, ctx, index):
        if "refuse" in Path(self.spec.notes).read_text():
            raise HoneError(f"stage {ctx.stage_names[index]} refuses")

    def run(self, ctx, index, resume=None):
        return {"notes": Path(self.spec.notes).read_text()}


@hookimpl
def register_stages(register):
    register("probe", Probe, ProbeStage)
'''


@pytest.fixture
def probe_spec(tmp_path: Path, tiny_bert: Path) -> dict:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "probe.py").write_text(PROBE)
    spec = ner_spec(tiny_bert, plugins_dir=["plugins"])
    spec["stages"] = [spec["stages"][0], {"type": "probe", "name": "probe", "notes": "notes/probe.txt"}]
    return spec


def test_a_stage_names_a_file_relative_to_the_spec(tmp_path: Path, probe_spec: dict,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "probe.txt").write_text("fine")
    probe_spec["stages"] = probe_spec["stages"][1:]
    spec_file = write_spec(tmp_path, probe_spec)
    monkeypatch.chdir(tmp_path / "notes")  # the working directory plays no part
    spec, host = load_spec(spec_file)
    assert spec.stages[0].notes == str(tmp_path / "notes" / "probe.txt")
    run_dir = run(spec, host, out=tmp_path / "run")
    assert reproducible(json.loads((run_dir / "metrics.json").read_text()))["probe"] == {"notes": "fine"}


def test_a_missing_file_is_reported_at_its_stage_line(tmp_path: Path, probe_spec: dict) -> None:
    with pytest.raises(SpecError, match=r"spec\.yaml:\d+: stages\[1\]: notes: no file .*notes/probe\.txt"):
        load_spec(write_spec(tmp_path, probe_spec))


def test_a_stage_check_refuses_before_the_first_stage_runs(tmp_path: Path, probe_spec: dict) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "probe.txt").write_text("refuse")
    spec, host = load_spec(write_spec(tmp_path, probe_spec))
    with pytest.raises(HoneError, match="stage probe refuses"):
        run(spec, host, out=tmp_path / "run")
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["status"] == "failed" and state["completed"] == [] and not (tmp_path / "run" / "checkpoints").exists()
