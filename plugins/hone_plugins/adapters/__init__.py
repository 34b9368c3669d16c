"""hone's built-in adapters, built on peft (the ``adapters`` extra): ``lora`` and ``dora``.

A train or distill stage with ``adapter: {name: lora, r: 8}`` freezes the model, adds the adapter and trains only it
and the task's new head (see :mod:`hone_plugins.adapters.peft_adapter`). This module holds the registrations and
parameters only: it imports neither torch nor peft.
"""
from __future__ import annotations

from typing import Any

from hone.hookspecs import hookimpl
from hone.registry import Register
from hone_plugins.adapters.params import PEFT_INSTALL, LoraParams

__all__ = ["PEFT_INSTALL", "LoraParams", "dora", "lora"]


def lora(params: LoraParams) -> Any:
    """LoRA (Hu et al. 2021): low-rank updates of the chosen layers, merged into the weights at the stage's end."""
    from hone_plugins.adapters.peft_adapter import PeftAdapter

    return PeftAdapter("lora", params, use_dora=False)


def dora(params: LoraParams) -> Any:
    """DoRA (Liu et al. 2024): LoRA on the direction of each weight, with its magnitude trained apart."""
    from hone_plugins.adapters.peft_adapter import PeftAdapter

    return PeftAdapter("dora", params, use_dora=True)


@hookimpl
def register_adapters(register: Register) -> None:
    requires = {"peft": PEFT_INSTALL}
    register("lora", lora, LoraParams, requires=requires)
    register("dora", dora, LoraParams, requires=requires)
