"""``hone plugins`` shows each component's ``doc=`` line and its aliases."""

from __future__ import annotations

from pathlib import Path

import pytest

from hone.cli import main

PLUGIN = '''
from hone.hookspecs import hookimpl


def top_k(params):
    """Docstring line, not shown when doc= is given."""


@hookimpl
def register_metrics(register):
    register("top-k", top_k, aliases=["topk", "top_k"], doc="Share of examples whose label is in the k best scores.")
'''


def test_plugins_shows_doc_and_aliases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "top_k.py").write_text(PLUGIN)
    assert main(["--plugins-dir", str(tmp_path), "plugins"]) == 0
    out = capsys.readouterr().out
    assert "        top-k (aliases: topk, top_k)  Share of examples whose label is in the k best scores." in out
    assert "Docstring line" not in out
