"""hone's model format: ``save_pretrained`` and safetensors, plus the compression recipe of a compressed model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hone.host import PluginHost
from hone_plugins.formats import compressed


class SafetensorsFormat:
    """Weights as plain tensors (quantized and subclass tensors flattened), structure as ``compression.json``."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host  # rebuilding a compressed model builds the compressors that made it

    def tensors(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        return compressed.state_dict_for_saving(model)

    def fit(self, template: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        return compressed.fit_state(template, tensors)

    def write_structure(self, model: torch.nn.Module, folder: Path) -> list[str]:
        return [compressed.COMPRESSION_JSON] if compressed.write_steps(model, folder) else []

    def rebuild(self, model: torch.nn.Module, folder: Path) -> torch.nn.Module:
        steps = compressed.read_steps(folder)
        return compressed.restore_steps(model, steps, self.host) if steps else model

    def save(self, model: torch.nn.Module, folder: Path) -> None:
        compressed.save_model_weights(model, folder)
