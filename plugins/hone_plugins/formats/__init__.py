"""Model formats: how a run saves its model's weights (checkpoints, best weights, the final ``model/``) and reads them back.

``safetensors`` is hone's own: plain tensors in safetensors, and for a model a compressor changed, the
``compression.json`` recipe that rebuilds its structure before the weights load (:mod:`hone_plugins.formats.compressed`).
This module imports no torch.
"""

from __future__ import annotations

from typing import Any

from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register


def _safetensors(params: Any, host: Any) -> Any:
    from hone_plugins.formats.safetensors import SafetensorsFormat

    return SafetensorsFormat(host)


@hookimpl
def register_model_formats(register: Register) -> None:
    register("safetensors", _safetensors, params=NoParams,
             doc="safetensors weights, never pickle; a compressed model's structure as its compression.json recipe")
