"""lm-eval tasks from a folder of YAML files: which names exist, whether their data is local, their configs.

Imports lm_eval (not torch): the lm-eval stage's spec model calls :func:`task_problems` when a spec is validated.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval.tasks._index import Entry, Kind, TaskIndex
from lm_eval.tasks._yaml_loader import load_yaml

LOCAL_BUILDERS = ("json", "csv", "parquet", "text", "arrow", "pandas")
"""``dataset_path`` values that are `datasets`' builders for local files (with ``dataset_kwargs.data_files``)."""
SETTINGS_KEY = "lm_eval"  # the stage's record of its settings, beside one result per task


@dataclass(frozen=True)
class Folder:
    """A folder of task YAMLs, indexed by lm-eval (only this folder: lm-eval's own tasks read Hub datasets)."""

    path: Path
    index: dict[str, Entry]
    unreadable: tuple[str, ...]  # YAML files lm-eval's index skips silently, with why

    def names(self) -> list[str]:
        return sorted(self.index)


def folder(path: Path) -> Folder:
    """The folder's tasks, indexed again only when one of its YAML files changed."""
    yamls = sorted(path.glob("**/*.yaml"))
    return _folder(path, tuple((str(p), p.stat().st_mtime_ns) for p in yamls))


@functools.lru_cache(maxsize=16)
def _folder(path: Path, stamps: tuple[tuple[str, int], ...]) -> Folder:
    unreadable = []
    for name, _ in stamps:
        try:
            load_yaml(name, resolve_func=False)
        except Exception as error:  # lm-eval's index would drop the file without a word
            unreadable.append(f"{Path(name).relative_to(path)}: {type(error).__name__}: {error}")
    return Folder(path, TaskIndex.build([path]), tuple(unreadable))


@functools.cache
def builtin_index() -> dict[str, Entry]:
    """lm-eval's own tasks (several seconds to index: only asked for when a name is not in the spec's folder)."""
    import lm_eval.tasks

    return TaskIndex.build([Path(lm_eval.tasks.__file__).parent])


