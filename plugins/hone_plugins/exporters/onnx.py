"""ONNX export of transformers models with ``torch.onnx.export(..., dynamo=True)``, checked with
ONNX Runtime against torch on sample batches of two shapes, written atomically to a folder."""

from __future__ import annotations

import glob
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hone.errors import HoneError
from hone_plugins.exporters.layout import MODEL_FILE, ONNX_JSON
from hone_plugins.runtimes.onnxruntime import OnnxRuntimeModel

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "logits"
FORMAT_VERSION = 1
# two batches of different sizes and lengths; the second has text pairs (token_type_ids of 1)
SAMPLE_TEXTS = (["the film was good .", "john smith lives in paris and works for a company in london ."],
                ["a", "they said it was not very good", "mary was in london ."])
SAMPLE_PAIRS = (None, ["b", "but we liked it", "peter was in paris ."])
Batch = Mapping[str, torch.Tensor]


class OnnxExportError(HoneError):
    """The model could not be exported to ONNX, or ONNX Runtime does not reproduce torch's outputs."""


def input_names(model: torch.nn.Module, tokenizer: Any = None) -> list[str]:
    """The inputs the graph takes: those the forward accepts and the tokenizer produces (without one:
    ``input_ids`` and ``attention_mask``)."""
    produced = list(getattr(tokenizer, "model_input_names", None) or ("input_ids", "attention_mask"))
    if isinstance(model, OnnxRuntimeModel):  # an ONNX graph already (onnx-int8): the inputs it takes
        return [name for name in INPUT_NAMES if name in model.input_names and (name in produced or name == "input_ids")]
    accepted = inspect.signature(model.forward).parameters
    names = [name for name in INPUT_NAMES if name in accepted and name in produced]
    if "input_ids" not in names:
        raise OnnxExportError(f"{type(model).__name__}.forward takes no input_ids: only text models export here")
    return names


def _padded(rows: Sequence[Mapping[str, Sequence[int]]], names: Sequence[str], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(row["input_ids"]) for row in rows)
    padding = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0}
    return {name: torch.tensor([list(row[name]) + [padding[name]] * (width - len(row[name])) for row in rows])
            for name in names}


