"""Exporters for ``export`` stages: the ONNX exporter's parameters and factory, and the export folder's layout.

An export folder holds ``model.onnx`` (plus ``model.onnx.data`` beyond 2 GB), ``onnx.json`` (what a
runtime needs: task, labels, input and output names, opset), ``config.json`` and the tokenizer. A
run keeps each export stage's folder in ``export/<stage name>/``, ``export/onnx/`` for an unnamed
stage (see :mod:`hone_plugins.exporters.folders`, the files: :mod:`hone_plugins.exporters.layout`). This module imports no torch; the implementation
is :mod:`hone_plugins.exporters.onnx`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from hone.hookspecs import hookimpl
from hone.registry import Register
from hone_plugins.extras import require

if TYPE_CHECKING:
    import torch

TORCHAO = ("torchao's quantized weights (tensor subclasses) do not go through torch.onnx; export before this "
           "stage, or compress with onnx-int8 (ONNX Runtime's int8) instead")
REFUSES = {  # compressors whose output does not export (measured on a tiny BERT, torch 2.13, onnxscript 0.7)
    "dynamic-int8": "torch.ao quantized layers have no ONNX export; export before this stage, or compress with "
                    "onnx-int8 (ONNX Runtime's dynamic int8) instead",
    "half": "the export is checked with ONNX Runtime on the CPU, which needs float32 weights; export before this stage",
    "int8-weight-only": TORCHAO, "float8-weight-only": TORCHAO, "int4-weight-only": TORCHAO,
}


class OnnxExportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opset: int = Field(20, ge=18, description="ONNX opset to target; 18 is the oldest the torch.onnx (dynamo) exporter "
                       "writes directly, 20 runs on onnxruntime 1.17 and later.")
    atol: float = Field(1e-4, ge=0, description="Largest absolute difference allowed between ONNX Runtime's logits and "
                        "torch's on the check batches; the export fails beyond it.")
    dynamic_axes: bool = Field(True, description="Batch size and sequence length are free at run time; false: fixed to "
                               "the first sample batch's shape.")
    optimize: bool = Field(True, description="Let torch.onnx optimize the graph (constant folding, dead code removal).")


class OnnxExporter:
    """Exports an in-memory model to an ONNX folder, checked against torch with ONNX Runtime."""

    def __init__(self, params: OnnxExportParams) -> None:
        self.params = params

    def check(self, model: Any) -> None:
        """Refuse, at once, a model that cannot be written as a float32 ONNX graph (quantized layers, fp16...)."""
        from hone_plugins.exporters.onnx import check_model

        check_model(model)

    def export(self, model: Any, tokenizer: Any, folder: Path, *, task: str | None = None,
               task_params: Mapping[str, Any] | None = None, labels: Sequence[str] | None = None,
               sample_batches: Sequence[Mapping[str, torch.Tensor]] | None = None) -> dict[str, Any]:
        """Write ``folder`` atomically; return the report (size, opset, max difference, seconds)."""
        from hone_plugins.exporters.onnx import export_onnx

        p = self.params
        return export_onnx(model, tokenizer, folder, sample_batches=sample_batches, opset=p.opset, atol=p.atol,
                           dynamic_axes=p.dynamic_axes, optimize=p.optimize, task=task, task_params=task_params,
                           labels=labels)


def onnx_exporter(params: OnnxExportParams) -> OnnxExporter:
    """ONNX (torch.onnx dynamo export), checked with ONNX Runtime against torch at two shapes."""
    require("the onnx exporter")
    return OnnxExporter(params)


@hookimpl
def register_exporters(register: Register) -> None:
    register("onnx", onnx_exporter, OnnxExportParams, refuses=REFUSES)
