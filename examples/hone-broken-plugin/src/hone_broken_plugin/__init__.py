"""A plugin whose dependency is missing: importing it raises ImportError (on purpose).

hone must list it as failed, warn about it by name, and keep every other plugin working.
"""

from __future__ import annotations

import hone_missing_backend  # noqa: F401  # not installable: this is the point

from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register


def never(params: NoParams) -> None:
    """Never registered: the import above fails first."""


@hookimpl
def register_metrics(register: Register) -> None:
    register("never-registered", never, NoParams)
