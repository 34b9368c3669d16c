"""The parameters of hone's LoRA and DoRA adapters (peft's LoraConfig fields); imports neither torch nor peft."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
