"""The export stage without the ONNX packages: it is listed with the onnx exporter, a spec is checked across
its stages (folders that would collide, compressors whose models the exporter refuses), and ``hone predict
--export`` picks a run's export by name, the last one by default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hone.plugins import load_plugins
from hone.registry import Component, NoParams, Origin, Registry, RegistryError
from hone.spec.loading import SpecError, load_spec, validate_spec
from hone_plugins.exporters import REFUSES
from hone_plugins.exporters.folders import last_export, pick_export, run_exports

EXPORTS = {"magnitude", "wanda", "structured", "weight-int8", "onnx-int8"}  # compressors whose models export to ONNX
TRAIN = {"type": "train", "name": "train"}


def spec(*stages: dict[str, Any], **data: str) -> dict[str, Any]:
    return {"model": "tiny", "task": "token-classification", "stages": list(stages),
            "data": {"reader": "conll", "train": "train.txt", "validation": "valid.txt", **data}}


def problems(*stages: dict[str, Any], **data: str) -> str:
    with pytest.raises(SpecError) as error:
        validate_spec(spec(*stages, **data), load_plugins(warn=False).registries)
    return str(error.value)


def test_hone_plugins_lists_the_export_stage_and_the_onnx_exporter(capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    assert main(["plugins", "--json"]) == 0
    plugins = {plugin["name"]: plugin for plugin in json.loads(capsys.readouterr().out)}
    assert "export" in plugins["hone.stages"]["components"]["stage"]
    assert plugins["hone.exporters"]["components"] == {"exporter": ["onnx"]} and plugins["hone.exporters"]["status"] == "ok"


def test_every_compressor_either_exports_or_is_refused_by_name() -> None:
    """A new compressor must be tried with the exporter (tests/hone_plugins/exporters/test_export_compressed.py) and put on one side."""
    registered = set(load_plugins(warn=False).registries["compressor"].names())
    assert EXPORTS.isdisjoint(REFUSES) and EXPORTS | set(REFUSES) == registered


def test_the_export_defaults_and_two_exports_that_would_share_a_folder() -> None:
    parsed = validate_spec(spec(TRAIN, {"type": "export"}), load_plugins(warn=False).registries)
    stage = parsed.stages[1]
    assert (stage.exporter.name, stage.folder(), stage.check_split, stage.check_batches, stage.batch_size) == \
        ("onnx", "onnx", None, 2, 8)
    assert stage.exporter.settings() == {"opset": 20, "atol": 1e-4, "dynamic_axes": True, "optimize": True}
    message = problems(TRAIN, {"type": "export"}, {"type": "export"})
    assert "stages[2]: stage '1-export' writes export/onnx/ too; give each export stage its own `name`" in message
    assert "writes export/onnx/ too" in problems({"type": "export", "name": "onnx"}, {"type": "export"})
    validate_spec(spec({"type": "export", "name": "before"}, TRAIN, {"type": "export", "name": "after"}),
                  load_plugins(warn=False).registries)


@pytest.mark.parametrize("compressor", sorted(REFUSES))
def test_exporting_after_a_compressor_the_exporter_refuses_is_an_error_naming_it(compressor: str) -> None:
    message = problems(TRAIN, {"type": "compress", "name": "squeeze", "compressor": compressor}, {"type": "export"})
    assert f"stages[2]: the onnx exporter cannot export a model compressed by '{compressor}' (stage 'squeeze'): " \
           f"{REFUSES[compressor]}" in message


def test_exports_before_a_refused_compressor_or_after_a_new_student_are_fine() -> None:
    registries = load_plugins(warn=False).registries
    validate_spec(spec(TRAIN, {"type": "export"}, {"type": "compress", "compressor": "dynamic-int8"}), registries)
    student = {"type": "distill", "name": "student", "student": {"config": {"num_hidden_layers": 1}}}
    validate_spec(spec(TRAIN, {"type": "compress", "compressor": "dynamic-int8"}, student, {"type": "export"}), registries)
    validate_spec(spec(TRAIN, {"type": "compress", "compressor": "onnx-int8"}, {"type": "export"}), registries)


def test_the_problems_are_reported_at_the_stage_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec(TRAIN, {"type": "compress", "compressor": "half"}, {"type": "export"}), sort_keys=False))
    with pytest.raises(SpecError, match=r"spec\.yaml:\d+: stages\[2\]: the onnx exporter cannot export a model compressed by 'half'"):
        load_spec(path)


def test_an_export_name_must_be_a_folder_name_and_check_split_must_exist() -> None:
    assert "an export stage's name is its folder in the run directory" in problems({"type": "export", "name": "../out"})
    assert "check_split 'test': the spec's data has no test split" in problems({"type": "export", "check_split": "test"})
    assert "Did you mean 'onnx'" in problems({"type": "export", "exporter": "onx"})


def test_an_exporter_declares_refusals_as_reasons_by_compressor_name() -> None:
    def component(refuses: Any) -> Component:
        return Component("exporter", "mine", lambda params: None, NoParams, Origin("test"), info={"refuses": refuses})

    with pytest.raises(RegistryError, match="refuses must map compressor names to the reason"):
        Registry("exporter").add(component(["half"]))
    with pytest.raises(RegistryError, match="refuses must map compressor names to the reason"):
        Registry("exporter").add(component({"half": ""}))
    Registry("exporter").add(component({"half": "needs float32"}))


def fake_run(tmp_path: Path, order: list[str], others: tuple[str, ...] = ()) -> Path:
    run = tmp_path / "run"
    for name in [*order, *others]:
        (run / "export" / name).mkdir(parents=True)
        (run / "export" / name / "onnx.json").write_text("{}")
    (run / "export" / ".onnx.x1.tmp").mkdir()  # an export being written is never picked
    stages = {f"{i}-export": {"exporter": "onnx", "folder": f"export/{name}", "max_abs_diff": 0.0} for i, name in enumerate(order)}
    (run / "metrics.json").write_text(json.dumps({"0-train": {"validation": {"loss": 1.0}}, **stages}))
    return run


def test_a_runs_exports_come_in_stage_order_and_the_last_one_is_the_default(tmp_path: Path) -> None:
    run = fake_run(tmp_path, ["zeta", "alpha"])
    assert [p.name for p in run_exports(run)] == ["zeta", "alpha"]
    assert last_export(run, lambda folder: True, "servable") == run / "export" / "alpha"
    assert last_export(run, lambda folder: folder.name == "zeta", "servable") == run / "export" / "zeta"
    with pytest.raises(Exception, match=r"none of this run's exports \(zeta, alpha\) is an OpenVINO export"):
        last_export(run, lambda folder: False, "an OpenVINO export")
    assert pick_export(run, "zeta") == run / "export" / "zeta"
    with pytest.raises(Exception, match=r"no export 'alfa'\. Did you mean 'alpha'\? Available: alpha, zeta"):
        pick_export(run, "alfa")
    assert last_export(tmp_path, lambda folder: True, "servable") is None


def test_predict_export_is_checked_before_loading_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"text": "paris"}\n')
    assert main(["predict", str(tmp_path), "--export", "onnx", "--input", str(inputs)]) == 2
    assert "--export onnx picks an exported model for a serving runtime: add --runtime" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--runtime", "onnxruntime", "--export", "onnx", "--input", str(inputs)]) == 2
    assert "this is not a run directory with exports (no export/ folder)" in capsys.readouterr().err


def test_the_export_stage_and_folder_modules_import_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, hone_plugins.stages, hone_plugins.exporters.folders; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
