"""hone's built-in adapters, built on peft (the ``adapters`` extra): ``lora`` and ``dora``.

A train or distill stage with ``adapter: {name: lora, r: 8}`` freezes the model, adds the adapter and trains only it
and the task's new head (see :mod:`hone_plugins.adapters.peft_adapter`). This module holds the registrations and
parameters only: it imports neither torch nor peft.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hone.hookspecs import hookimpl
from hone.registry import Register

PEFT_INSTALL = "pip install 'hone-ml[adapters]'"


class LoraParams(BaseModel):
    """Low-rank adapters (peft's ``LoraConfig``): ``W x + (alpha / r) B A x``, ``A`` and ``B`` of rank ``r`` trained."""

    model_config = ConfigDict(extra="forbid")
    r: int = Field(8, gt=0, le=4096, description="The rank of the low-rank update.")
    alpha: float = Field(16, gt=0, description="Scaling: the update is multiplied by alpha / r (lora_alpha).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapter's input (lora_dropout).")
    target_modules: list[str] | None = Field(
        None, min_length=1, description="Names (or name suffixes) of the layers to adapt, e.g. [query, value]; "
        "default: peft's choice for the model type (BERT: query, value; GPT-2: c_attn; Llama: q_proj, v_proj).")
    modules_to_save: list[str] | None = Field(
        None, description="Modules trained in full beside the adapter and saved with it; default: the task's new head "
        "(classifier, score, pre_classifier, qa_outputs, where the model has them). A causal LM's head is tied to the "
        "embeddings and stays frozen unless named here.")
    bias: Literal["none", "all", "lora_only"] = Field("none", description="Which biases are trained too.")
    rslora: bool = Field(False, description="Rank-stabilised scaling alpha / sqrt(r) (use_rslora).")

    @field_validator("target_modules", "modules_to_save")
    @classmethod
    def _names(cls, names: list[str] | None) -> list[str] | None:
        for name in names or []:
            if not name.strip() or name != name.strip():
                raise ValueError(f"{name!r} is not a module name: give names like 'query' or 'attention.self.value'")
        if names is not None and len(set(names)) != len(names):
            raise ValueError(f"names repeat in {names}")
        return names


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