def is_pattern(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def expand(names: Sequence[str], tasks: Folder) -> list[str]:
    """Task names with tags and glob patterns replaced by the tasks they stand for, each once, in order."""
    out: list[str] = []
    for name in names:
        entry = tasks.index.get(name)
        if entry is not None and entry.kind == Kind.TAG:
            found = sorted(entry.tags)
        elif entry is None and is_pattern(name):
            found = [n for n in tasks.names()
                     if fnmatch.fnmatchcase(n, name) and tasks.index[n].kind in (Kind.TASK, Kind.PY_TASK)]
        else:
            found = [name]
        out.extend(n for n in found if n not in out)
    return out


def name_problem(name: str, tasks: Folder) -> str | None:
    """Why ``name`` (a task, tag or glob pattern of the folder) cannot run here; ``None`` if it can."""
    entry = tasks.index.get(name)
    if entry is None and not is_pattern(name):
        return _unknown(name, tasks)
    if entry is not None and entry.kind == Kind.GROUP:
        members = [m if isinstance(m, str) else str(m.get("task") or m.get("group")) for m in _list(entry.cfg, "task")]
        return f"'{name}' is an lm-eval group ({entry.yaml_path}); hone runs tasks and tags: name its tasks instead " \
            f"({', '.join(members)})"
    found = expand([name], tasks)
    if not found:
        return f"the pattern '{name}' matches no task in {tasks.path}; names there: {_names(tasks)}"
    problems = [p for task in found if (p := dataset_problem(task, tasks.index[task]))]
    return "; ".join(problems) or None


def _unknown(name: str, tasks: Folder) -> str:
    where = f"no lm-eval task '{name}' in {tasks.path}"
    unreadable = f"; YAML files there that cannot be read: {'; '.join(tasks.unreadable)}" if tasks.unreadable else ""
    close = difflib.get_close_matches(name, tasks.names(), n=1, cutoff=0.6)
    if close:
        return f"{where}. Did you mean '{close[0]}'? Names there: {_names(tasks)}{unreadable}"
    builtin = builtin_index().get(name)
    if builtin is not None:
        source = builtin.cfg.get("dataset_path") if builtin.cfg else None
        reads = f"the Hub dataset '{source}'" if source else "data from the Hub"
        return (f"'{name}' is one of lm-eval's own tasks ({builtin.yaml_path}), which reads {reads}; hone runs lm-eval "
                f"offline on local files: copy its YAML into {tasks.path} with `dataset_path: json` and "
                "`dataset_kwargs: {data_files: {test: <local file>}}`")
    close = difflib.get_close_matches(name, list(builtin_index()), n=1, cutoff=0.8)
    hint = f" (lm-eval has a task '{close[0]}', which reads a Hub dataset: copy its YAML there over local files)" \
        if close else ""
    return f"{where}{hint}. Names there: {_names(tasks)}{unreadable}"


def _names(tasks: Folder) -> str:
    return ", ".join(tasks.names()) or "none"


def _list(cfg: dict[str, Any] | None, key: str) -> list[Any]:
    value = (cfg or {}).get(key)
    return value if isinstance(value, list) else [] if value is None else [value]


def data_files(kwargs: dict[str, Any]) -> Iterator[str]:
    """Every file (or glob pattern) of ``dataset_kwargs.data_files``: a string, a list, or a split -> files mapping."""
    files = kwargs.get("data_files")
    for item in files.values() if isinstance(files, dict) else [files]:
        yield from (item if isinstance(item, list) else [] if item is None else [item])


def dataset_problem(name: str, entry: Entry) -> str | None:
    """Why the data of task ``name`` is not local (hone does not fetch datasets), or ``None``."""
    cfg = entry.cfg or {}
    if entry.kind == Kind.PY_TASK or cfg.get("custom_dataset") is not None:
        return None  # its own Python code builds the dataset
    here = Path(entry.yaml_path).parent if entry.yaml_path else Path.cwd()
    source, kwargs = cfg.get("dataset_path"), cfg.get("dataset_kwargs") or {}
    if not isinstance(source, str):
        return f"task '{name}' ({entry.yaml_path}) sets no `dataset_path`; use `dataset_path: json` with " \
            "`dataset_kwargs: {data_files: {test: <file>}}`"
    if source in LOCAL_BUILDERS:
        files = [str(f) for f in data_files(kwargs)]
        if not files and not kwargs.get("data_dir"):
            return f"task '{name}' ({entry.yaml_path}): `dataset_path: {source}` needs " \
                "`dataset_kwargs: {data_files: ...}`"
        missing = [f for f in files if not _matches(here, f)]
        if missing:
            paths = ", ".join(str(here / f) for f in missing)
            return f"task '{name}' ({entry.yaml_path}): data file not found: {paths}"
        return None
    if (here / source).is_dir():
        return None
    return (f"task '{name}' ({entry.yaml_path}) reads the Hub dataset '{source}'; hone runs lm-eval offline on local "
            f"files: use `dataset_path: json` (or {', '.join(LOCAL_BUILDERS[1:])}) with `dataset_kwargs: {{data_files: "
            "{test: <file relative to the YAML>}}`, or a local dataset folder")


def _matches(here: Path, pattern: str) -> bool:
    path = Path(pattern) if Path(pattern).is_absolute() else here / pattern
    if any(ch in pattern for ch in "*?["):
        return any(path.parent.glob(path.name))
    return path.exists()


def task_configs(names: Sequence[str], tasks: Folder) -> list[dict[str, Any]]:
    """Each task's whole config (includes merged, ``!function`` resolved) with its data paths made absolute against
    its YAML's folder, so the run does not depend on the working directory."""
    configs = []
    for name in expand(names, tasks):
        entry = tasks.index[name]
        assert entry.yaml_path is not None
        cfg = load_yaml(entry.yaml_path, resolve_func=True)
        for key in ("tag", "group", "task_list"):
            cfg.pop(key, None)  # a task is run on its own, outside the tags that list it
        here = Path(entry.yaml_path).parent
        kwargs = dict(cfg.get("dataset_kwargs") or {})
        if isinstance(kwargs.get("data_files"), (str, list, dict)):
            kwargs["data_files"] = _absolute(kwargs["data_files"], here)
        if isinstance(kwargs.get("data_dir"), str):
            kwargs["data_dir"] = str(here / kwargs["data_dir"])
        if kwargs:
            cfg["dataset_kwargs"] = kwargs
        source = cfg.get("dataset_path")
        if isinstance(source, str) and source not in LOCAL_BUILDERS and (here / source).is_dir():
            cfg["dataset_path"] = str((here / source).resolve())
        configs.append(cfg)
    return configs


def _absolute(files: Any, here: Path) -> Any:
    if isinstance(files, dict):
        return {split: _absolute(value, here) for split, value in files.items()}
    if isinstance(files, list):
        return [_absolute(value, here) for value in files]
    return str(here / files) if isinstance(files, str) and not Path(files).is_absolute() else files
