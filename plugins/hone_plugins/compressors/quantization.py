"""Quantization and casting compressors: dynamic int8 (torch.ao), weight-only int8, fp16/bf16."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hone.components import CompressionContext
from hone_plugins.compressors.layers import select_linear

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def torch_ao_quantize_dynamic() -> Any:
    """torch.ao's ``quantize_dynamic`` (deprecated upstream), or an error pointing to its torchao successor."""
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:
        raise ValueError(f"dynamic-int8 uses torch.ao.quantization.quantize_dynamic, which torch {torch.__version__} "
                         "no longer has: use int8-weight-only (torchao; pip install 'hone-ml[torchao]')") from None
    return quantize_dynamic


class DynamicInt8:
    """int8 weights, activations quantized on the fly per batch (torch.ao's dynamic quantization, CPU kernels)."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str], per_channel: bool = True) -> None:
        torch_ao_quantize_dynamic()  # refuse before any work where torch dropped it
        self.include, self.exclude, self.per_channel = list(include), list(exclude), per_channel

    def compress(self, model: nn.Module, context: CompressionContext | None = None) -> tuple[nn.Module, dict[str, Any]]:
        if _device_of(model).type != "cpu":
            raise ValueError(f"dynamic-int8 has CPU kernels only; the model is on {_device_of(model)}: set `device: cpu`")
        names = sorted(select_linear(model, self.include, self.exclude))
        model = self._quantize(model, names, self.per_channel)
        return model, {"quantized_layers": len(names), "dtype": "qint8", "per_channel": self.per_channel,
                       "engine": torch.backends.quantized.engine,
                       "recipe": {"layers": names, "per_channel": self.per_channel, "cpu_only": True}}

    def restore(self, model: nn.Module, recipe: dict[str, Any]) -> nn.Module:
        # recipes written before per-channel scales existed were per tensor
        return self._quantize(model, list(recipe["layers"]), bool(recipe.get("per_channel", False)))

    @staticmethod
    def _quantize(model: nn.Module, names: list[str], per_channel: bool) -> nn.Module:
        quantize_dynamic = torch_ao_quantize_dynamic()
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

        qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
        # torch.ao.quantization warns that it moves to torchao; measured here, torchao's CPU path was slower
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            return quantize_dynamic(model, dict.fromkeys(names, qconfig), dtype=torch.qint8, inplace=True)


class Int8WeightLinear(nn.Module):
    """A Linear whose weight is stored as int8 with one scale per output row, dequantized at each call."""

    def __init__(self, in_features: int, out_features: int, bias: bool, dtype: torch.dtype, device: torch.device | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("weight_scale", torch.ones(out_features, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device)) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8WeightLinear:
        weight = linear.weight.detach()
        new = cls(linear.in_features, linear.out_features, linear.bias is not None, weight.dtype, weight.device)
        scale = weight.abs().amax(dim=1).float().clamp_min(1e-12) / 127
        with torch.no_grad():
            new.weight.copy_(torch.round(weight.float() / scale[:, None]).clamp(-127, 127).to(torch.int8))
            new.weight_scale.copy_(scale.to(weight.dtype))
            if linear.bias is not None:
                new.bias.copy_(linear.bias)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.to(x.dtype) * self.weight_scale.to(x.dtype)[:, None], self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, weight=int8"


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


class WeightInt8:
    """Weight-only int8 (symmetric, per output row): a quarter of the fp32 size; compute stays in float."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        self.include, self.exclude = list(include), list(exclude)

    def compress(self, model: nn.Module, context: CompressionContext | None = None) -> tuple[nn.Module, dict[str, Any]]:
        layers = select_linear(model, self.include, self.exclude)
        for name, linear in layers.items():
            _replace(model, name, Int8WeightLinear.from_linear(linear))
        return model, {"quantized_layers": len(layers), "dtype": "int8 (weight only)", "recipe": {"layers": sorted(layers)}}

    def restore(self, model: nn.Module, recipe: dict[str, Any]) -> nn.Module:
        for name in recipe["layers"]:
            linear = model.get_submodule(name)
            _replace(model, name, Int8WeightLinear(linear.in_features, linear.out_features, linear.bias is not None,
                                                    linear.weight.dtype, linear.weight.device))
        return model


class Half:
    """Casts every floating-point weight to bf16 or fp16."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype

    def compress(self, model: nn.Module, context: CompressionContext | None = None) -> tuple[nn.Module, dict[str, Any]]:
        return model.to(DTYPES[self.dtype]), {"dtype": self.dtype, "recipe": {"dtype": self.dtype}}

    def restore(self, model: nn.Module, recipe: dict[str, Any]) -> nn.Module:
        return model.to(DTYPES[recipe["dtype"]])
