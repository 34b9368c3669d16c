"""hone's built-in stage kinds: train, evaluate, compress, distill and export.

This module holds only the registrations (``hone plugins`` imports it); each runner, which imports torch,
is in its own module and imported when a run needs it (the factories carry a suffix: importing a submodule
sets the package attribute of its name).
"""

from __future__ import annotations

from typing import Any

from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register
from hone_plugins.stages.specs import CompressStage, DistillStage, EvaluateStage, ExportStage, TrainStage


def train_runner(spec: TrainStage) -> Any:
    """Fine-tune the model: epochs of optimizer steps, validation after each, early stopping, checkpoints."""
    from hone_plugins.stages.train import Train

    return Train(spec)


def evaluate_runner(spec: EvaluateStage) -> Any:
    """Score the model on one split with the stage's (or the task's default) metrics."""
    from hone_plugins.stages.evaluate import Evaluate

    return Evaluate(spec)


def compress_runner(spec: CompressStage) -> Any:
    """Make the model smaller or faster with a compressor, within an accuracy budget if one is set."""
    from hone_plugins.stages.compress import Compress

    return Compress(spec)


def distill_runner(spec: DistillStage) -> Any:
    """Train a student on teachers' outputs; the student becomes the run's model."""
    from hone_plugins.stages.distill import Distill

    return Distill(spec)


def export_runner(spec: ExportStage) -> Any:
    """Write the model in a serving format (ONNX...) to export/<name>/ in the run directory, checked on the run's data."""
    from hone_plugins.stages.export import Export

    return Export(spec)


@hookimpl
def register_stages(register: Register) -> None:
    register("train", train_runner, TrainStage, model="changes")
    register("evaluate", evaluate_runner, EvaluateStage)
    register("compress", compress_runner, CompressStage, model="changes")
    register("distill", distill_runner, DistillStage, model="replaces")
    register("export", export_runner, ExportStage)


def compression_report(params: NoParams) -> Any:
    """Each compress stage: the model before and after, the settings tried against its budget, the trade-off plot."""
    from hone_plugins.report.sections import Sections
    from hone_plugins.stages.report import compression_section

    return Sections(compression_section)


@hookimpl
def register_report_sections(register: Register) -> None:
    register("compression", compression_report, order=70)
