"""LoRA and DoRA through peft: the config, the task's head, checks before any work, saving and merging."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from hone_plugins.adapters.params import PEFT_INSTALL, LoraParams
from hone_plugins.extras import require

# the heads transformers' task models create fresh: they must train with the adapter (peft freezes the rest)
HEADS = ("pre_classifier", "classifier", "score", "qa_outputs")
ADAPTABLE = ("Linear", "Conv1D", "Conv1d", "Conv2d", "Embedding")  # the layer types peft's LoRA replaces


def matches(name: str, target: str) -> bool:
    """peft's rule for a list of target names: the module's full name, or a suffix of it at a dot."""
    return name == target or name.endswith(f".{target}")


class PeftAdapter:
    """A peft LoRA adapter (DoRA with ``use_dora``) over a transformers model."""

    def __init__(self, name: str, params: LoraParams, use_dora: bool) -> None:
        require(f"adapter '{name}'", ("peft",), PEFT_INSTALL)
        quiet_import_peft()
        self.name, self.params, self.use_dora = name, params, use_dora

    def targets(self, model: torch.nn.Module) -> list[str]:
        """The stage's target modules, or peft's default for the model type."""
        if self.params.target_modules is not None:
            return list(self.params.target_modules)
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

        model_type = getattr(getattr(model, "config", None), "model_type", None)
        if model_type not in DEFAULTS:
            layers = ", ".join(linear_names(model)[:8])
            raise ValueError(f"adapter '{self.name}': peft has no default target modules for model type "
                             f"{model_type!r}; name them in `target_modules` (its linear layers include: {layers})")
        return list(DEFAULTS[model_type])

    def heads(self, model: torch.nn.Module) -> list[str]:
        """The modules trained in full beside the adapter: the stage's, or the task's new head (top-level)."""
        if self.params.modules_to_save is not None:
            return list(self.params.modules_to_save)
        return [name for name, _ in model.named_children() if name in HEADS]

    def check(self, model: torch.nn.Module) -> None:
        """Raise ``ValueError`` for target or head names that match no module of ``model``."""
        model = base_model(model)
        modules = dict(model.named_modules())
        targets, heads = self.targets(model), self.heads(model)
        for what, names in (("target_modules", targets), ("modules_to_save", heads)):
            unknown = [t for t in names if not any(matches(name, t) for name in modules)]
            if unknown:
                choices = linear_names(model) if what == "target_modules" else [n for n, _ in model.named_children()]
                raise ValueError(f"adapter '{self.name}': {what} {unknown} match no module of {type(model).__name__}; "
                                 f"its {'layers' if what == 'target_modules' else 'top-level modules'} include: "
                                 f"{', '.join(choices[:12])}")
        wrong = sorted({type(m).__name__ for n, m in modules.items() if any(matches(n, t) for t in targets)
                        and type(m).__name__ not in ADAPTABLE and not any(matches(n, h) for h in heads)})
        if wrong:
            raise ValueError(f"adapter '{self.name}': target_modules {targets} name {', '.join(wrong)} modules; LoRA "
                             f"adapts linear, Conv1D and embedding layers: name those (e.g. "
                             f"{', '.join(linear_names(model)[:4])})")

    def config(self, model: torch.nn.Module) -> Any:
        from peft import LoraConfig

        targets = self.targets(model)
        conv1d = any(type(m).__name__ == "Conv1D" for n, m in model.named_modules()
                     if any(matches(n, t) for t in targets))
        return LoraConfig(r=self.params.r, lora_alpha=self.params.alpha, lora_dropout=self.params.dropout,
                          target_modules=targets, modules_to_save=self.heads(model) or None, bias=self.params.bias,
                          use_rslora=self.params.rslora, use_dora=self.use_dora,
                          fan_in_fan_out=conv1d)  # GPT-2's Conv1D stores its weight transposed

    def apply(self, model: torch.nn.Module) -> Any:
        """``model`` with the adapter (unchanged if it already has one): only the adapter and the heads train."""
        from peft import PeftModel, get_peft_model

        if isinstance(model, PeftModel):
            return model
        self.check(model)
        with warnings.catch_warnings():  # peft 0.21 reads an attribute transformers 5 deprecates
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            return get_peft_model(model, self.config(model))

    def trained(self, model: Any) -> list[str]:
        """The state-dict names a checkpoint keeps: the trainable tensors and the heads' trained copies."""
        names = [name for name, param in model.named_parameters() if param.requires_grad]
        return names + [name for name in model.state_dict() if ".modules_to_save." in name and name not in names]

    def save(self, model: Any, folder: Path) -> None:
        """The adapter alone in peft's format (adapter_config.json, adapter_model.safetensors, the heads included)."""
        model.save_pretrained(str(folder))

    def merge(self, model: Any) -> torch.nn.Module:
        """The plain transformers model with the adapter folded into its weights and the trained heads in place."""
        return model.merge_and_unload()


def quiet_import_peft() -> None:
    """Import peft without torchao's noise: peft imports torchao where it is installed (hone's torchao extra), which
    warns that its CUDA kernels do not load and that torch's pytree deprecates its enums; LoRA uses neither."""
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        import peft  # noqa: F401
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def base_model(model: Any) -> torch.nn.Module:
    """The transformers model inside a peft wrapper (the model itself otherwise)."""
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


def linear_names(model: torch.nn.Module) -> list[str]:
    """The distinct last name parts of the layers LoRA can adapt, in model order."""
    found: dict[str, None] = {}
    for name, module in model.named_modules():
        if type(module).__name__ in ("Linear", "Conv1D") and name:
            found.setdefault(name.rsplit(".", 1)[-1])
    return list(found)
