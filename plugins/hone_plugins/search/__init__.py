"""``hone search``: the command, the spec's ``search:`` section and the pruners that stop weak trials early.

Only registrations here (``hone plugins`` imports this module); the search machinery imports Optuna when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register
from hone_plugins.search import pruners
from hone_plugins.search.spec import SearchSpec


class SearchCommand:
    def run(self, args: argparse.Namespace) -> int:
        from hone_plugins.search.command import search_command
        from hone_plugins.search.results import summary_lines

        summary = search_command(args.spec, args.out, args.workers, args.storage, args.resume, args.plugins_dir, args.worker,
                                 args.quiet)
        for line in summary_lines(summary) if summary else []:
            print(line)
        if summary and not args.no_report:  # the coordinating process, once the search has stopped
            from hone_plugins.report.write import try_write_report

            if report := try_write_report(Path(summary["search_dir"])):
                print(f"report: {report}")
        return 0


def search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path)
    parser.add_argument("--out", type=Path, help="search directory (default: <output_dir>/<name>-search); run again to continue")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="trial processes on this machine")
    parser.add_argument("--storage", metavar="URL", help="Optuna storage, e.g. postgresql://user@host/db for several machines")
    parser.add_argument("--resume", action="store_true", help="continue a search (fails if --out holds none)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per trial")
    parser.add_argument("--no-report", action="store_true", help="do not write report.html / report.md at the end")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # a worker process started by `hone search`


def search_command(params: NoParams) -> SearchCommand:
    """search the spec's `search.space`: trials of whole runs, resumable, in parallel"""
    return SearchCommand()


class SearchSection:
    """Checks of the ``search:`` section against the rest of the spec (paths, objectives, the searcher's space)."""

    def check(self, spec: Any, host: Any, file: Path) -> None:
        from hone_plugins.search.command import check_search

        check_search(file, spec, host)


def search_section(params: SearchSpec) -> SearchSection:
    """Used by `hone search` (`hone run` runs the spec as it is): searcher, objectives, budget, pruner and space."""
    return SearchSection()


@hookimpl
def register_commands(register: Register) -> None:
    register("search", search_command, arguments=search_arguments)


@hookimpl
def register_spec_sections(register: Register) -> None:
    register("search", search_section, SearchSpec)


@hookimpl
def register_pruners(register: Register) -> None:
    register("none", pruners.no_pruner)
    register("median", pruners.median, pruners.MedianParams)
    register("percentile", pruners.percentile, pruners.PercentileParams)
    register("hyperband", pruners.hyperband, pruners.HyperbandParams)
    register("successive-halving", pruners.successive_halving, pruners.SuccessiveHalvingParams)
