"""Reliability tests run with no HONE_* settings and their own stevedore cache."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HONE_DISABLE_PLUGINS", "HONE_ALLOW_PLUGINS", "HONE_PLUGINS_DIR"):
        monkeypatch.delenv(name, raising=False)
    cache = getattr(importlib.import_module("stevedore._cache"), "_c", None)
    if cache is not None:
        monkeypatch.setattr(cache, "_dir", str(tmp_path / "stevedore-cache"))
