"""Which compressors' models the onnx exporter writes: pruned and hand-quantized models export and match the
compressed model; quantized layers, tensor subclasses and half precision are refused at once, before any work."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest

for _module in ("onnx", "onnxscript", "onnxruntime"):
    pytest.importorskip(_module)

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from hone.components import CompressionContext
from hone.plugins import load_plugins
from hone_plugins.exporters import REFUSES, OnnxExportParams, onnx_exporter
from hone_plugins.exporters.onnx import OnnxExportError, default_batches
from hone_plugins.runtimes.onnxruntime import load_export

from .test_export_light import EXPORTS

LABELS = ["O", "B-LOC", "I-LOC"]
SETTINGS: dict[str, dict[str, Any]] = {
    "magnitude": {"sparsity": 0.5}, "wanda": {"sparsity": 0.5, "calibration_batches": 1, "batch_size": 2},
    "structured": {"heads_fraction": 0.5, "ffn_fraction": 0.5, "importance": "magnitude"},
    "half": {"dtype": "bf16"},
}
needs_torchao = pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao is not installed")


def compressed(tiny_bert: Path, name: str) -> tuple[torch.nn.Module, Any]:
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=len(LABELS)).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    batches = default_batches(model, tokenizer)
    context = CompressionContext(tokenizer=tokenizer, calibration_batches=lambda count, size: batches[:count],
                                 loss=lambda m, batch: m(**batch).logits.float().mean())
    compressor = load_plugins(warn=False).registries.get("compressor", name).build(SETTINGS.get(name, {}))
    return compressor.compress(model, context)[0], tokenizer


def logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return model(**batch).logits.float()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_a_compressed_model_exports_and_serves_its_own_outputs(tiny_bert: Path, tmp_path: Path, name: str) -> None:
    model, tokenizer = compressed(tiny_bert, name)
    report = onnx_exporter(OnnxExportParams()).export(model, tokenizer, tmp_path / "onnx", task="token-classification",
                                                      labels=LABELS)
    assert report["max_abs_diff"] <= 1e-4
    assert report["reference"].startswith("onnxruntime" if name == "onnx-int8" else "torch")
    served, _, meta = load_export(tmp_path / "onnx")
    assert meta["labels"] == LABELS and meta["dynamic_axes"] is True
    for batch in default_batches(model, tokenizer):
        assert torch.allclose(logits(served, batch), logits(model, batch), atol=1e-4)


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_torchao) if "weight-only" in n else n
                                  for n in sorted(REFUSES) if n != "int4-weight-only"])  # int4: refused on a CPU already
def test_a_model_the_exporter_cannot_write_is_refused_at_once(tiny_bert: Path, tmp_path: Path, name: str) -> None:
    model, tokenizer = compressed(tiny_bert, name)
    exporter = onnx_exporter(OnnxExportParams())
    start = time.perf_counter()
    with pytest.raises(OnnxExportError, match="torch.ao quantized layers|tensor subclasses|float32 weights"):
        exporter.check(model)
    with pytest.raises(OnnxExportError):
        exporter.export(model, tokenizer, tmp_path / "onnx")
    assert time.perf_counter() - start < 2.0 and not (tmp_path / "onnx").exists()
