"""Device and precision selection, and seeding."""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

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


class Precision(NamedTuple):
    """The precision a run trains at and the one it evaluates and predicts at."""

    train: str
    eval: str


def pick_precisions(name: str, device: torch.device, units: Sequence[str] | None = None) -> Precision:
    """Training and evaluation precision for ``precision: name``; ``units``: the CPU's bf16 units (default: detected).

    ``auto``: bf16 on GPUs that support it, else fp16; bf16 autocast on a CPU with AMX (measured on an AMX Xeon,
    benchmarks/precision.py: training 1.35x and inference 1.74x fp32 at the same CoNLL F1); fp32 on other CPUs,
    avx512_bf16 alone included (bf16 inference measured 1.0x fp32 on an AMD EPYC with avx512_bf16: no gain to pay
    for with bf16's rounding), and on MPS.
    An explicit name is used for both."""
    if name != "auto":
        if name in ("bf16", "fp16") and device.type == "cpu" and not (cpu_bf16_units() if units is None else units):
            warnings.warn(f"precision {name}: this CPU has no native bf16/fp16 instructions (avx512_bf16, AMX), so "
                          "autocast emulates them and runs several times slower than fp32; use `precision: auto`",
                          stacklevel=3)
        return Precision(name, name)
    if device.type == "cuda":
        half = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return Precision(half, half)
    if device.type == "cpu" and "amx_bf16" in (cpu_bf16_units() if units is None else units):
        return Precision("bf16", "bf16")
    return Precision("fp32", "fp32")


BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""/proc/cpuinfo flags of units that compute bf16 matrix products in hardware."""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The CPU's feature flags as the Linux kernel lists them (those it enabled); ``None`` where there is no such file."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86; ARM says Features
            return set(value.split())
    return None


def cpu_bf16_units(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """This CPU's native bf16 units (``amx_bf16``, ``avx512_bf16``); ``[]`` where bf16 would be emulated (several
    times slower than fp32). torch's own checks decide where it has them (its kernels dispatch on them), else the
    kernel's flags in /proc/cpuinfo."""
    cpu = getattr(torch, "cpu", None)  # private checks: absent in some torch versions
    checks = {"amx_bf16": getattr(cpu, "_is_amx_tile_supported", None),
              "avx512_bf16": getattr(cpu, "_is_avx512_bf16_supported", None)}
    if all(check is not None for check in checks.values()):
        return [flag for flag, check in checks.items() if check is not None and check()]
    flags = cpu_flags(cpuinfo) or set()
    return [flag for flag in BF16_FLAGS if flag in flags]


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (``None``: leave them); return the number in use."""
    if threads is not None:
        if threads < 1:
            raise HoneError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


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
