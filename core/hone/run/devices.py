"""Device and precision selection, and seeding."""

from __future__ import annotations

import contextlib
import random
import warnings
from typing import Any

import numpy as np
import torch

from hone.errors import HoneError


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        if problem := unavailable(name):
            raise HoneError(problem)
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def unavailable(name: str) -> str | None:
    """Why device ``name`` (cpu, mps, cuda, cuda:N) cannot be used on this machine; None if it can."""
    kind, _, index = name.partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            why = "is a CPU-only build, without CUDA" if torch.version.cuda is None else "finds no CUDA device"
            return f"device '{name}': this torch ({torch.__version__}) {why}; use `device: cpu` or `auto`"
        if int(index or 0) >= count:
            return f"device '{name}': this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return f"device '{name}': MPS (Apple GPUs) is not available here; use `device: cpu` or `auto`"
    return None


def pick_precision(name: str, device: torch.device) -> str:
    """``auto``: bf16 on GPUs that support it, fp16 on other GPUs, fp32 on CPU and MPS."""
    if name != "auto":
        if name in ("bf16", "fp16") and device.type == "cpu" and not cpu_has_native_half():
            warnings.warn(f"precision {name}: this CPU has no native bf16/fp16 instructions (avx512_bf16, AMX), so "
                          "autocast emulates them and runs several times slower than fp32; use `precision: auto`",
                          stacklevel=2)
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def cpu_has_native_half() -> bool:
    """Whether this CPU computes bf16 in hardware (avx512_bf16 or AMX); elsewhere autocast emulates it, slowly."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def autocast(device: torch.device, precision: str) -> Any:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """What the model's forward takes: everything but labels and ``_``-prefixed metadata."""
    return {k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"}


def forward(model: Any, batch: dict[str, Any], device: torch.device, precision: str, **flags: Any) -> Any:
    """The model's outputs on a collated batch (labels and ``_`` metadata left out), at the given precision."""
    with autocast(device, precision):
        return model(**model_inputs(batch), **flags)
