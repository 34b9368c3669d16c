"""Hardware-aware precision (bf16 units detected, not assumed), torch's threads, and peak RSS per stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from hone.errors import HoneError
from hone.run.devices import (Precision, cpu_bf16_units, cpu_flags,
                              pick_precisions, set_threads)
from hone.run.memory import peak_rss_mb, process_peak_rss_mb, reset_peak_rss, stage_memory
from hone_plugins.stages.evaluation import eval_precision, inference_precision

CPU = torch.device("cpu")
X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu vme sse avx2 avx512f {extra} arch_capabilities
bogomips\t: 5200.00

processor\t: 1
flags\t\t: fpu vme sse avx2 avx512f {extra} arch_capabilities
"""


def cpuinfo(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(X86.format(extra=extra))
    return path


def without_torch_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """As under a torch without its private CPU checks: the kernel's flags decide."""
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)


def test_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    flags = cpu_flags(cpuinfo(tmp_path, "avx512_bf16 amx_bf16 amx_tile"))
    assert flags is not None and {"avx2", "avx512_bf16", "amx_bf16", "amx_tile"} <= flags and "bogomips" not in flags
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 sve\n")
    assert cpu_flags(arm) == {"fp", "asimd", "bf16", "sve"}
    assert cpu_flags(tmp_path / "missing") is None


@pytest.mark.parametrize(("extra", "units"), [
    ("avx512_bf16 amx_bf16 amx_tile amx_int8", ["amx_bf16", "avx512_bf16"]),  # Sapphire Rapids and later
    ("avx512_bf16 avx512_vnni", ["avx512_bf16"]),  # e.g. AMD Zen 4, Cooper Lake
    ("avx512_vnni", []),  # Cascade Lake: bf16 would be emulated
    ("", []),  # AVX2 only
])
def test_bf16_units_come_from_the_kernels_flags_without_torchs_checks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, units: list[str]) -> None:
    without_torch_checks(monkeypatch)
    assert cpu_bf16_units(cpuinfo(tmp_path, extra)) == units


def test_torchs_own_checks_decide_where_it_has_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert cpu_bf16_units(cpuinfo(tmp_path, "avx512_bf16 amx_bf16")) == ["avx512_bf16"]
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert cpu_bf16_units(cpuinfo(tmp_path, "avx512_bf16 amx_bf16")) == []


@pytest.mark.parametrize(("units", "expected"), [
    ([], Precision("fp32", "fp32")),
    (["avx512_bf16"], Precision("fp32", "fp32")),  # AMD Zen 4: bf16 inference measured no faster than fp32
    (["amx_bf16", "avx512_bf16"], Precision("bf16", "bf16")),
])
def test_auto_on_a_cpu_is_bf16_only_with_amx(
        units: list[str], expected: Precision) -> None:
    assert pick_precisions("auto", CPU, units) == expected


def test_auto_follows_the_detected_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hone.run.devices.cpu_bf16_units", lambda: ["amx_bf16"])
    assert pick_precisions("auto", CPU) == Precision("bf16", "bf16")
    monkeypatch.setattr("hone.run.devices.cpu_bf16_units", lambda: [])
    assert pick_precisions("auto", CPU) == Precision("fp32", "fp32")


def test_auto_on_gpus_and_mps_and_named_precisions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_precisions("auto", torch.device("cuda")) == Precision("bf16", "bf16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert pick_precisions("auto", torch.device("cuda")) == Precision("fp16", "fp16")
    assert pick_precisions("auto", torch.device("mps"), ["amx_bf16"]) == Precision("fp32", "fp32")
    for name in ("fp32", "bf16", "fp16"):  # a named precision means training and evaluation, as before
        assert pick_precisions(name, CPU, ["amx_bf16"]) == Precision(name, name)


def test_evaluation_reads_the_contexts_eval_precision() -> None:
    class Ctx:
        precision, eval_precision = "fp32", "bf16"

    class Single:
        precision = "fp16"

    assert eval_precision(Ctx()) == "bf16" and eval_precision(Single()) == "fp16"


def test_models_with_torch_ao_quantized_layers_are_inferred_in_fp32() -> None:
    import warnings

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert inference_precision("bf16", model) == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, torch.qint8)
    assert inference_precision("bf16", quantized) == "fp32"
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(RuntimeError):  # why: its kernels take fp32 only
        quantized(torch.nn.Linear(4, 4)(torch.randn(2, 4)))


def test_threads_are_applied_and_checked() -> None:
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        assert set_threads(None) == 1
        with pytest.raises(HoneError, match="at least 1"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_peak_rss_is_positive_and_a_reset_makes_it_the_stages_own(tmp_path: Path) -> None:
    peak = peak_rss_mb()
    assert peak is not None and peak > 1
    assert reset_peak_rss(tmp_path / "missing" / "clear_refs") is False
    assert set(stage_memory(False)) == {"process_peak_rss_mb"}
    if not reset_peak_rss():
        pytest.skip("this system does not let a process reset its peak RSS (/proc/self/clear_refs)")
    held = bytearray(200_000_000)  # 200 MB touched, then freed: the next stage's peak must not include it
    held[::4096] = b"x" * len(held[::4096])
    high = peak_rss_mb() or 0.0
    assert high >= 200
    del held
    assert reset_peak_rss()
    after = stage_memory(True)
    assert set(after) == {"peak_rss_mb"} and 1 < after["peak_rss_mb"] < high - 150
    assert (process_peak_rss_mb() or 0) >= round(high, 1)  # the process's own peak survives the resets (rounded as stages are)


@pytest.mark.parametrize(("recorded", "kept"), [
    ({"train": "fp32", "eval": "bf16"}, Precision("fp32", "bf16")),
    ("fp32", Precision("fp32", "fp32")),  # a run started before hone chose two precisions: one for both
    (None, Precision("bf16", "bf16")),  # no earlier attempt: what was picked now
])
def test_a_resumed_run_keeps_the_precisions_of_its_first_attempt(tmp_path: Path, recorded: Any, kept: Precision) -> None:
    import json

    from hone.run.runner import _kept_precision

    events = [{"event": "run_start", "precision": recorded}, {"event": "run_start", "precision": "fp16"}] if recorded else []
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert _kept_precision(tmp_path, Precision("bf16", "bf16")) == kept
