"""``hone select``: the command, the spec's ``selection:`` section and the report section of a model selection.

Only registrations here (``hone plugins`` imports this module); the selection imports torch when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register
from hone_plugins.selection.spec import SelectionSpec


class SelectCommand:
    def run(self, args: argparse.Namespace) -> int:
        from hone_plugins.selection.command import select_command

        return select_command(args.spec, args.out, args.plugins_dir, args.quiet, not args.no_report)


def select_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="a run spec with a `selection:` section (candidates, objective)")
    parser.add_argument("--out", type=Path, help="selection directory (default: <output_dir>/<name>-selection); "
                        "run again to continue: finished candidates are not retrained")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or line per candidate")
    parser.add_argument("--no-report", action="store_true", help="do not write report.html / report.md")


def select_command(params: NoParams) -> SelectCommand:
    """fine-tune each candidate model of the spec's `selection` on the same budget and rank them"""
    return SelectCommand()


class SelectionSection:
    """Checks of the ``selection:`` section against the rest of the spec and this machine (model folders, layers)."""

    def check(self, spec: Any, host: Any, file: Path) -> None:
        from hone_plugins.selection.check import check_selection

        check_selection(file, spec)


def selection_section(params: SelectionSpec) -> SelectionSection:
    """Used by `hone select` (`hone run` runs the spec as it is): candidate models, the objective, latency."""
    return SelectionSection()


class RankingSection:
    def sections(self, run: Any) -> list[Any]:
        from hone_plugins.selection.report import candidate_section

        return [section for section in [candidate_section(run)] if section is not None]


def ranking_section(params: NoParams) -> RankingSection:
    """A selection candidate's report: where it ranks among the others."""
    return RankingSection()


@hookimpl
def register_commands(register: Register) -> None:
    register("select", select_command, arguments=select_arguments)


@hookimpl
def register_spec_sections(register: Register) -> None:
    register("selection", selection_section, SelectionSpec)


@hookimpl
def register_report_sections(register: Register) -> None:
    register("selection", ranking_section, order=70)
