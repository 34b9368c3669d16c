"""The hooks a hone plugin may implement: one ``register_*`` hook per kind of component.

Each hook receives a ``register`` callable (see :class:`hone.registry.Register`)::

    register(name, factory, params=ParamsModel, aliases=("other-name",), doc="...")

The host owns collection, aliases and duplicate checks. Factories must import heavy
libraries (torch, transformers) inside their body, never at module import time.
"""

from __future__ import annotations

import pluggy

from hone.registry import Register

PROJECT = "hone"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_metrics(register: Register) -> None:
    """Register metrics: ``factory(params) -> Metric`` (see :class:`hone.components.Metric`)."""


@hookspec
def register_optimizers(register: Register) -> None:
    """Register optimizers: ``factory(params, param_groups) -> torch.optim.Optimizer``."""


@hookspec
def register_schedulers(register: Register) -> None:
    """Register LR schedulers: ``factory(params, optimizer, total_steps) -> Scheduler``."""


@hookspec
def register_compressors(register: Register) -> None:
    """Register compressors: ``factory(params) -> Compressor`` (prune, quantize, cast...)."""


@hookspec
def register_distillers(register: Register) -> None:
    """Register distillers: ``factory(params) -> Distiller`` (teacher-to-student losses)."""


@hookspec
def register_searchers(register: Register) -> None:
    """Register searchers: ``factory(params, seed) -> optuna.samplers.BaseSampler`` (``space=`` too, if it takes it)."""


@hookspec
def register_tasks(register: Register) -> None:
    """Register tasks: ``factory(params) -> Task`` (model head, encoding, decoding, prediction)."""


@hookspec
def register_readers(register: Register) -> None:
    """Register data readers: ``factory(params) -> Reader`` turning a file into examples."""


@hookspec
def register_callbacks(register: Register) -> None:
    """Register callbacks: ``factory(params, run_dir) -> Callback`` receiving lifecycle events."""


@hookspec
def register_pruners(register: Register) -> None:
    """Register search pruners: ``factory(params) -> optuna.pruners.BasePruner`` (stops weak trials early)."""


@hookspec
def register_stages(register: Register) -> None:
    """Register stage kinds: ``factory(params) -> Stage``; ``params`` is a :class:`hone.StageSpec` model, ``model=`` keeps/changes/replaces."""


@hookspec
def register_commands(register: Register) -> None:
    """Register ``hone`` commands: ``factory(params) -> Command`` with ``run(args, host) -> int``; ``arguments=`` adds its options."""


@hookspec
def register_spec_sections(register: Register) -> None:
    """Register top-level spec sections (like ``search:``): ``factory(params) -> Section`` checking it against the spec."""


@hookspec
def register_report_sections(register: Register) -> None:
    """Register run-report sections: ``factory(params) -> ReportSection`` with ``sections(run) -> list[Section]``."""


@hookspec
def register_runtimes(register: Register) -> None:
    """Register serving runtimes for ``hone predict --runtime``: ``factory(params) -> Runtime`` with ``load(source)``."""


@hookspec
def register_exporters(register: Register) -> None:
    """Register exporters for ``export`` stages: ``factory(params) -> Exporter`` writing a serving folder; ``refuses=`` names compressors."""


@hookspec
def register_adapters(register: Register) -> None:
    """Register adapters for train and distill stages' ``adapter:``: ``factory(params) -> Adapter`` (LoRA, DoRA...)."""


@hookspec
def register_model_formats(register: Register) -> None:
    """Register model formats for the spec's ``model_format``: ``factory(params, host) -> ModelFormat`` (how a run saves its weights)."""
