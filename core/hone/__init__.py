"""hone: evaluate and optimise transformer models, every component a plugin.

What a plugin author needs is importable from here (``from hone import hookimpl, Params, Register``); the
names load on first use, so ``import hone`` stays cheap (``hone plugins`` imports every plugin module).
The longer import paths (``hone.hookspecs.hookimpl``, ``hone.registry.Register``, ``hone.components.*``,
``hone.errors.*``, ``hone.paths.RunFileName``) stay valid.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # writing a plugin
    "hookimpl": "hone.hookspecs",
    "Register": "hone.registry",
    "Params": "hone.registry",
    "NoParams": "hone.registry",
    "load_plugins": "hone.plugins",
    # the component protocols and the data they pass
    **dict.fromkeys(("Example", "EvalOutput", "Metric", "Scheduler", "Reader", "Callback", "Task", "CompressionContext",
                     "Compressor", "RestorableCompressor", "StepHook", "GradualCompressor", "Distiller", "Exporter", "Stage",
                     "Command", "SpecSection", "ReportSection", "Runtime", "Adapter", "ModelFormat"),
                    "hone.components"),
    # errors
    **dict.fromkeys(("HoneError", "DataError", "ComponentError", "Interrupted"), "hone.errors"),
    "WriteError": "hone.atomic",
    # stage kinds and spec sections
    "StageSpec": "hone.spec.models",
    "ComponentRef": "hone.spec.models",
    "SpecPaths": "hone.spec.models",
    "SpecError": "hone.spec.loading",
    "ref": "hone.spec.models",
    "Results": "hone.spec.results",
    "Catalog": "hone.spec.results",
    "ResultError": "hone.spec.results",
    "RunContext": "hone.run.context",
    "RunFileName": "hone.paths",
    # report sections
    **dict.fromkeys(("Section", "Text", "Table", "Image", "Code", "Details", "RunData"), "hone.report"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hone' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])

