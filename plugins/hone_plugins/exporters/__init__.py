"""Exporters: the ONNX exporter's parameters and factory.

A run keeps its export in ``export/onnx/`` (the files: :mod:`hone_plugins.exporters.layout`). This module imports
no torch; the implementation is :mod:`hone_plugins.exporters.onnx`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from hone_plugins.extras import require

if TYPE_CHECKING:
    import torch



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
