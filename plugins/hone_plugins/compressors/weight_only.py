"""Weight-only quantization with torchao (``quantize_``): int8 and float8 anywhere torch runs, int4 on recent
NVIDIA GPUs. The weights become torchao tensor subclasses; hone saves their inner plain tensors and
``restore`` re-quantizes a fresh model so they load back (see :mod:`hone_plugins.formats.compressed`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import is_traceable_wrapper_subclass

from hone.components import CompressionContext
from hone_plugins.compressors.layers import select_linear

INSTALL = "pip install 'hone-ml[torchao]'"
KINDS = ("int8", "float8", "int4")
MIN_TORCHAO = (0, 18)  # Int8WeightOnlyConfig on Int8Tensor and Float8WeightOnlyConfig(granularity=) by default
INT4_CAPABILITY = (8, 0)  # torchao's int4 weight-only kernel (tinygemm) needs tensor cores of Ampere or newer


def import_torchao() -> Any:
    """torchao (0.18 or newer: its v2 weight-only configs), or an error naming the install command."""
    try:
        import torchao
        import torchao.quantization  # noqa: F401
    except ImportError as error:
        raise ValueError(f"weight-only quantization with torchao needs torchao: {INSTALL} ({error})") from None
    found = tuple(int(part) for part in re.findall(r"\d+", torchao.__version__)[:2])
    if len(found) == 2 and found < MIN_TORCHAO:
        raise ValueError(f"weight-only quantization needs torchao >= {'.'.join(map(str, MIN_TORCHAO))}, found "
                         f"{torchao.__version__}: pip install -U 'hone-ml[torchao]'")
    return torchao


def check_device(kind: str, device: torch.device) -> None:
    """Refuse, before any work, a dtype whose kernels this device lacks."""
    if kind != "int4":
        return
    if device.type != "cuda":
        gpu = "this machine has a CUDA GPU: set `device: cuda`" if torch.cuda.is_available() else "this machine has none"
        raise ValueError(f"int4-weight-only needs a CUDA GPU of compute capability {'.'.join(map(str, INT4_CAPABILITY))} "
                         f"or newer (torchao's int4 kernel); the model is on {device} and {gpu}. "
                         "Use int8-weight-only or float8-weight-only instead")
    capability = torch.cuda.get_device_capability(device)
    if capability < INT4_CAPABILITY:
        raise ValueError(f"int4-weight-only needs compute capability 8.0 or newer; {torch.cuda.get_device_name(device)} "
                         f"has {capability[0]}.{capability[1]}: use int8-weight-only instead")


def config_for(kind: str, granularity: str, group_size: int) -> Any:
    """The torchao config of one weight-only scheme."""
    from torchao.quantization import Float8WeightOnlyConfig, Int4WeightOnlyConfig, Int8WeightOnlyConfig, PerRow, PerTensor

    scale = PerTensor() if granularity == "per_tensor" else PerRow()
    if kind == "int8":
        return Int8WeightOnlyConfig(granularity=scale, set_inductor_config=False)
    if kind == "float8":
        return Float8WeightOnlyConfig(granularity=scale, set_inductor_config=False)
    return Int4WeightOnlyConfig(group_size=group_size, int4_packing_format="tile_packed_to_4d", set_inductor_config=False)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class WeightOnly:
    """Weight-only quantization of the selected Linear layers with torchao; activations and compute stay in float."""

    def __init__(self, kind: str, include: Sequence[str], exclude: Sequence[str], granularity: str = "per_row",
                 group_size: int = 128) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown weight-only dtype {kind!r}; choose one of {', '.join(KINDS)}")
        import_torchao()
        self.kind, self.include, self.exclude = kind, list(include), list(exclude)
        self.granularity, self.group_size = granularity, group_size

    def compress(self, model: nn.Module, context: CompressionContext | None = None) -> tuple[nn.Module, dict[str, Any]]:
        check_device(self.kind, _device_of(model))
        names = sorted(select_linear(model, self.include, self.exclude))
        recipe = {"dtype": self.kind, "granularity": self.granularity, "group_size": self.group_size}
        model, quantized = self._quantize(model, names, recipe)
        if not quantized:
            raise ValueError(f"{self.kind}-weight-only quantized none of the {len(names)} selected layers "
                             f"(int4 needs in_features divisible by group_size {self.group_size}): use a smaller group_size")
        import torchao

        report: dict[str, Any] = {"quantized_layers": len(quantized), "dtype": f"{self.kind} (weight only)",
                                  "torchao": torchao.__version__, "skipped_layers": sorted(set(names) - set(quantized))}
        if self.kind == "int4":
            report.update(group_size=self.group_size, model_dtype="bf16")
        else:
            report["granularity"] = self.granularity
        return model, {**report, "recipe": {**recipe, "layers": quantized}}

    def restore(self, model: nn.Module, recipe: dict[str, Any]) -> nn.Module:
        kind = recipe["dtype"]
        device = _device_of(model)
        if kind == "int4" and device.type != "cuda" and torch.cuda.is_available():
            device = torch.device("cuda")  # int4 weights are packed for (and by) the GPU kernel
            model = model.to(device)
        check_device(kind, device)
        model, _ = self._quantize(model, list(recipe["layers"]), recipe)
        return model

    @staticmethod
    def _quantize(model: nn.Module, names: list[str], recipe: dict[str, Any]) -> tuple[nn.Module, list[str]]:
        """Quantize layers ``names`` in place; return the model and the layers torchao actually quantized."""
        from torchao.quantization import quantize_

        if recipe["dtype"] == "int4":
            model = model.to(torch.bfloat16)  # the int4 kernel computes in bf16
        chosen = set(names)
        quantize_(model, config_for(recipe["dtype"], recipe["granularity"], recipe["group_size"]),
                  filter_fn=lambda module, name: isinstance(module, nn.Linear) and name in chosen)
        quantized = []
        for name in names:
            weight = model.get_submodule(name).weight
            if is_traceable_wrapper_subclass(weight):  # torchao leaves a layer it cannot quantize as it was
                quantized.append(name)
        return model, quantized
