from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hone.cli import main
from hone.plugins import load_plugins
from hone_plugins.commands.schema import spec_schema

TOP_K = '''
from pydantic import BaseModel, ConfigDict, Field
from hone.hookspecs import hookimpl


class TopKParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = Field(5, gt=0)


@hookimpl
def register_metrics(register):
    register("top-k", lambda params: None, TopKParams, aliases=("topk",), doc="Top-k accuracy.")
'''


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HONE_DISABLE_PLUGINS", "HONE_ALLOW_PLUGINS", "HONE_PLUGINS_DIR"):
        monkeypatch.delenv(name, raising=False)


def hone_schema(capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, Any]:
    assert main([*options, "schema"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def schema(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return hone_schema(capsys)


def choice(schema: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    choices = schema["$defs"][f"{kind.capitalize()}Ref"]["anyOf"][1:]
    return next(c for c in choices if c["title"] == name)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_hone_schema_prints_a_json_schema_of_run_specs(schema: dict[str, Any]) -> None:
    assert schema["title"] == "RunSpec" and schema["type"] == "object"
    assert {"model", "task", "data", "stages"} <= set(schema["required"])


def test_hone_schema_is_a_valid_json_schema(schema: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_every_reference_points_at_a_definition(schema: dict[str, Any]) -> None:
    for ref in refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in schema["$defs"], ref


def test_adamw_params_are_in_the_schema(schema: dict[str, Any]) -> None:
    adamw = choice(schema, "optimizer", "adamw")
    assert adamw["properties"]["name"] == {"enum": ["adamw"]}
    assert adamw["properties"]["lr"]["exclusiveMinimum"] == 0
    assert adamw["properties"]["lr"]["default"] == 1e-3
    assert adamw["additionalProperties"] is False


def test_every_installed_optimizer_is_in_the_schema_with_its_params(schema: dict[str, Any]) -> None:
    optimizers = list(load_plugins(warn=False).registries["optimizer"])
    assert {"sgd", "adam", "adamw", "adafactor"} <= {c.name for c in optimizers}
    for component in optimizers:
        properties = choice(schema, "optimizer", component.name)["properties"]
        assert set(properties) == {"name", *component.params.model_fields}


@pytest.mark.parametrize("kind", ["task", "reader", "optimizer", "scheduler", "metric", "callback"])
def test_names_may_be_given_as_plain_strings(schema: dict[str, Any], kind: str) -> None:
    names = schema["$defs"][f"{kind.capitalize()}Ref"]["anyOf"][0]["enum"]
    assert names == [c for component in load_plugins(warn=False).registries[kind] for c in (component.name, *component.aliases)]
    assert names


def test_plugins_dir_components_and_aliases_are_in_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "top_k.py").write_text(textwrap.dedent(TOP_K))
    schema = hone_schema(capsys, "--plugins-dir", str(tmp_path))
    top_k = choice(schema, "metric", "top-k")
    assert top_k["properties"]["name"] == {"enum": ["top-k", "topk"]}
    assert top_k["properties"]["k"]["exclusiveMinimum"] == 0
    assert top_k["description"] == "Top-k accuracy."
    assert {"top-k", "topk"} <= set(schema["$defs"]["MetricRef"]["anyOf"][0]["enum"])


def test_spec_schema_accepts_a_valid_spec_and_rejects_a_bad_param() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = spec_schema(load_plugins(warn=False).registries)
    spec = {
        "model": {"source": "any-model-name"},
        "task": "token-classification",
        "data": {"reader": "conll", "train": "train.txt"},
        "stages": [{"type": "train", "optimizer": {"name": "adamw", "lr": 5e-5}}, {"type": "evaluate", "metrics": ["entity-f1"]}],
    }
    jsonschema.validate(spec, schema)
    spec["stages"][0]["optimizer"]["lr"] = -1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)


def test_model_may_be_given_as_a_plain_string(schema: dict[str, Any]) -> None:
    def accepts_string(node: dict[str, Any]) -> bool:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
        return node.get("type") == "string" or any(accepts_string(n) for n in node.get("anyOf", []) + node.get("oneOf", []))

    assert accepts_string(schema["properties"]["model"])
