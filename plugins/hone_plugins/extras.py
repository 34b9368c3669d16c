"""Optional dependencies of built-in components: checked before any work, with the install command."""

from __future__ import annotations

import importlib.util

from hone.errors import HoneError

ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")
ONNX_INSTALL = "pip install 'hone-ml[onnx]'"


class MissingExtraError(HoneError):
    """A component needs a package that is not installed."""


def require(what: str, modules: tuple[str, ...] = ONNX_MODULES, install: str = ONNX_INSTALL) -> None:
    """Raise a :class:`MissingExtraError` naming ``what`` and the install command if a module is missing."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(f"{what} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                                f"not installed: {install}")
