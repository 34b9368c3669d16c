"""YAML syntax errors in plain words: the parser's message, its line, and a hint at the usual cause."""

from __future__ import annotations

import yaml


def _at(mark: yaml.Mark | None) -> int | None:
    return mark.line + 1 if mark is not None else None


def explain(error: yaml.YAMLError) -> tuple[str, int | None]:
    """``("invalid YAML: <what the parser says> (<hint>)", line)``; the line is where the cause most likely is."""
    problem = str(getattr(error, "problem", None) or error)
    context = str(getattr(error, "context", None) or "")
    line, opened = _at(getattr(error, "problem_mark", None)), _at(getattr(error, "context_mark", None))
    hint = ""
    if "'\\t'" in problem:
        hint = "YAML indents with spaces only: replace the tab on this line with spaces"
    elif problem.startswith("expected <block end>"):
        hint = ("this line is indented differently from the lines above it: keys of one mapping (and the `-` items of "
                "one list) start in the same column")
    elif problem == "could not find expected ':'":
        hint, line = "a key without its colon: write `key: value` (with a space after the colon)", opened or line
    elif problem == "mapping values are not allowed here":
        hint = ("a key is indented deeper than the line above it, or that line lacks its colon (`key: value`), or a value "
                "holds ': ' (quote it)")
    elif "quoted scalar" in context:
        hint, line = f"a quote opened on line {opened} is never closed", opened or line
    elif "flow" in context:
        hint = (f"a `[` or `{{` opened on line {opened} is not closed, or a comma is missing between its items"
                if opened else "a `[` or `{` is not closed, or a comma is missing between its items")
    elif problem.startswith("found undefined alias"):
        hint = "`*name` repeats what an anchor `&name` holds, and no `&name` comes before it: quote a value starting with `*`"
    elif problem.startswith("found character") and "cannot start any token" in problem:
        hint = "quote a value that starts with this character"
    return f"invalid YAML: {problem}" + (f" ({hint})" if hint else ""), line
