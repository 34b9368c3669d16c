"""Hostile files and settings: pickles and YAML tags are refused, remote code needs the spec's consent,
only allowed plugins load, and nothing is written outside the run directory."""

from __future__ import annotations

import builtins
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hone.run.checkpoint import CheckpointError
from hone.errors import HoneError
from hone.paths import inside_run_dir
from hone.plugins import load_plugins
from hone.run.runner import run
from hone.spec.loading import SpecError, load_spec

from .helpers import STAGE_EXAMPLES, hone, ner_spec, read_json, subprocess_env, with_stages, write_plugin, write_spec


class Payload:
    """Unpickling this opens (creates) ``marker``: what a malicious pickle would do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.open, (str(self.marker), "w"))


def malicious_pickle(path: Path, marker: Path, content: dict[str, Any]) -> None:
    import torch

    torch.save({**content, "payload": Payload(marker)}, path)


def test_the_payload_really_runs_when_unpickled_unsafely(tmp_path: Path) -> None:
    import torch

    malicious_pickle(tmp_path / "evil.pt", tmp_path / "marker", {})
    torch.load(tmp_path / "evil.pt", weights_only=False)  # what hone never does
    assert (tmp_path / "marker").exists()


class CrashAfter:
    def __init__(self, step: int) -> None:
        self.step = step

    def on_checkpoint_saved(self, event: str, data: dict[str, Any]) -> None:
        if data["step"] == self.step:
            raise HoneError("crash injected")


def test_resume_refuses_a_malicious_training_state(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"][0]["checkpoint_steps"] = 2
    spec, host = load_spec(write_spec(tmp_path, spec))
    with pytest.raises(HoneError, match="crash injected"):
        run(spec, host, out=tmp_path / "run", callbacks=[("crash", CrashAfter(4))])
    folder = tmp_path / "run" / "checkpoints" / "stage0-step0000004"
    marker = tmp_path / "pwned"
    malicious_pickle(folder / "training_state.pt", marker, {"stage": 0, "done": False})
    manifest = read_json(folder / "manifest.json")  # a thorough attacker fixes the checksum too
    manifest["training_state.pt"] = hashlib.sha256((folder / "training_state.pt").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"stage0-step0000004/training_state.pt: refused to load \(UnpicklingError"):
        run(spec, host, out=tmp_path / "run", resume=True)
    assert not marker.exists()
    assert read_json(tmp_path / "run" / "state.json")["status"] == "failed"


def test_resume_refuses_a_spec_yaml_that_would_build_objects(tmp_path: Path, tiny_bert: Path) -> None:
    spec, host = load_spec(write_spec(tmp_path, ner_spec(tiny_bert, stages=[{"type": "evaluate", "split": "test"}])))
    run(spec, host, out=tmp_path / "run")
    marker = tmp_path / "pwned"
    (tmp_path / "run" / "spec.yaml").write_text(f"model: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    with pytest.raises(HoneError, match=r"spec.yaml: cannot read it \(ConstructorError"):
        run(spec, host, out=tmp_path / "run", resume=True)
    assert not marker.exists()


@pytest.mark.slow
def test_predict_refuses_a_malicious_pickled_model(tmp_path: Path, tiny_bert: Path) -> None:
    model = tmp_path / "run" / "model"
    shutil.copytree(tiny_bert, model)
    (model / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    malicious_pickle(model / "pytorch_model.bin", marker, {})
    (model / "hone.json").write_text(json.dumps({"task": "token-classification", "task_params": {}, "labels": ["O", "B-PER"]}))
    result = hone(tmp_path, "predict", str(tmp_path / "run"), stdin='{"text": "Ana ran"}\n')
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot load a model (UnpicklingError: Weights only load failed" in result.stderr
    assert not marker.exists()


REMOTE_CODE = '''
import pathlib
pathlib.Path({marker!r}).touch()
from transformers import BertConfig


class EvilConfig(BertConfig):
    model_type = "hone-evil"
'''


@pytest.mark.slow
@pytest.mark.parametrize("trust", [False, True])
def test_remote_code_runs_only_when_the_spec_says_so_and_then_with_a_warning(tmp_path: Path, tiny_bert: Path, trust: bool) -> None:
    model = tmp_path / "remote-model"
    shutil.copytree(tiny_bert, model)
    marker = tmp_path / "remote-code-ran"
    config = read_json(model / "config.json")
    config.update(model_type="hone-evil", auto_map={"AutoConfig": "evil.EvilConfig"})
    (model / "config.json").write_text(json.dumps(config))
    (model / "evil.py").write_text(REMOTE_CODE.format(marker=str(marker)))
    spec = ner_spec(tiny_bert, model={"source": str(model), "trust_remote_code": trust}, stages=[{"type": "evaluate", "split": "test"}])
    result = hone(tmp_path, "run", str(write_spec(tmp_path, spec)), "--out", "run", "-q", HF_HOME=str(tmp_path / "hf"))
    assert "Traceback" not in result.stderr
    warned = f"warning: model.trust_remote_code is on: code from '{model}' will run" in result.stderr
    assert marker.exists() is trust and warned is trust
    if not trust:
        assert result.returncode == 2
        assert "cannot load (ValueError: The repository" in result.stderr and "contains custom code" in result.stderr


MARKER_PLUGIN = '''
import pathlib
pathlib.Path({marker!r}).touch()
from hone.hookspecs import hookimpl


@hookimpl
def register_metrics(register):
    register("sneaky", lambda params: None)
'''


def test_the_allow_list_keeps_a_specs_plugins_dir_module_from_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "plugin-ran"
    write_plugin(tmp_path / "plugins", "sneaky", MARKER_PLUGIN.format(marker=str(marker)))
    spec = ner_spec(tmp_path, plugins_dir=["plugins"])
    spec["stages"][1]["metrics"] = ["sneaky"]
    monkeypatch.setenv("HONE_ALLOW_PLUGINS", " hone-ml , ")
    with pytest.raises(SpecError, match=r"stages\[1\]\.metrics\[0\]\.name: Unknown metric 'sneaky'"):
        load_spec(write_spec(tmp_path, spec))
    assert not marker.exists()
    monkeypatch.setenv("HONE_ALLOW_PLUGINS", "hone-ml,sneaky")
    load_spec(write_spec(tmp_path, spec))
    assert marker.exists()


def test_disabling_wins_over_allowing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HONE_ALLOW_PLUGINS", "hone.metrics,hone.readers")
    monkeypatch.setenv("HONE_DISABLE_PLUGINS", "hone.metrics")
    host = load_plugins(warn=False)
    status = {info.name: info.status for info in host.plugins}
    assert status["hone.metrics"] == "disabled" and status["hone.readers"] == "ok" and status["hone.optimizers"] == "disabled"


def test_the_allow_list_applies_to_the_cli(tmp_path: Path) -> None:
    marker = tmp_path / "plugin-ran"
    write_plugin(tmp_path / "plugins", "sneaky", MARKER_PLUGIN.format(marker=str(marker)))
    result = hone(tmp_path, "--plugins-dir", "plugins", "plugins", "--json", HONE_ALLOW_PLUGINS="hone-ml")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert (rows["sneaky"]["status"], rows["sneaky"]["error"]) == ("disabled", "not in HONE_ALLOW_PLUGINS")
    assert rows["hone.metrics"]["status"] == "ok" and not marker.exists()


@pytest.mark.parametrize("filename", ["../../escape.csv", "/tmp/escape.csv", "a/../../escape.csv", "..\\escape.csv", "C:\\escape.csv"])
def test_a_callback_file_outside_the_run_directory_is_refused(tmp_path: Path, filename: str) -> None:
    spec = ner_spec(tmp_path, callbacks=[{"name": "csv-logger", "filename": filename}])
    with pytest.raises(SpecError, match=r"callbacks\[0\]\.filename: .*(leaves the run directory|absolute path)"):
        load_spec(write_spec(tmp_path, spec))


@pytest.mark.parametrize("name", ["../escape", "a/b", "/abs", "..", ".hidden", "a\\b", ""])
def test_a_run_name_that_is_not_one_folder_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(SpecError, match=r"name: String should match pattern"):
        load_spec(write_spec(tmp_path, ner_spec(tmp_path, name=name)))


def test_a_symlink_cannot_carry_output_out_of_the_run_directory(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "run" / "logs").symlink_to(tmp_path / "outside")
    assert inside_run_dir(tmp_path / "run", "metrics.csv") == tmp_path / "run" / "metrics.csv"
    with pytest.raises(HoneError, match="outside the run directory"):
        inside_run_dir(tmp_path / "run", "logs/metrics.csv")


def test_every_output_file_parameter_of_every_plugin_refuses_to_escape() -> None:
    """Covers the components other plugins add later: a file-name parameter must use hone.paths.RunFileName."""
    host = load_plugins(warn=False)
    checked = []
    for kind, registry in host.registries.by_kind.items():
        for component in registry:
            for field in component.params.model_fields:
                if any(word in field for word in ("filename", "file_name", "output", "out_dir", "report_file")):
                    checked.append(f"{kind} {component.name}.{field}")
                    with pytest.raises(ValueError):
                        component.params.model_validate({field: "../../escape"})
    assert "callback csv-logger.filename" in checked


def test_paths_in_a_spec_are_relative_to_the_spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "project" / "data").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    spec = ner_spec(tmp_path, model="./model", output_dir="runs", plugins_dir=["plugins"])
    spec["data"] = {"reader": "conll", "train": "data/train.txt", "test": "../shared/test.txt"}
    spec_file = write_spec(tmp_path / "project", spec)
    (tmp_path / "project" / "plugins").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    loaded, _ = load_spec(Path("..") / "project" / "spec.yaml")
    project = spec_file.parent.resolve()
    assert loaded.data.train == str(project / "data" / "train.txt")
    assert loaded.data.test == str(project.parent / "shared" / "test.txt")
    assert (loaded.output_dir, loaded.model.source) == (str(project / "runs"), str(project / "model"))
    assert loaded.plugins_dir == [str(project / "plugins")]


def test_every_stage_type_has_a_reliability_example() -> None:
    missing = sorted(set(load_plugins().registries["stage"].names()) - set(STAGE_EXAMPLES))
    assert not missing, f"add a minimal stage of type {missing} to STAGE_EXAMPLES in tests/reliability/helpers.py"


def snapshot(root: Path, skip: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if skip not in p.parents and p != skip}


@pytest.mark.parametrize("stage_type", sorted(STAGE_EXAMPLES))
def test_a_run_writes_only_inside_its_run_directory(tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch, stage_type: str) -> None:
    spec = with_stages(ner_spec(tiny_bert, callbacks=["csv-logger"]), tmp_path / "project", "train", stage_type)
    spec_file = write_spec(tmp_path / "project", spec)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    before = snapshot(tmp_path, tmp_path / "run")
    run(*load_spec(spec_file), out=tmp_path / "run")
    assert snapshot(tmp_path, tmp_path / "run") == before
    assert read_json(tmp_path / "run" / "state.json")["status"] == "completed"


@pytest.mark.slow
def test_hone_run_through_the_cli_writes_only_the_run_directory(tmp_path: Path, tiny_bert: Path) -> None:
    spec_file = write_spec(tmp_path / "project", ner_spec(tiny_bert, callbacks=["csv-logger"]))
    (tmp_path / "cwd").mkdir()
    before = snapshot(tmp_path, tmp_path / "project" / "runs")
    result = subprocess.run([sys.executable, "-m", "hone", "run", str(spec_file), "-q"], capture_output=True, text=True,
                            cwd=tmp_path / "cwd", env=subprocess_env(tmp_path / "cwd"), timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    after = snapshot(tmp_path, tmp_path / "project" / "runs")
    assert {p for p in after - before if not p.startswith("cwd/cache")} == set()
    assert (tmp_path / "project" / "runs" / "reliability" / "metrics.json").exists()
