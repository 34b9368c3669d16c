"""Load a spec file and report every problem at once, each with its line and path."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from hone.errors import HoneError, describe
from hone.plugins import PluginHost, load_plugins
from hone.registry import Registries
from hone.spec.checks import machine_checks, numbers, spec_checks
from hone.spec.interpolate import interpolate
from hone.spec.yaml_hints import explain
from hone.spec.models import SPEC_DIR, ComponentRef, RunSpec, spec_model


@dataclass(frozen=True)
class SpecIssue:
    path: str
    message: str
    line: int | None = None


class SpecError(HoneError):
    """A spec with problems; ``issues`` lists every one."""

    def __init__(self, file: str, issues: list[SpecIssue]) -> None:
        self.file, self.issues = file, sorted(issues, key=lambda issue: issue.line or 0)
        lines = [f"{file}: {len(issues)} problem{'s' if len(issues) != 1 else ''}"]
        for issue in self.issues:
            where = f"{file}:{issue.line}" if issue.line else file
            path = f" {issue.path}:" if issue.path else ""
            lines.append(f"  {where}:{path} {issue.message}")
        super().__init__("\n".join(lines))


def read_spec_file(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse YAML or JSON (duplicate keys and alias bombs refused), substitute environment variables (``${NAME:-default}``);
    return the data and the YAML node tree used to find lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(str(path), [SpecIssue("", f"cannot read the spec: {error}")]) from None
    json_data, nodes = path.suffix == ".json", None
    try:
        try:
            loader = yaml.SafeLoader(text)
            try:
                nodes = loader.get_single_node()
                data = nodes and not json_data and loader.construct_document(nodes)  # aliases stay shared objects
            finally:
                loader.dispose()
        except (yaml.YAMLError, RecursionError):
            if not json_data:
                raise  # (JSON that YAML cannot read, with tabs, say, has no line numbers)
        _check_tree(str(path), nodes)
        if json_data:
            data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise SpecError(str(path), [SpecIssue("", f"invalid JSON: {error.msg}", error.lineno)]) from None
    except yaml.YAMLError as error:
        message, line = explain(error)
        raise SpecError(str(path), [SpecIssue("", message, line)]) from None
    except RecursionError:
        raise SpecError(str(path), [SpecIssue("", "nested too deeply to be a spec")]) from None
    except _DuplicateKey as error:
        raise SpecError(str(path), [SpecIssue(str(error.args[0]), f"duplicate key '{error.args[0]}': a key may appear once")]) from None
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        raise SpecError(str(path), [SpecIssue("", f"cannot parse the spec: {error}")]) from None
    if not isinstance(data, dict):
        raise SpecError(str(path), [SpecIssue("", "a spec must be a mapping of fields (model, task, data, stages, ...)", 1)])
    data, problems = interpolate(data)
    if problems:
        raise SpecError(str(path), [_issue(data, nodes, loc, message) for loc, message in problems])
    return data, nodes


MAX_VALUES, MAX_DEPTH = 100_000, 64  # far beyond any spec: a "billion laughs" of YAML aliases is refused before it grows


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys):
        raise _DuplicateKey(next(key for key in keys if keys.count(key) > 1))
    return dict(pairs)


def _check_tree(file: str, root: yaml.Node | None) -> None:
    """Refuse duplicate keys (with both lines), an alias inside itself, and aliases expanding past MAX_VALUES / MAX_DEPTH."""
    issues, size = [], {}  # id(node) -> (values, depth) with every alias expanded; (-1, -1) while being counted
    stack: list[tuple[Any, str, bool]] = [(root, "", False)] if root is not None else []
    while stack:
        node, path, done = stack.pop()
        mapping = node.value if isinstance(node, yaml.MappingNode) else []
        kids = [(f"{path}.{k.value}", v) for k, v in mapping] if mapping else \
            [(f"{path}[{i}]", n) for i, n in enumerate(node.value)] if isinstance(node, yaml.SequenceNode) else []
        if done:
            sizes = [size[id(n)] for _, n in kids]
            size[id(node)] = (1 + sum(s[0] for s in sizes), 1 + max((s[1] for s in sizes), default=0))
        elif size.get(id(node)) == (-1, -1):
            raise SpecError(file, [SpecIssue(path.lstrip("."), "a YAML alias here contains itself", node.start_mark.line + 1)])
        elif id(node) not in size:
            size[id(node)], first = (-1, -1), {}
            for key, _ in mapping:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in first:
                        issues.append(SpecIssue(f"{path}.{key.value}".lstrip("."), f"duplicate key '{key.value}' (also on line "
                                                f"{first[key.value]}): a key may appear once", key.start_mark.line + 1))
                    first.setdefault(key.value, key.start_mark.line + 1)
            stack += [(node, path, True), *reversed([(n, p, False) for p, n in kids])]
    if issues:
        raise SpecError(file, issues)
    values, depth = size.get(id(root), (0, 0))
    if values > MAX_VALUES or depth > MAX_DEPTH:
        what = f"more than {MAX_VALUES:,} values" if values > MAX_VALUES else f"more than {MAX_DEPTH} levels"
        path, line = _where_it_grows(root, size)
        raise SpecError(file, [SpecIssue(path, f"the spec expands to {what} (YAML aliases `*name` repeat what an anchor "
                                               "`&name` holds): a spec is nested far less", line)])


def _where_it_grows(root: yaml.Node, size: dict[int, tuple[int, int]]) -> tuple[str, int | None]:
    """The path and line of the value that expands past the limits: down the first too-large child until an alias
    (a node anchored further up the file) or the place where no single child is too large."""
    def too_large(node: yaml.Node) -> bool:
        values, depth = size.get(id(node), (0, 0))
        return values > MAX_VALUES or depth > MAX_DEPTH

    node, path, line = root, "", None
    while True:
        if isinstance(node, yaml.MappingNode):
            kids = [(f"{path}.{k.value}", v, k.start_mark.line + 1) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            kids = [(f"{path}[{i}]", n, line or n.start_mark.line + 1) for i, n in enumerate(node.value)]
        else:
            kids = []
        big = next(((p, n, at) for p, n, at in kids if too_large(n)), None)
        if big is None:
            return path.lstrip("."), line
        child_path, child, at = big
        if child.start_mark.line + 1 < at:  # an alias: its anchor is further up; the alias is used here
            return (child_path if isinstance(node, yaml.MappingNode) else path).lstrip("."), at
        node, path, line = child, child_path, child.start_mark.line + 1


def _child(value: Any, node: yaml.Node | None, key: Any) -> tuple[Any, yaml.Node | None, bool]:
    """Step into ``key``; the bool says whether ``key`` was a real step (not a union tag)."""
    if isinstance(value, dict):
        if key not in value and value.get("type") == key:
            return value, node, False  # pydantic puts the discriminator's tag in the location
        child_node = None
        if isinstance(node, yaml.MappingNode):
            child_node = next((v for k, v in node.value if k.value == str(key)), None) or next(
                (k for k, _ in node.value if k.value == str(key)), None
            )
        return value.get(key), child_node, True
    if isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
        child_node = node.value[key] if isinstance(node, yaml.SequenceNode) and key < len(node.value) else None
        return value[key], child_node, True
    return None, None, True


def _locate(data: Any, nodes: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[str, int | None]:
    """``('stages', 1, 'train', 'optimizer', 'lr')`` -> ``('stages[1].optimizer.lr', 12)``."""
    path, value, node, line = "", data, nodes, None
    for key in loc:
        value, next_node, real = _child(value, node, key)
        if not real:
            continue
        path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else str(key))
        node = next_node
        if node is not None:
            line = node.start_mark.line + 1
    return path, line


def _known_keys(loc: tuple[Any, ...], data: Any, registries: Registries | None) -> list[str]:
    """Field names valid at the mapping that holds ``loc[-1]`` (for 'did you mean')."""
    annotation: Any = spec_model(registries) if registries is not None else RunSpec
    value = data
    for key in loc[:-1]:
        child, _, real = _child(value, None, key)
        if not real:
            continue
        if isinstance(key, int):
            annotation = next((get_args(a)[0] for a in (annotation, *get_args(annotation)) if get_origin(a) is list), None)
        else:
            model = _model_of(annotation, value)
            field = model.model_fields.get(key) if model is not None else None
            if field is None:
                return []
            annotation = field.annotation
        value = child
    model = _model_of(annotation, value)
    if model is None:
        return []
    if not issubclass(model, ComponentRef):
        return list(model.model_fields)
    try:
        return ["name", *registries.get(model.kind, value.get("name", "")).params.model_fields]  # type: ignore[union-attr]
    except (KeyError, AttributeError):
        return ["name"]


def _model_of(annotation: Any, value: Any) -> Any:
    """The pydantic model inside an annotation such as ``list[Stage] | None``, picking a union by ``type``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg, value)
        if found is None:
            continue
        type_field = getattr(found, "model_fields", {}).get("type")
        if type_field is None or not isinstance(value, dict) or value.get("type") in get_args(type_field.annotation):
            return found
    return None


