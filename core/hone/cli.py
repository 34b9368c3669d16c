"""The ``hone`` command: ``plugins`` here (it lists what loaded, whatever failed), every other command from a plugin.

Heavy modules (torch, transformers) are imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence

from hone import __version__
from hone.errors import HoneError, Interrupted
from hone.host import PluginHost
from hone.plugins import load_plugins


def _parser(host: PluginHost) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hone", description="Evaluate and optimise transformer models. Every component is a plugin.")
    parser.add_argument("--version", action="version", version=f"hone {__version__}")
    parser.add_argument("--plugins-dir", action="append", default=[], metavar="DIR", help="load plain .py plugins from DIR (repeatable; also $HONE_PLUGINS_DIR)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("plugins", help="list installed plugins and their components")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    for command in host.registries["command"]:
        if command.name not in CORE_COMMANDS:
            p = sub.add_parser(command.name, help=command.doc)
            if arguments := command.info.get("arguments"):
                arguments(p)
    return parser


def _plugins(args: argparse.Namespace) -> int:
    host = load_plugins(args.plugins_dir, warn=False)
    rows = [info.as_dict() for info in host.plugins]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        origin = f"{row['distribution']} {row['version']}" if row["distribution"] else row["source"]
        print(f"{row['name']}  [{row['status']}]  {origin}  ({row['module']})")
        for kind, names in sorted(row["components"].items()):
            print(f"    {kind}: {', '.join(names)}")
            for name in names:  # each component's doc= line and aliases, as registered
                component = host.registries.get(kind, name)
                aliases = f" (aliases: {', '.join(component.aliases)})" if component.aliases else ""
                print(f"        {name}{aliases}" + (f"  {component.doc}" if component.doc else ""))
        if row["error"]:
            print(f"    error: {row['error']}")
    return 0


CORE_COMMANDS = {"plugins": _plugins}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Before torch loads: CPU tensors of 2 MB and more get transparent huge pages. Without them glibc's heap
    # keeps much of what LoRA with gradient checkpointing frees (train-stage peak 2245 MB, with them 1200 MB,
    # same speed: benchmarks/README.md). A value the user set, 0 included, is kept.
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--plugins-dir", action="append", default=[])
    host = load_plugins(early.parse_known_args(argv)[0].plugins_dir, warn=False)  # their commands join the parser
    args = _parser(host).parse_args(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda message, category, *_: f"warning: {message}\n"  # type: ignore[assignment]
    try:
        if args.command in CORE_COMMANDS:
            return CORE_COMMANDS[args.command](args)
        return int(host.build("command", args.command).run(args))
    except Interrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return 130
    except HoneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. --output in a folder that does not exist, a full disk
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
