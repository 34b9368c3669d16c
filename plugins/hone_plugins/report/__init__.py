"""Reports: ``hone report`` (report.html and report.md of a run or a search) and ``hone compare``.

Only registrations here (``hone plugins`` imports this module); matplotlib is imported when a plot is drawn.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register


class ReportCommand:
    def run(self, args: argparse.Namespace) -> int:
        from hone_plugins.report.write import write_report

        html, markdown = write_report(args.directory)
        print(f"report: {html}\nsummary: {markdown}")
        return 0


def report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="run directory, search directory or selection directory")


def report_command(params: NoParams) -> ReportCommand:
    """write report.html and report.md for a run or search directory"""
    return ReportCommand()


class CompareCommand:
    def run(self, args: argparse.Namespace) -> int:
        from hone_plugins.report.compare import compare, plot, render

        comparison = compare(args.runs, args.metric)
        for warning in comparison.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        sys.stdout.write(render(comparison, args.format))
        if args.plot:
            print(f"plot: {plot(comparison, args.plot)}", file=sys.stderr)
        return 0


def compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR",
                        help="run directories, or search directories (each of their trials is a row)")
    parser.add_argument("--metric", "-m", action="append", default=[], metavar="NAME",
                        help="metric of the final results, or split.NAME / stage.split.NAME (repeatable; default: all)")
    parser.add_argument("--format", "-f", choices=("table", "markdown", "csv"), default="table")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="also write a PNG plot to FILE")


def compare_command(params: NoParams) -> CompareCommand:
    """compare runs: metrics, speed, size and cost side by side"""
    return CompareCommand()


def _section(name: str) -> Callable[[NoParams], Any]:
    def factory(params: NoParams) -> Any:
        from hone_plugins.report import sections

        return sections.Sections(getattr(sections, f"{name}_section"))

    factory.__doc__ = f"The run report's {name} section."
    return factory


@hookimpl
def register_report_sections(register: Register) -> None:
    for order, name in enumerate(("summary", "spec", "environment", "stages", "curves", "results")):
        register(name, _section(name), order=10 * (order + 1))


@hookimpl
def register_commands(register: Register) -> None:
    register("report", report_command, arguments=report_arguments)
    register("compare", compare_command, arguments=compare_arguments)
