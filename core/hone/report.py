"""What a report section works with: the run directory read back (``RunData``), and the blocks a section is made of.

Report sections come from plugins (``register_report_sections``); hone renders their blocks to one
self-contained HTML page and to Markdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Text:
    text: str


@dataclass
class Table:
    """Rows of cells; headers all empty make a key/value table."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""


@dataclass
class Image:
    data: bytes
    alt: str


@dataclass
class Code:
    text: str


@dataclass
class Details:
    """A block folded away in HTML (long listings)."""

    summary: str
    blocks: list[Block] = field(default_factory=list)


Block = Text | Table | Image | Code | Details


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class RunData:
    """Everything a run directory holds, read tolerantly (a missing or damaged file reads as empty)."""

    path: Path
    spec: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or self.path.name)

    @property
    def status(self) -> str:
        return str(self.state.get("status", "unknown"))

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]