def default_batches(model: torch.nn.Module, tokenizer: Any = None) -> list[dict[str, torch.Tensor]]:
    """Two right-padded batches of different sizes and lengths, from the tokenizer (or random ids without one)."""
    names = input_names(model, tokenizer)
    if tokenizer is None:
        generator = torch.Generator().manual_seed(0)
        vocab = int(model.config.vocab_size)
        batches = []
        for size, length in ((2, 12), (3, 7)):
            ids = torch.randint(min(5, vocab - 1), vocab, (size, length), generator=generator)
            mask = torch.ones_like(ids)
            mask[0, length // 2 :] = 0  # one padded row
            batches.append({"input_ids": ids, "attention_mask": mask})
        return batches
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = []
    for texts, pairs in zip(SAMPLE_TEXTS, SAMPLE_PAIRS):
        encoding = tokenizer(texts, pairs, truncation=True, max_length=64)
        rows = [{name: encoding[name][i] for name in names} for i in range(len(texts))]
        batches.append(_padded(rows, names, pad_id))
    return batches


@contextmanager
def exporting(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The model in eval mode on the CPU, returning logits only (no KV cache, hidden states or attentions);
    everything is put back afterwards."""
    device = next(model.parameters()).device
    training = model.training
    config = getattr(model, "config", None)
    flags = {name: getattr(config, name) for name in ("use_cache", "output_hidden_states", "output_attentions")
             if config is not None and getattr(config, name, None)}
    try:
        for name in flags:
            setattr(config, name, False)
        yield model.cpu().eval()
    finally:
        for name, value in flags.items():
            setattr(config, name, value)
        model.to(device).train(training)


@contextmanager
def quiet_exporter() -> Iterator[None]:
    """Without torch.export's deprecation and axis-renaming warnings, and the exporter's notes that
    torchvision (whose operators no text model uses) is not installed."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        registration.setLevel(level)


def check_model(model: torch.nn.Module) -> None:
    """Refuse, before any work, a model the exporter cannot write as a float32 graph."""
    if any(type(module).__module__.startswith("torch.ao.nn.quantized") for module in model.modules()):
        raise OnnxExportError("the model holds torch.ao quantized layers, which do not export to ONNX; "
                              "export before a dynamic-int8 stage, or use the onnx-int8 compressor instead")
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    wrapped = sorted({type(t).__name__ for t in [*model.parameters(), *model.buffers()] if is_traceable_wrapper_subclass(t)})
    if wrapped:
        raise OnnxExportError(f"the model's weights are tensor subclasses ({', '.join(wrapped)}: torchao quantization?), "
                              "which torch.onnx does not export; export before that stage, or use the onnx-int8 compressor")
    floats = {t.dtype for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()}
    if floats - {torch.float32}:
        found = ", ".join(sorted(str(dtype).removeprefix("torch.") for dtype in floats))
        raise OnnxExportError(f"the ONNX export is checked on ONNX Runtime's CPU, which needs float32 weights; the "
                              f"model has {found} (after a `half` stage?)")


def to_onnx(model: torch.nn.Module, batch: Batch, *, opset: int = 20, dynamic_axes: bool = True,
            optimize: bool = True) -> Any:
    """``torch.onnx.export(..., dynamo=True)`` traced on ``batch``: a ``torch.onnx.ONNXProgram`` whose inputs are
    named like the forward's arguments and whose output is ``logits``; batch and sequence axes free if asked."""
    from torch.export import Dim

    if dynamic_axes and min(batch["input_ids"].shape) < 2:
        raise OnnxExportError(f"the traced batch has shape {list(batch['input_ids'].shape)}; with dynamic axes it needs "
                              "at least 2 rows and 2 tokens (torch.export fixes axes of size 1)")
    axes = {0: Dim("batch"), 1: Dim("sequence")}
    shapes = {name: axes for name in batch} if dynamic_axes else None
    start = time.perf_counter()
    try:
        with exporting(model), quiet_exporter():
            program = torch.onnx.export(model, (), kwargs={k: v.cpu() for k, v in batch.items()}, dynamo=True,
                                        output_names=[OUTPUT], dynamic_shapes=shapes, opset_version=opset,
                                        optimize=optimize, verbose=False)
    except Exception as error:
        raise OnnxExportError(f"torch.onnx.export failed for {type(model).__name__} after "
                              f"{time.perf_counter() - start:.1f} s: {first_line(error)}") from error
    graph_outputs = [value.name for value in program.model.graph.outputs]
    if OUTPUT not in graph_outputs:
        raise OnnxExportError(f"the exported graph returns {graph_outputs}, not {OUTPUT!r}")
    strip_debug_metadata(program.model.graph)
    return program


def strip_debug_metadata(graph: Any) -> None:
    """Drop the exporter's per-node notes (stack traces with this machine's paths, module names): they
    are debugging aids, and on small models most of the file."""
    values = [*graph.inputs, *graph.initializers.values()]
    for node in graph.all_nodes():
        node.metadata_props.clear()
        values += node.outputs
    for value in values:
        value.metadata_props.clear()


def torch_logits(model: torch.nn.Module, batch: Batch) -> np.ndarray:
    with exporting(model), torch.inference_mode():
        return model(**{k: v.cpu() for k, v in batch.items()}).logits.float().numpy()


def max_difference(run: Callable[[dict[str, np.ndarray]], np.ndarray], model: torch.nn.Module,
                   batches: Sequence[Batch]) -> list[float]:
    """Per batch, the largest absolute difference between ``run``'s logits and the torch model's (NaN in both: equal)."""
    found = []
    for batch in batches:
        expected = torch_logits(model, batch)
        actual = run({name: tensor.cpu().numpy() for name, tensor in batch.items()})
        if actual.shape != expected.shape:
            found.append(float("inf"))
            continue
        difference = np.abs(actual.astype(np.float64) - expected)
        difference[np.isnan(actual) & np.isnan(expected)] = 0.0
        found.append(float(np.nan_to_num(difference, nan=np.inf).max(initial=0.0)))
    return found


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def check_onnx(source: str | bytes, model: torch.nn.Module, batches: Sequence[Batch], atol: float) -> tuple[Any, float]:
    """An ONNX Runtime session of ``source`` and the largest difference of its logits from torch's over
    ``batches``; an :class:`OnnxExportError` naming the difference beyond ``atol``, or ONNX Runtime's error."""
    from hone_plugins.runtimes.onnxruntime import create_session

    try:
        session = create_session(source)
        names = {node.name for node in session.get_inputs()}
        differences = max_difference(
            lambda feeds: session.run([OUTPUT], {k: v.astype(np.int64) for k, v in feeds.items() if k in names})[0],
            model, batches)
    except Exception as error:
        raise OnnxExportError(f"ONNX Runtime cannot run the exported graph ({first_line(error)})") from error
    worst = max(range(len(differences)), key=differences.__getitem__)
    if differences[worst] > atol:
        shape = list(batches[worst]["input_ids"].shape)
        raise OnnxExportError(f"ONNX Runtime's logits differ from torch's by up to {differences[worst]:.3g} (atol {atol:g}) "
                              f"on check batch {worst + 1} of shape {shape}")
    return session, max(differences)


def graph_facts(path: Path) -> tuple[int, bool]:
    """(opset, whether the batch and sequence axes are free) of a saved ONNX graph."""
    import onnx

    graph = onnx.load_model(str(path), load_external_data=False)
    opset = next((entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx")), 0)
    dims = [dim for value in graph.graph.input for dim in value.type.tensor_type.shape.dim[:2]]
    return int(opset), bool(dims) and all(dim.HasField("dim_param") for dim in dims)


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


@contextmanager
def atomic_folder(folder: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``folder``; on success it replaces ``folder`` whole. Leftovers of
    an earlier attempt that was killed (``.<name>.*.tmp``, ``.<name>.*.old``) are removed first."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    name = glob.escape(folder.name)
    for leftover in [*folder.parent.glob(f".{name}.*.tmp"), *folder.parent.glob(f".{name}.*.old")]:
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        yield tmp
        if not folder.exists():
            os.replace(tmp, folder)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        os.replace(folder, old / folder.name)
        try:
            os.replace(tmp, folder)
        except OSError:
            os.replace(old / folder.name, folder)  # the previous export stays in place
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_onnx(model: torch.nn.Module, tokenizer: Any, folder: Path, *, sample_batches: Sequence[Batch] | None = None,
                opset: int = 20, atol: float = 1e-4, dynamic_axes: bool = True, optimize: bool = True,
                task: str | None = None, task_params: Mapping[str, Any] | None = None,
                labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Export ``model`` to ``folder/model.onnx`` with its tokenizer, config and ``onnx.json``, after checking
    ONNX Runtime's logits against torch's on ``sample_batches`` (the first is traced; default: two built from the
    tokenizer). The folder appears whole or not at all; returns the report."""
    import onnxruntime

    start = time.perf_counter()
    if tokenizer is None:
        raise OnnxExportError("an ONNX export folder needs the tokenizer, to serve the model")
    check_model(model)
    names = input_names(model, tokenizer)
    if sample_batches is None:
        batches = default_batches(model, tokenizer)
    else:  # e.g. collated training batches: only the model inputs, without labels or metadata
        batches = [{name: batch[name] for name in names if name in batch} for batch in sample_batches]
    if not batches:
        raise OnnxExportError("sample_batches is empty: give at least one batch to trace and check")
    if not dynamic_axes:
        batches = [b for b in batches if b["input_ids"].shape == batches[0]["input_ids"].shape]
    with exporting(model), atomic_folder(Path(folder)) as tmp:  # on the CPU throughout, moved back at the end
        if isinstance(model, OnnxRuntimeModel):  # e.g. onnx-int8's graph: written as it is, checked against itself
            (tmp / MODEL_FILE).write_bytes(model.serialized())
            opset, dynamic_axes = graph_facts(tmp / MODEL_FILE)
            facts: dict[str, Any] = {"reference": "onnxruntime (the run's ONNX Runtime model, written as it is)"}
        else:
            program = to_onnx(model, batches[0], opset=opset, dynamic_axes=dynamic_axes, optimize=optimize)
            program.save(str(tmp / MODEL_FILE))
            facts = {"reference": "torch", "optimized": optimize}
        session, difference = check_onnx(str(tmp / MODEL_FILE), model, batches, atol)
        tokenizer.save_pretrained(tmp)
        model.config.save_pretrained(tmp)
        report = {
            "file": MODEL_FILE, "opset": opset, "inputs": [node.name for node in session.get_inputs()],
            "outputs": [OUTPUT], "dynamic_axes": dynamic_axes, **facts,
            "max_abs_diff": difference, "atol": atol,
            "check_shapes": [list(b["input_ids"].shape) for b in batches],
            "onnx_bytes": sum(path.stat().st_size for path in tmp.iterdir() if path.name.startswith(MODEL_FILE)),
        }
        meta = {"format": FORMAT_VERSION, "task": task, "task_params": dict(task_params or {}),
                "labels": list(labels) if labels is not None else None, "architecture": type(model).__name__,
                **report, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}
        (tmp / ONNX_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        report["size_bytes"] = folder_size(tmp)
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report
