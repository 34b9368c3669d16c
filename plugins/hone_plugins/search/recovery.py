"""Trials whose process died (a kill, a crash, the OOM killer): noticed, failed, and queued again at the same point."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

OWNER, RETRY_OF, INTERRUPTED = "owner", "retry_of", "interrupted"  # user attributes hone keeps on each trial
GRID = ("grid_id", "search_space")  # where Optuna's grid sampler keeps a trial's point, set when the trial is created


def owner(search_dir: Path) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "dir": str(search_dir)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_elsewhere(trial: Any) -> bool:
    """Whether the process running ``trial`` may still be alive (one on another machine is trusted to be)."""
    who = trial.user_attrs.get(OWNER) or {}
    return who.get("host") != socket.gethostname() or alive(int(who.get("pid", 0)))


def retry(study: Any, trial: Any) -> None:
    """Queue a trial again at the same point (its failure was an interruption, not the trial's fault).

    The new trial gets the old one's parameters and sampler attributes: a grid sampler's point stays with it (the grid
    counts the failed trial's point as visited, and an enqueued trial without one breaks the sampler's bookkeeping), and
    a trial killed before it drew its parameters keeps its grid point. One killed before it drew anything, of another
    sampler, needs no retry: the budget does not count it, and the next trial draws afresh.
    """
    from optuna.trial import TrialState, create_trial

    if not trial.params and not all(key in trial.system_attrs for key in GRID):
        return
    study.add_trial(create_trial(state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
                                 system_attrs=dict(trial.system_attrs), user_attrs={RETRY_OF: trial.number}))


def recover(study: Any, search: Any, wait_s: float = 5.0, pids: Collection[int] | None = None) -> list[int]:
    """Fail the trials that were running in processes now dead and queue them again; ``pids``: only those processes' trials.

    Without ``pids``, call it holding the search directory's lock: then no live worker of this directory exists, except
    orphans of a killed parent, which notice within a second and exit.
    """
    from optuna.trial import TrialState

    me = owner(search.search_dir)
    deadline = time.monotonic() + wait_s
    for trial in study.get_trials(deepcopy=False):
        if trial.state != TrialState.RUNNING:
            continue
        who = trial.user_attrs.get(OWNER) or {}
        if pids is not None:
            dead = who.get("host") == me["host"] and who.get("pid") in pids
        elif who.get("host") == me["host"]:
            while alive(int(who["pid"])) and time.monotonic() < deadline and who.get("dir") == me["dir"]:
                time.sleep(0.1)
            dead = not alive(int(who["pid"])) or who.get("dir") == me["dir"]
        else:
            dead = search.local  # an SQLite study only ever runs here (a trial killed before it named its owner, too)
        if dead:
            study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RETRY_OF) for t in trials}
    again = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get(INTERRUPTED) and t.number not in retried
             and (t.params or all(key in t.system_attrs for key in GRID))]
    for trial in again:
        retry(study, trial)
    return [t.number for t in again]