def _is_stage_type(err: Any) -> bool:
    """A stage whose ``type`` names no installed stage kind (or has none)."""
    loc = tuple(err["loc"])
    return loc[:1] == ("stages",) and (err["type"] in ("union_tag_invalid", "union_tag_not_found")
                                       or (err["type"] == "literal_error" and loc[2:] == ("type",)))


def _stage_type_message(err: Any, registries: Registries) -> str:
    kinds = registries["stage"]
    if err["type"] == "union_tag_not_found":
        return f"a stage needs a `type`: one of {', '.join(kinds.names(True))}"
    tag = err["ctx"]["tag"] if err["type"] == "union_tag_invalid" else err["input"]
    try:
        kinds.get(str(tag))
    except KeyError as unknown:
        return str(unknown)
    return err["msg"]


def issues_from(error: ValidationError, data: Any, nodes: yaml.Node | None, registries: Registries | None) -> list[SpecIssue]:
    issues = []
    for err in error.errors():
        path, line = _locate(data, nodes, tuple(err["loc"]))
        message = err["msg"]
        if _is_stage_type(err) and registries is not None:
            path, line = _locate(data, nodes, (*err["loc"][:2], "type"))
            message = _stage_type_message(err, registries)
        elif err["type"] == "extra_forbidden":
            known = _known_keys(tuple(err["loc"]), data, registries)
            close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
            message = f"unknown field '{err['loc'][-1]}'." + (f" Did you mean '{close[0]}'?" if close else "")
            if known:
                message += f" Valid fields: {', '.join(sorted(known))}"
        elif err["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        issues.append(SpecIssue(path, message, line))
    return sorted(issues, key=lambda issue: issue.line or 0)


def validate_spec(data: dict[str, Any], registries: Registries, file: str = "<spec>", nodes: yaml.Node | None = None,
                  base: Path | None = None) -> RunSpec:
    """The spec, or a SpecError listing every problem: numbers no run can use, then the models' and the cross-spec
    checks (stage names, data splits, what components declare); ``base`` (the spec's folder) lets validators check
    files it names."""
    context: dict[str, Any] = {"registries": registries} | ({SPEC_DIR: base} if base is not None else {})
    found = [_issue(data, nodes, loc, message) for loc, message in numbers(data)]
    try:
        spec = spec_model(registries).model_validate(data, context=context)
    except ValidationError as error:
        taken = {issue.path for issue in found}
        raise SpecError(file, found + [i for i in issues_from(error, data, nodes, registries) if i.path not in taken]) from None
    if found := found + [_issue(data, nodes, loc, message) for loc, message in spec_checks(spec, registries)]:
        raise SpecError(file, found)
    return spec


def _issue(data: Any, nodes: yaml.Node | None, loc: tuple[Any, ...], message: str) -> SpecIssue:
    path, line = _locate(data, nodes, loc)
    return SpecIssue(path, message, line)


def check_ready(file: str | Path, spec: RunSpec) -> None:
    """What the spec needs of this machine (data files, the device): a SpecError before any work if it is missing."""
    problems = list(machine_checks(spec))
    if problems:
        data, nodes = read_spec_file(Path(file))
        raise SpecError(str(file), [_issue(data, nodes, loc, message) for loc, message in problems])


def load_spec(path: str | Path, host: PluginHost | None = None, plugins_dirs: list[str] | None = None) -> tuple[RunSpec, PluginHost]:
    """Read, load the spec's plugin folders (and ``plugins_dirs``), validate against every plugin, resolve paths."""
    path = Path(path)
    if not path.exists():
        raise SpecError(str(path), [SpecIssue("", "file not found")])
    data, nodes = read_spec_file(path)
    if host is None:
        dirs = data.get("plugins_dir") or []
        dirs = [dirs] if isinstance(dirs, str) else dirs
        if isinstance(dirs, list) and all(isinstance(d, str) for d in dirs):
            data["plugins_dir"] = dirs
            host = load_plugins([*(plugins_dirs or []), *(path.parent / d for d in dirs)])
        else:
            host = load_plugins(plugins_dirs or [])
    spec = validate_spec(data, host.registries, str(path), nodes, path.parent.resolve())
    try:
        return spec.resolve_paths(path.parent.resolve()), host
    except (OSError, ValueError) as error:  # a path with a NUL byte or a name too long for the file system
        raise SpecError(str(path), [SpecIssue("", f"a path in the spec cannot be used: {describe(error, 200)}")]) from None


def check_sections(file: str | Path, spec: RunSpec, host: PluginHost) -> None:
    """The checks of each section the spec has (``search:``...) that look across the whole spec; a SpecError if any fails."""
    for section in host.registries["spec_section"]:
        if (settings := getattr(spec, section.name, None)) is not None:
            host.build("spec_section", (section.name, settings)).check(spec, host, Path(file))
