"""Writing a run's (or a search's) self-contained ``report.html`` and ``report.md``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from hone.atomic import write_text
from hone.errors import describe
from hone.plugins import load_plugins
from hone.report import RunData, Section, Text
from hone_plugins.report.rundata import load_run
from hone_plugins.report.render import render_html, render_markdown

HTML_NAME, MD_NAME = "report.html", "report.md"


def run_sections(run: RunData) -> list[Section]:
    """Every registered report section's part of the report, in their declared order; a section that fails says so."""
    host = load_plugins([d for d in run.spec.get("plugins_dir") or [] if isinstance(d, str)], warn=False)
    sections: list[Section] = []
    for component in sorted(host.registries["report_section"], key=lambda c: (c.info.get("order", 100), c.name)):
        try:
            sections += host.build("report_section", component.name).sections(run)
        except Exception as error:  # noqa: BLE001 - one broken section must not cost the rest of the report
            sections.append(Section(component.name, [Text(f"This section could not be built ({host.describe('report_section', component.name)}): "
                                                         f"{describe(error, 300)}")]))
    return sections


def is_search_dir(path: Path) -> bool:
    return (path / "trials.csv").exists() or (path / "search.json").exists()


def build_report(path: Path) -> tuple[str, str, list[Section]]:
    """(title, subtitle, sections) for a run directory, a search directory or a model selection's directory."""
    path = Path(path)
    if (path / "selection.json").exists():
        from hone_plugins.selection.report import selection_sections

        return selection_sections(path)
    if is_search_dir(path):
        from hone_plugins.report.search import search_sections

        return search_sections(path)
    run = load_run(path)
    subtitle = f"{run.status} · {len(run.spec.get('stages') or [])} stages · {run.path.resolve()}"
    return f"hone run report: {run.name}", subtitle, run_sections(run)


def write_report(path: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into ``path`` (a run, search or selection directory)."""
    path = Path(path)
    title, subtitle, sections = build_report(path)
    write_text(path / HTML_NAME, render_html(title, subtitle, sections))
    write_text(path / MD_NAME, render_markdown(title, subtitle, sections))
    return path / HTML_NAME, path / MD_NAME


def try_write_report(path: Path, warn: Callable[[str], None] | None = None) -> Path | None:
    """``write_report``, turning any failure into a warning: a report must never fail a run or a search."""
    try:
        return write_report(path)[0]
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the run's own results stand
        message = f"could not write the report in {path}: {type(error).__name__}: {error}"
        (warn or (lambda m: warnings.warn(m, stacklevel=3)))(message)
        return None
