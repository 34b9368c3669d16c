"""The shipped LoRA example spec validates against the installed plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from hone.spec.loading import load_spec

from tests.conftest import SHARED_DATA

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lora-conll2003.yaml"
DATA = SHARED_DATA / "conll2003"


@pytest.mark.slow
@pytest.mark.skipif(not DATA.exists(), reason="the shared CoNLL-2003 data are not here")
def test_the_lora_example_validates_with_a_lora_adapter_on_query_and_value() -> None:
    pytest.importorskip("peft", reason="peft (the adapters extra) is not installed")
    spec, _ = load_spec(EXAMPLE)
    adapter = spec.stages[0].adapter
    assert (adapter.name, adapter.settings()["r"], adapter.settings()["target_modules"]) == ("lora", 8, ["query", "value"])
