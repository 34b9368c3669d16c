from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hone import hookspecs
from hone.plugins import HOOKS
from hone.registry import KINDS

CONTRIBUTING = Path(__file__).resolve().parents[2] / "CONTRIBUTING.md"


def hooks() -> dict[str, Callable[..., Any]]:
    return {
        name: function
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("register_") and function.__module__ == hookspecs.__name__
    }


def factory_signature(hook: Callable[..., Any]) -> str:
    found = re.search(r"factory\([^)]*\)", inspect.getdoc(hook) or "")
    assert found, f"{hook.__name__}'s docstring does not show its factory signature"
    return found.group(0)


def hook_reference(document: str) -> str:
    """The text of the ``## Hook reference`` section, up to the next level-2 heading."""
    section = re.search(r"^## Hook reference\s*$(.*?)(?=^## |\Z)", document, flags=re.MULTILINE | re.DOTALL)
    return section.group(1) if section else ""


def undocumented(document: str, names: list[str]) -> list[str]:
    reference = hook_reference(document)
    return [name for name in names if not re.search(rf"\b{name}\b", reference)]


def test_there_is_one_register_hook_per_component_kind() -> None:
    assert set(hooks()) == {f"register_{kind}s" for kind in KINDS} == set(HOOKS.values())


@pytest.mark.parametrize("name", sorted(hooks()))
def test_every_register_hook_is_a_hookspec(name: str) -> None:
    assert hasattr(hooks()[name], f"{hookspecs.PROJECT}_spec")


@pytest.mark.parametrize("name", sorted(hooks()))
def test_every_register_hook_takes_only_register(name: str) -> None:
    assert list(inspect.signature(hooks()[name]).parameters) == ["register"]


@pytest.mark.parametrize("name", sorted(hooks()))
def test_every_register_hook_has_a_docstring_with_its_factory_signature(name: str) -> None:
    doc = inspect.getdoc(hooks()[name])
    assert doc and doc.strip(), f"{name} has no docstring"
    factory_signature(hooks()[name])


def test_contributing_has_a_hook_reference_section() -> None:
    assert hook_reference(CONTRIBUTING.read_text(encoding="utf-8")).strip()


def test_every_hook_is_in_the_contributing_hook_reference() -> None:
    missing = undocumented(CONTRIBUTING.read_text(encoding="utf-8"), sorted(hooks()))
    assert not missing, f"add these hooks to CONTRIBUTING.md's '## Hook reference': {missing}"


@pytest.mark.parametrize("name", sorted(hooks()))
def test_hook_reference_shows_the_same_factory_signature_as_the_hookspec(name: str) -> None:
    reference = hook_reference(CONTRIBUTING.read_text(encoding="utf-8"))
    row = next((line for line in reference.splitlines() if f"`{name}`" in line), "")
    assert factory_signature(hooks()[name]) in row, f"CONTRIBUTING.md's row for {name} disagrees with hookspecs.py"


def test_the_check_catches_a_hook_missing_from_the_document() -> None:
    document = CONTRIBUTING.read_text(encoding="utf-8")
    without_searchers = re.sub(r"\bregister_searchers\b", "register_something", document)
    assert undocumented(without_searchers, sorted(hooks())) == ["register_searchers"]


def test_the_check_only_counts_mentions_inside_the_hook_reference() -> None:
    document = "# Guide\n\nregister_metrics is mentioned here.\n\n## Hook reference\n\nregister_tasks\n\n## Next\n\nregister_readers\n"
    assert undocumented(document, ["register_metrics", "register_readers", "register_tasks"]) == [
        "register_metrics",
        "register_readers",
    ]


@pytest.mark.parametrize("name", sorted(hooks()))
def test_every_hook_has_its_details_in_the_hook_reference(name: str) -> None:
    assert f"- **`{name}`** — `factory(" in hook_reference(CONTRIBUTING.read_text(encoding="utf-8"))


def test_contributing_examples_import_hone_only_from_its_public_api() -> None:
    blocks = re.findall(r"```python\n(.*?)```", CONTRIBUTING.read_text(encoding="utf-8"), flags=re.S)
    deep = [line.strip() for block in blocks for line in block.splitlines() if re.match(r"\s*(from|import) hone\.", line)]
    assert blocks and deep == []
    import hone

    for block in blocks:
        for names in re.findall(r"^\s*from hone import (.+)$", block, flags=re.M):
            assert all(hasattr(hone, name.strip()) for name in names.split(",")), names
