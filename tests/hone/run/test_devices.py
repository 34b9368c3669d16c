"""Precision choice on CPUs with and without native bf16."""

from __future__ import annotations

import warnings

import pytest
import torch

from hone.run.devices import pick_precisions

CPU = torch.device("cpu")


def _cpu_bf16(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)


def test_auto_is_fp32_on_a_cpu_without_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hone.run.devices.cpu_bf16_units", lambda: ["avx512_bf16"])
    assert pick_precisions("auto", CPU).train == "fp32"


def test_bf16_on_a_cpu_that_emulates_it_warns_and_suggests_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu_bf16(monkeypatch, native=False)
    with pytest.warns(UserWarning, match=r"precision bf16: .*emulates .*use `precision: auto`"):
        assert pick_precisions("bf16", CPU).train == "bf16"


def test_bf16_on_a_cpu_with_native_bf16_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu_bf16(monkeypatch, native=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_precisions("bf16", CPU).train == "bf16"
        assert pick_precisions("fp32", CPU).train == "fp32"
