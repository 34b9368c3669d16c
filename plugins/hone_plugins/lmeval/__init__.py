"""The ``lm-eval`` stage: lm-evaluation-harness tasks, defined by YAML over local files, on the run's model.

Only the spec model and the registration here (``hone plugins`` imports this module); the checks of task names
import lm_eval when a spec with such a stage is validated, the runner imports it (and torch) when the stage runs.
The optional extra ``hone-ml[lm-eval]`` installs lm-eval.
"""
from __future__ import annotations

from typing import Any

from hone.hookspecs import hookimpl
from hone.registry import Register
from hone_plugins.lmeval.spec import INSTALL, LMEvalStage, installed

__all__ = ["INSTALL", "LMEvalStage", "installed", "lmeval_runner"]


def lmeval_runner(spec: LMEvalStage) -> Any:
    """Score the model on lm-evaluation-harness tasks defined by YAML over local files (optional extra lm-eval)."""
    from hone_plugins.lmeval.runner import LMEval

    return LMEval(spec)


@hookimpl
def register_stages(register: Register) -> None:
    register("lm-eval", lmeval_runner, LMEvalStage, model="keeps")
