"""Fuzzed specs (YAML and JSON, generated and mutated): always a SpecError report or a valid spec, never a traceback.

    HONE_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/reliability/test_fuzz_specs.py -s
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hone.plugins import PluginHost, load_plugins
from hone.spec.models import RunSpec
from hone.spec.loading import SpecError, load_spec

from .fuzzing import FUZZ, TRIED, file_bytes, json_values, mutated_text, mutated_tree

pytestmark = pytest.mark.filterwarnings("ignore::hone.plugins.PluginLoadWarning")

BASE: dict[str, Any] = {
    "name": "fuzz",
    "seed": 1,
    "output_dir": "runs",
    "plugins_dir": [],
    "model": {"source": "some/model", "revision": None, "trust_remote_code": False},
    "task": {"name": "token-classification", "max_length": 64},
    "data": {"reader": {"name": "conll", "tag_column": 3}, "train": "train.txt", "validation": "valid.txt", "limit": 10},
    "device": "cpu",
    "precision": "fp32",
    "callbacks": ["csv-logger"],
    "stages": [
        {"type": "train", "name": "head", "epochs": 1, "train_only": ["classifier.*"], "optimizer": {"name": "adamw", "lr": 1e-3},
         "scheduler": {"name": "linear", "warmup": 0.1}, "early_stopping": {"metric": "entity_f1", "patience": 2}},
        {"type": "evaluate", "split": "validation", "metrics": ["entity-f1", {"name": "entity-f1", "mode": "strict"}]},
    ],
}


@functools.cache
def host() -> PluginHost:
    """Loaded once, and not a fixture argument: hypothesis would print all of it with every failing example."""
    return load_plugins(warn=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-specs")


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    counts = {k: v for k, v in sorted(TRIED.items()) if k.startswith("spec")}
    print(f"\nfuzzed spec files: {sum(counts.values())} {counts}")


def serialise(data: Any, form: str) -> str:
    if form == "json":
        return json.dumps(data, ensure_ascii=False)
    try:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    except yaml.YAMLError:
        return json.dumps(data)  # JSON is YAML too


def check(path: Path, host: PluginHost | None) -> None:
    """The one property: a valid RunSpec, or a SpecError naming the file with at least one issue."""
    try:
        spec, _ = load_spec(path, host=host)
    except SpecError as error:
        TRIED[f"spec-{path.suffix[1:]}-refused"] += 1
        assert error.issues and str(error).startswith(f"{path}: ")
        assert all(issue.message and (issue.line is None or issue.line >= 1) for issue in error.issues)
    else:
        TRIED[f"spec-{path.suffix[1:]}-valid"] += 1
        assert isinstance(spec, RunSpec)


def test_the_base_spec_is_valid(folder: Path) -> None:
    (folder / "base.yaml").write_text(serialise(BASE, "yaml"))
    load_spec(folder / "base.yaml", host=host())


@FUZZ
@given(data=mutated_tree(BASE), form=st.sampled_from(["yaml", "json"]), with_plugins=st.integers(0, 9))
def test_mutated_spec_trees(folder: Path, data: Any, form: str, with_plugins: int) -> None:
    path = folder / f"tree.{form}"
    path.write_bytes(serialise(data, form).encode("utf-8", errors="surrogatepass"))
    # one in ten loads the plugins itself, so fuzzed plugins_dir values reach plugin discovery
    check(path, None if with_plugins == 0 else host())


@FUZZ
@given(data=st.data(), form=st.sampled_from(["yaml", "json"]))
def test_mutated_spec_text(folder: Path, data: st.DataObject, form: str) -> None:
    text = data.draw(mutated_text(serialise(BASE, form)))
    path = folder / f"text.{form}"
    path.write_bytes(data.draw(file_bytes(text)))
    check(path, host())


@FUZZ
@given(value=json_values, form=st.sampled_from(["yaml", "yml", "json"]))
def test_arbitrary_documents(folder: Path, value: Any, form: str) -> None:
    path = folder / f"any.{form}"
    path.write_bytes(serialise(value, "json" if form == "json" else "yaml").encode("utf-8", errors="surrogatepass"))
    check(path, host())


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "a: " + "[" * 100_000,
        '{"a": ' * 100_000,
        "a: &x [1]\nb: *x\nstages: *x\n",
        "model: !!python/object/apply:os.system ['touch /tmp/hone-pwned']\n",
        "model: \x00\n",
        "model: \"a\\0b\"\ntask: token-classification\ndata: {reader: conll, train: x}\nstages: [{type: evaluate}]\n",
        "model: " + "m" * 5000 + "\ntask: token-classification\ndata: {reader: conll, train: x}\nstages: [{type: evaluate}]\n",
        "plugins_dir: [\"a\\0b\"]\nmodel: m\ntask: token-classification\ndata: {reader: conll, train: x}\nstages: [{type: evaluate}]\n",
        "plugins_dir: \"" + "p" * 5000 + "\"\nmodel: m\ntask: token-classification\ndata: {reader: conll, train: x}\nstages: [{type: evaluate}]\n",
        "? [a, b]\n: c\n",
        "1: 2\n",
        "null: 1\nmodel: m\n",
        "---\nmodel: a\n---\nmodel: b\n",
        "",
        "\ufeffmodel: m\n",
    ],
    ids=["deep-list", "deep-value", "deep-json-in-yaml", "aliases", "python-tag", "nul", "nul-in-model-path", "long-model-path",
         "nul-in-plugins-dir", "long-plugins-dir", "complex-key", "int-key", "null-key", "two-documents", "empty", "bom"],
)
def test_known_hostile_specs(folder: Path, text: str) -> None:
    for suffix in ("yaml", "json"):
        path = folder / f"hostile.{suffix}"
        path.write_text(text, encoding="utf-8")
        check(path, None)
    assert not Path("/tmp/hone-pwned").exists()


def test_unreadable_bytes_are_a_spec_error(folder: Path) -> None:
    path = folder / "binary.yaml"
    path.write_bytes(b"model: \xff\xfe\x00\x81\n")
    check(path, host())
    check(folder, host())  # a folder, not a file


# A one-line "billion laughs" (10^9 leaves) for any value of the spec: refused while reading, however deep it sits.
ONE_LINE_BOMB = "[&b0 [x, x, x, x, x, x, x, x, x, x]" + "".join(f", &b{i} [{', '.join([f'*b{i - 1}'] * 10)}]"
                                                                  for i in range(1, 10)) + "]"
SCALAR_LINE = re.compile(r"^(\s*)(- )?([A-Za-z_]+): (\S.*)$")


@pytest.mark.parametrize("trap", ["duplicate", "bomb", "integer"])
@FUZZ
@given(data=st.data())
def test_a_trap_on_any_line_is_refused_at_that_line(folder: Path, data: st.DataObject, trap: str) -> None:
    """A duplicate key, an alias bomb or an integer beyond 64 bits put on any key: value line of a valid spec."""
    lines = serialise(BASE, "yaml").splitlines()
    candidates = [i for i, line in enumerate(lines) if SCALAR_LINE.match(line)]
    at = data.draw(st.sampled_from(candidates))
    indent, dash, key, value = SCALAR_LINE.match(lines[at]).groups()  # type: ignore[union-attr]
    head = f"{indent}{dash or ''}{key}: "
    if trap == "duplicate":
        lines.insert(at + 1, f"{' ' * (len(indent) + len(dash or ''))}{key}: {value}")
        line = at + 2
    elif trap == "bomb":
        lines[at], line = head + ONE_LINE_BOMB, at + 1
    else:
        big = data.draw(st.one_of(st.integers(min_value=2**64), st.integers(max_value=-(2**63) - 1)))
        lines[at], line = head + str(big), at + 1
    path = folder / "trap.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(SpecError) as caught:
        load_spec(path, host=host())
    TRIED[f"spec-trap-{trap}-refused"] += 1
    assert time.monotonic() - started < 10
    expected = {"duplicate": f"duplicate key '{key}'", "bomb": "aliases", "integer": "64"}[trap]
    assert any(expected in issue.message and issue.line == line for issue in caught.value.issues), caught.value.issues
