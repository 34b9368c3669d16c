"""The ONNX components without the ONNX packages: light imports, params, and the install hint when
onnx / onnxscript / onnxruntime are missing (these tests need none of them)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hone.plugins import load_plugins
from hone_plugins.exporters import OnnxExportParams, onnx_exporter
from hone_plugins.extras import MissingExtraError
from hone_plugins.runtimes import onnxruntime_runtime

HEAVY = ("torch", "transformers", "onnx", "onnxscript", "onnxruntime")


def test_light_onnx_modules_import_no_torch_or_onnx() -> None:
    modules = "hone_plugins.exporters, hone_plugins.runtimes, hone_plugins.extras, hone_plugins.compressors"
    code = f"import sys, {modules}; print([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_export_params_are_checked() -> None:
    assert OnnxExportParams().model_dump() == {"opset": 20, "atol": 1e-4, "dynamic_axes": True, "optimize": True}
    with pytest.raises(ValidationError, match="greater than or equal to 18"):
        OnnxExportParams(opset=11)
    with pytest.raises(ValidationError, match="Extra inputs"):
        OnnxExportParams.model_validate({"opsett": 20})


@pytest.fixture
def without_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec

    def missing(name: str, *args: Any) -> Any:
        return None if name == "onnxruntime" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", missing)


@pytest.mark.usefixtures("without_onnxruntime")
def test_every_onnx_component_names_the_install_command_when_onnxruntime_is_missing(tmp_path: Path) -> None:
    hint = r"needs onnxruntime, which is not installed: pip install 'hone-ml\[onnx\]'"
    with pytest.raises(MissingExtraError, match=f"onnx-int8 compressor {hint}"):
        load_plugins(warn=False).registries.get("compressor", "onnx-int8").build({})
    with pytest.raises(MissingExtraError, match=f"onnx exporter {hint}"):
        onnx_exporter(OnnxExportParams())
    with pytest.raises(MissingExtraError, match=f"onnxruntime runtime {hint}"):
        onnxruntime_runtime(tmp_path)


@pytest.mark.usefixtures("without_onnxruntime")
def test_predict_with_onnxruntime_missing_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "paris"}\n')
    assert main(["predict", str(tmp_path), "--runtime", "onnxruntime", "--input", str(source)]) == 2
    assert "pip install 'hone-ml[onnx]'" in capsys.readouterr().err


def test_predict_onnxruntime_refuses_a_gpu_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "paris"}\n')
    assert main(["predict", str(tmp_path), "--runtime", "onnxruntime", "--device", "cuda", "--input", str(source)]) == 2
    assert "--runtime onnxruntime runs on the CPU" in capsys.readouterr().err
