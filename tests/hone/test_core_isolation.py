from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core"
PLUGINS_PACKAGE = "hone_plugins"


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def plugin_imports(source: str, filename: str = "<source>") -> list[str]:
    """Every ``import hone_plugins...``, ``from hone_plugins... import`` and ``import_module('hone_plugins...')``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            names = [str(node.args[0].value)] if callee in ("import_module", "__import__") else []
        else:
            continue
        found += [f"{filename}:{node.lineno}: {name}" for name in names if name.split(".")[0] == PLUGINS_PACKAGE]
    return found


def test_core_has_python_files() -> None:
    assert (CORE / "hone" / "registry.py") in core_files()


@pytest.mark.parametrize("path", core_files(), ids=lambda path: path.name)
def test_core_module_never_imports_a_plugin(path: Path) -> None:
    assert plugin_imports(path.read_text(encoding="utf-8"), str(path)) == []


@pytest.mark.parametrize(
    "source",
    [
        "import hone_plugins",
        "import hone_plugins.metrics as metrics",
        "from hone_plugins.tasks import token_classification",
        "def f():\n    from hone_plugins import readers",
        "import importlib\nimportlib.import_module('hone_plugins.optimizers')",
        "__import__('hone_plugins')",
    ],
)
def test_the_check_catches_every_form_of_plugin_import(source: str) -> None:
    assert len(plugin_imports(source)) == 1


@pytest.mark.parametrize(
    "source",
    ["import hone.registry", "from hone import hookspecs", "import hone_pluginsx", "'hone_plugins is only a word here'"],
)
def test_the_check_allows_core_imports_and_mentions(source: str) -> None:
    assert plugin_imports(source) == []
