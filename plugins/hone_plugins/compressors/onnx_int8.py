"""The onnx-int8 compressor: export to ONNX, quantize with ONNX Runtime's dynamic int8, and run the
quantized graph in a module that evaluates, saves (safetensors) and reloads like any compressed model."""

from __future__ import annotations

import copy
import logging
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from hone.components import CompressionContext
from hone.run.devices import cpu_flags
from hone_plugins.exporters.onnx import OnnxExportError, check_model, check_onnx, default_batches, exporting, to_onnx
from hone_plugins.runtimes.onnxruntime import OnnxRuntimeModel, onnx_model_class

PROTOBUF_LIMIT = 2**31 - 2**26  # one serialized ONNX model (what a session reads from bytes), less headroom for the graph


@contextmanager
def _without_preprocessing_advice() -> Iterator[None]:
    """quantize_dynamic logs advice to run its shape pre-processing, which fails on dynamo-exported graphs."""
    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-processing" not in record.getMessage()

    root, drop = logging.getLogger(), Drop()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
"""/proc/cpuinfo flags of x86 int8 dot-product units (VPDPBUSD, AMX), which do not saturate."""


def saturating_int8_kernels(machine: str | None = None, flags: set[str] | None = None) -> bool:
    """Whether ONNX Runtime's u8s8 int8 matrix products may saturate here: an x86 CPU without VNNI, where they use
    VPMADDUBSW, whose 16-bit sums overflow (ONNX Runtime's quantization docs advise ``reduce_range`` there)."""
    machine = (machine or platform.machine()).lower()
    flags = cpu_flags() if flags is None else flags
    return machine in ("x86_64", "amd64", "i686", "x86") and flags is not None and not flags & set(VNNI_FLAGS)


class OnnxInt8:
    """int8 weights (MatMul, and embedding Gathers if asked), activations quantized per batch, run by ONNX Runtime."""

    def __init__(self, per_channel: bool = True, reduce_range: bool | str = "auto", embeddings: bool = True,
                 opset: int = 20, atol: float = 1e-4) -> None:
        self.per_channel, self.embeddings = per_channel, embeddings
        self.reduce_range = saturating_int8_kernels() if reduce_range == "auto" else bool(reduce_range)
        self.opset, self.atol = opset, atol

    def compress(self, model: torch.nn.Module, context: CompressionContext | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        check_model(model)
        parameters = sum(p.numel() for p in model.parameters())
        if parameters > PROTOBUF_LIMIT:
            raise OnnxExportError(f"the model has {parameters / 1e9:.1f} B parameters: its int8 ONNX graph would exceed "
                                  "the 2 GB a serialized ONNX model may hold")
        start = time.perf_counter()
        batches = default_batches(model, context.tokenizer if context is not None else None)
        with exporting(model), tempfile.TemporaryDirectory(prefix="hone-onnx-int8-") as tmp:
            fp32, int8 = Path(tmp, "model.onnx"), Path(tmp, "model.int8.onnx")
            to_onnx(model, batches[0], opset=self.opset).save(str(fp32))
            _, fp32_difference = check_onnx(str(fp32), model, batches, self.atol)
            fp32_bytes = sum(path.stat().st_size for path in Path(tmp).iterdir())
            with _without_preprocessing_advice():
                quantize_dynamic(fp32, int8, per_channel=self.per_channel, reduce_range=self.reduce_range,
                                 weight_type=QuantType.QInt8, op_types_to_quantize=self.op_types())
            data = int8.read_bytes()
            _, int8_difference = check_onnx(data, model, batches, atol=float("inf"))  # reported; max_drop judges it
        quantized = onnx_model_class(type(model).__name__)(copy.deepcopy(model.config), data=data)
        report = {
            "onnx_fp32_bytes": fp32_bytes, "onnx_int8_bytes": len(data), "opset": self.opset,
            "per_channel": self.per_channel, "reduce_range": self.reduce_range, "embeddings": self.embeddings,
            "quantized_ops": self.quantized_ops(data), "max_abs_diff_fp32": fp32_difference,
            "max_abs_diff_int8": int8_difference, "seconds": round(time.perf_counter() - start, 3),
            "recipe": {"onnx_bytes": len(data), "cpu_only": True},
        }
        return quantized, report

    def restore(self, model: torch.nn.Module, recipe: dict[str, Any]) -> OnnxRuntimeModel:
        """An empty ONNX Runtime model of the recorded size; the saved weights fill in the ONNX bytes."""
        return onnx_model_class(type(model).__name__)(model.config, size=int(recipe["onnx_bytes"]))

    def op_types(self) -> list[str]:
        return ["MatMul", "Gather"] if self.embeddings else ["MatMul"]

    @staticmethod
    def quantized_ops(data: bytes) -> dict[str, int]:
        """How many integer operators the quantized graph has, by type (MatMulInteger, ...)."""
        import onnx

        graph = onnx.load_model_from_string(data).graph
        counts = Counter(node.op_type for node in graph.node)
        return {op: n for op, n in sorted(counts.items()) if "integer" in op.lower() or "quantize" in op.lower()}
