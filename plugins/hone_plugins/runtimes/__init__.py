"""Runtimes ``hone predict --runtime NAME`` can serve an exported model with, found through the
``hone.runtimes`` entry-point group (``NAME = "module:function"``, the function taking the run
directory or export folder and returning ``(model, tokenizer, metadata)``).

This module imports no torch; :mod:`hone_plugins.runtimes.onnxruntime` holds the implementation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hone_plugins.extras import require


def onnxruntime_runtime(source: str | Path) -> tuple[Any, Any, dict[str, Any]]:
    """Serve a run directory's ``export/onnx/`` (or an export folder) with ONNX Runtime on the CPU."""
    require("the onnxruntime runtime", ("onnxruntime",))
    from hone_plugins.runtimes.onnxruntime import load_export

    return load_export(Path(source))
