"""Environment variables in spec values: ``${NAME}``, ``${NAME:-default}`` (unset or empty), ``${NAME-default}``
(unset only), and ``$$`` for a literal ``$``; a ``$`` followed by anything else stays as it is."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r"\$(?:(\$)|\{([^}]*)\}|(\{))")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORMS = "${NAME} or ${NAME:-default} (write $$ for a literal $)"

Problem = tuple[tuple[Any, ...], str]


def substitute(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` with every reference replaced, and what was wrong with any that could not be."""
    problems: list[str] = []

    def one(match: re.Match[str]) -> str:
        escaped, body, unclosed = match.groups()
        if escaped:
            return "$"
        if unclosed:
            problems.append(f"'${{' is not closed: write {_FORMS}")
            return match.group(0)
        name, sep, default = _split(body)
        if not _NAME.fullmatch(name):
            problems.append(f"'${{{body}}}' does not name an environment variable: write {_FORMS}")
            return match.group(0)
        value = environ.get(name)
        if sep == ":-" and not value or sep == "-" and value is None:
            return default
        if value is None:
            problems.append(f"environment variable {name} is not set: set it (export {name}=...) "
                            f"or give a default, ${{{name}:-...}}")
            return match.group(0)
        return value

    return _TOKEN.sub(one, text), problems


def _split(body: str) -> tuple[str, str, str]:
    """``'A:-b'`` -> ``('A', ':-', 'b')``; ``'A'`` -> ``('A', '', '')``."""
    head = _NAME.match(body)
    end = head.end() if head else 0
    for sep in (":-", "-"):
        if body.startswith(sep, end):
            return body[:end], sep, body[end + len(sep):]
    return body, "", ""


def interpolate(data: Any, environ: Mapping[str, str] | None = None) -> tuple[Any, list[Problem]]:
    """``data`` (parsed YAML/JSON) with every string value substituted, and each problem's location and message.

    Keys are left alone. Containers are rebuilt (once each: a YAML alias shares the result), so ``$$`` is read once."""
    environ = os.environ if environ is None else environ
    problems: list[Problem] = []
    done: dict[int, Any] = {}

    def walk(value: Any, loc: tuple[Any, ...]) -> Any:
        if isinstance(value, str):
            if "$" not in value:
                return value
            result, found = substitute(value, environ)
            problems.extend((loc, message) for message in found)
            return result
        if not isinstance(value, (dict, list)):
            return value
        if id(value) in done:
            return done[id(value)]
        if isinstance(value, dict):
            done[id(value)] = new = {}
            new.update((key, walk(item, (*loc, key))) for key, item in value.items())
        else:
            done[id(value)] = new = []
            new.extend(walk(item, (*loc, index)) for index, item in enumerate(value))
        return new

    return walk(data, ()), problems
