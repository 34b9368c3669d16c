"""Runtimes that serve an exported model: ``hone predict --runtime NAME``.

This module imports no torch; :mod:`hone_plugins.runtimes.onnxruntime` holds the implementation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register
from hone_plugins.extras import require


class OnnxRuntime:
    def load(self, source: Path) -> tuple[Any, Any, dict[str, Any]]:
        """(model, tokenizer, metadata) of a run directory's ``export/onnx/``, or of an export folder."""
        from hone_plugins.runtimes.onnxruntime import load_export

        return load_export(Path(source))


def onnxruntime_runtime(params: NoParams) -> OnnxRuntime:
    """Serve a run's ONNX export (``export/onnx/``) with ONNX Runtime on the CPU."""
    require("the onnxruntime runtime", ("onnxruntime",))
    return OnnxRuntime()


@hookimpl
def register_runtimes(register: Register) -> None:
    register("onnxruntime", onnxruntime_runtime)
