"""Hypothesis strategies shared by the fuzz tests: JSON-like values, tree and text mutations, counts."""

from __future__ import annotations

import copy
import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# HONE_FUZZ_EXAMPLES=2000 for the figures in docs/reliability.md; the default keeps the suite quick.
EXAMPLES = int(os.environ.get("HONE_FUZZ_EXAMPLES", "60"))
# derandomized (the same examples every run) unless HONE_FUZZ_RANDOM=1 asks for new ones
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("HONE_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
TRIED: Counter[str] = Counter()

# Text that has broken parsers before: YAML syntax, tags that would build objects, aliases, control characters.
NASTY = [
    ":", "- ", "-", "[", "]", "{", "}", "&a ", "*a", "!", "!!python/object/apply:os.system ['touch /tmp/hone-pwned']",
    "!!binary aGVsbG8=", "!!set {a, b}", "!!timestamp 2001-12-14", "!!float .nan", ".inf", "<<: *a", "%YAML 1.1\n",
    "---\n", "...\n", "|", ">", "#", "\t", "\n", "\r", "'", '"', "\\", "\x00", "\ufeff", "\u2028", "\x85", "\x0c",
    "é", "名", "🙂", "null", "~", "yes", "no", "0x1F", "1e400", "-0", "9" * 5000, "[" * 300, "{" * 300,
    "../../../etc/passwd", "/dev/zero", "C:\\x", "a" * 5000, "\udcff",
]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.sampled_from(NASTY),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=12,
)


def paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in a tree of dicts and lists, the root included."""
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += paths(value, (*prefix, index))
    return found


def typo(word: str, draw: Any) -> str:
    if not word:
        return "x"
    i = draw(st.integers(0, len(word) - 1))
    return draw(st.sampled_from([word[:i] + word[i + 1:], word[:i] + word[i] + word[i:], word.upper(), word + "s"]))


@st.composite
def mutated_tree(draw: Any, tree: Any, max_mutations: int = 4) -> Any:
    """``tree`` with a few random edits: delete, replace, insert, rename, wrap, duplicate."""
    tree = copy.deepcopy(tree)
    for _ in range(draw(st.integers(1, max_mutations))):
        where = draw(st.sampled_from(paths(tree)))
        if not where:
            tree = draw(st.sampled_from([tree, [tree], draw(json_values)]))
            continue
        parent = tree
        for key in where[:-1]:
            parent = parent[key]
        key, value = where[-1], parent[where[-1]]
        action = draw(st.sampled_from(["delete", "replace", "insert", "rename", "wrap", "duplicate", "stringify"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(json_values)
        elif action == "insert" and isinstance(value, dict):
            value[draw(st.one_of(st.text(max_size=10), st.sampled_from(NASTY)))] = draw(json_values)
        elif action == "insert" and isinstance(value, list):
            value.insert(draw(st.integers(0, len(value))), draw(json_values))
        elif action == "rename" and isinstance(parent, dict):
            parent[typo(str(key), draw)] = parent.pop(key)
        elif action == "wrap":
            parent[key] = [value]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(value))
        elif action == "stringify":
            parent[key] = str(value)
    return tree


@st.composite
def mutated_text(draw: Any, text: str, max_mutations: int = 3) -> str:
    """``text`` with a few random edits: delete a span, insert nasty text, duplicate or drop a line, truncate."""
    for _ in range(draw(st.integers(1, max_mutations))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "line", "truncate", "swap"]))
        if action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)):]
        elif action == "insert":
            text = text[:at] + draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=8))) + text[at:]
        elif action == "truncate":
            text = text[:at]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            if action == "line":
                lines.insert(i, draw(st.sampled_from([lines[i], "", draw(st.text(max_size=30))])))
            else:
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


@st.composite
def file_bytes(draw: Any, text: str) -> bytes:
    """``text`` as UTF-8 (lone surrogates become invalid bytes), sometimes with random bytes spliced in."""
    data = text.encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return data
