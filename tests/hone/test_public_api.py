"""``from hone import ...`` gives a plugin author everything, without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import hone


def test_every_exported_name_resolves_to_the_object_its_module_defines() -> None:
    import importlib

    for name in hone.__all__:
        module = importlib.import_module(hone._EXPORTS[name])
        assert getattr(hone, name) is getattr(module, name), name


def test_the_documented_long_paths_stay_the_same_objects() -> None:
    from hone.components import EvalOutput
    from hone.errors import HoneError
    from hone.hookspecs import hookimpl
    from hone.paths import RunFileName
    from hone.registry import Params, Register

    assert (hone.hookimpl, hone.Register, hone.Params, hone.EvalOutput, hone.HoneError, hone.RunFileName) == (
        hookimpl, Register, Params, EvalOutput, HoneError, RunFileName)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'hookimp'"):
        hone.hookimp  # noqa: B018


def test_importing_every_public_name_imports_no_torch_or_transformers() -> None:
    code = ("import sys, json, hone; [getattr(hone, n) for n in hone.__all__]; "
            "print(json.dumps([m for m in ('torch', 'transformers') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []
