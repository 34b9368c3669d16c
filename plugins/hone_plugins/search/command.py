"""``hone search``: trials of a spec over its ``search.space``, in worker processes sharing one Optuna study."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import yaml

from hone.atomic import write_text
from hone.errors import HoneError
from hone.plugins import PluginHost
from hone_plugins.folder_lock import lock_folder
from hone_plugins.search.check import base_data, raise_search_issues, search_issues
from hone_plugins.search.results import write_results
from hone_plugins.search.study import Search, make_sampler, open_study, recover, work
from hone.run.rundir import changed_fields
from hone.spec.models import RunSpec
from hone.spec.loading import check_ready, load_spec, read_spec_file

SEARCH_SPEC, STUDY_DB = "search.yaml", "study.db"
PARENT_ENV = "HONE_SEARCH_PARENT"  # in worker processes: the parent's pid (they exit when it dies)
STORAGE_ENV = "HONE_SEARCH_STORAGE"  # in worker processes: the storage URL, kept off the command line (passwords)


def check_search(spec_file: Path, spec: RunSpec, host: PluginHost) -> None:
    """Report every problem of the spec's search section at once (path, line, message), or none."""
    sampler_error = None
    if spec.search is not None:
        try:
            sampler = make_sampler(spec, host, spec.search.parsed_space())
            if spec.search.trials is None and spec.search.timeout is None and not hasattr(sampler, "is_exhausted"):
                sampler_error = f"searcher '{spec.search.searcher.name}' never runs out of points: set `trials` or `timeout`"
        except HoneError as error:
            sampler_error = str(error)
    data, nodes = read_spec_file(Path(spec_file))
    raise_search_issues(str(spec_file), data, nodes, search_issues(spec, host.registries, sampler_error))


def prepare(spec_file: Path, plugins_dirs: Sequence[str] = (), out: Path | None = None, storage: str | None = None,
            check: bool = True, quiet: bool = False) -> Search:
    """Load and check the spec (before any trial), and find where its search lives."""
    spec, host = load_spec(spec_file, plugins_dirs=list(plugins_dirs))
    if check or spec.search is None:
        check_ready(spec_file, spec)
        check_search(spec_file, spec, host)
    assert spec.search is not None
    directory = (out or Path(spec.output_dir) / f"{spec.name}-search").resolve()
    url = storage or spec.search.storage or f"sqlite:///{directory / STUDY_DB}"
    return Search(spec, host, spec.search.parsed_space(), base_data(spec), directory, url, spec.search.study or spec.name, quiet)


def _claim(search: Search, resume: bool) -> IO[str]:
    """Lock the search directory (one ``hone search`` at a time) and record its spec, or check it is the same."""
    directory = search.search_dir
    saved = directory / SEARCH_SPEC
    if resume and not saved.exists():
        raise HoneError(f"{directory}: nothing to resume (no {SEARCH_SPEC}); run without --resume")
    if not saved.exists() and directory.exists() and any(directory.iterdir()):
        raise HoneError(f"{directory} already holds something else than a search: choose another --out")
    lock = lock_folder(directory, "hone search")
    if saved.exists():
        changed = changed_fields(yaml.safe_load(saved.read_text(encoding="utf-8")), search.spec, search.host)
        if changed:
            lock.close()
            raise HoneError(f"{directory}: the spec changed since this search started (fields: {', '.join(changed)}); "
                            "use another --out")
    else:
        write_text(saved, yaml.safe_dump(search.spec.model_dump(mode="json"), sort_keys=False))
    return lock


def _watch_parent(parent: int) -> None:
    """A worker whose ``hone search`` was killed exits at once; its trial is retried when the search is run again."""
    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def run_worker(search: Search, index: int, say: Callable[[str], None] = print) -> Any:
    """One worker's loop (in this process); result files are refreshed after each trial."""
    parent = os.environ.get(PARENT_ENV)
    if parent:
        _watch_parent(int(parent))
    return work(search, index, on_trial_end=lambda s: write_results(search, s), say=say)


def _spawner(spec_file: Path, search: Search, workers: int, plugins_dirs: Sequence[str]) -> Callable[[int], subprocess.Popen[bytes]]:
    """Starts worker ``index`` as a process of its own."""
    env = {**os.environ, PARENT_ENV: str(os.getpid()), STORAGE_ENV: search.storage_url}
    if "OMP_NUM_THREADS" not in env:  # N workers share the cores instead of each taking all of them
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    base = [sys.executable, "-m", "hone", *(a for d in plugins_dirs for a in ("--plugins-dir", d)), "search", str(spec_file),
            "--out", str(search.search_dir)]
    return lambda i: subprocess.Popen([*base, "--worker", str(i)] + (["-q"] if search.quiet else []), env=env)


def _watch(study: Any, search: Search, workers: int, spawn: Callable[[int], subprocess.Popen[bytes]],
           say: Callable[[str], None], restarts: int = 3, poll_s: float = 0.5) -> None:
    """Run the workers to the end. One killed by a signal (kill -9, the OOM killer) has its trial failed and queued
    again at once, and a new worker takes its place (``restarts`` times at most), so the search still finishes."""
    processes, codes = {i: spawn(i) for i in range(workers)}, []
    try:
        while processes:
            time.sleep(poll_s)
            for index, process in list(processes.items()):
                if (code := process.poll()) is None:
                    continue
                del processes[index]
                again = recover(study, search, 0.0, pids={process.pid}) if code < 0 else []
                if not processes:  # every worker is gone: a trial killed before it named its worker is failed too
                    again += recover(study, search, 0.0)
                for number in again:
                    say(f"trial {number} was interrupted (worker {index} died): it runs again")
                if restarts > 0 and code <= 0 and (code < 0 or again):
                    restarts -= 1
                    processes[index] = spawn(index)
                else:
                    codes.append(code)
    except KeyboardInterrupt:  # the workers got Ctrl-C too: each records its trial as interrupted, then exits
        for p in processes.values():
            p.wait()
        raise
    if any(codes):
        raise HoneError(f"{sum(c != 0 for c in codes)} of {len(codes)} workers failed (exit codes {codes}); "
                        "run `hone search` again to continue")


def search_command(spec_file: Path, out: Path | None = None, workers: int = 1, storage: str | None = None, resume: bool = False,
                   plugins_dirs: Sequence[str] = (), worker: int | None = None, quiet: bool = False) -> dict[str, Any] | None:
    """The whole of ``hone search``; returns the summary (None in a worker process)."""
    say: Callable[[str], None] = (lambda _: None) if quiet else (lambda line: print(line, flush=True))
    if worker is not None:
        storage = storage or os.environ.get(STORAGE_ENV)
        run_worker(prepare(spec_file, plugins_dirs, out, storage, check=False, quiet=quiet), worker, say)
        return None
    if workers < 1:
        raise HoneError(f"--workers must be at least 1, got {workers}")
    search = prepare(spec_file, plugins_dirs, out, storage, quiet=quiet)
    lock = _claim(search, resume)
    started, status = time.time(), "interrupted"
    try:
        study = open_study(search)  # created here once: workers creating a new SQLite study at the same time race
        for number in recover(study, search):
            say(f"trial {number} was interrupted: it runs again")
        try:
            if workers == 1:
                run_worker(search, 0, say)
            else:
                _watch(study, search, workers, _spawner(spec_file, search, workers, plugins_dirs), say)
            status = "completed"
        except HoneError:
            status = "failed"
            raise
        finally:
            summary = write_results(search, study, status=status, started=started)
    finally:
        lock.close()
    return summary
