"""What a model weighs: parameters, non-zero parameters, sparsity per layer, bytes on disk; and how fast it answers."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from hone_plugins.formats.compressed import state_dict_for_saving, stored_values


def _weight_of(module: torch.nn.Module) -> torch.Tensor | None:
    weight = getattr(module, "weight", None)
    if callable(weight) and not isinstance(weight, torch.Tensor):  # quantized Linear: weight() unpacks it
        weight = weight()
    return weight if isinstance(weight, torch.Tensor) and weight.dim() >= 2 else None


def _nonzero(tensor: torch.Tensor) -> int:
    tensor = stored_values(tensor)
    if tensor.is_floating_point() and tensor.element_size() == 1:  # float8 has no count_nonzero kernel: count its bytes
        tensor = tensor.view(torch.uint8)
    return int(torch.count_nonzero(tensor))


def size_on_disk(model: torch.nn.Module) -> int:
    """Bytes of the model's weights file (safetensors, as hone saves it)."""
    return _size(state_dict_for_saving(model))


def _size(tensors: dict[str, torch.Tensor]) -> int:
    from safetensors.torch import save

    return len(save(tensors))


def model_report(model: torch.nn.Module, layers: bool = True) -> dict[str, Any]:
    """Parameters (quantized ones included), non-zero parameters, sparsity, size on disk, sparsity per layer."""
    tensors = state_dict_for_saving(model)
    weights = [t for name, t in tensors.items() if "@" not in name and (t.is_floating_point() or t.dtype in (torch.int8, torch.uint8))]
    parameters = sum(t.numel() for t in weights)
    nonzero = sum(_nonzero(t) for t in weights)
    report: dict[str, Any] = {
        "parameters": parameters, "nonzero": nonzero,
        "sparsity": round(1 - nonzero / parameters, 6) if parameters else 0.0, "size_bytes": _size(tensors),
    }
    if layers:
        report["layer_sparsity"] = {
            name: round(1 - _nonzero(weight) / weight.numel(), 4)
            for name, module in model.named_modules() if (weight := _weight_of(module)) is not None and weight.numel()
        }
    return report


LATENCY_EXAMPLES, LATENCY_WARMUP = 16, 2


def latency_ms(ctx: Any, model: torch.nn.Module, split: str) -> float | None:
    """Median milliseconds of one forward pass on one example (the first examples of ``split``, else of any split),
    on the run's device and evaluation precision, after a warm-up; None without data."""
    from hone.run.devices import forward, to_device
    from hone_plugins.stages.evaluation import eval_precision

    features = next((f for f in (ctx.features.get(split), *ctx.features.values()) if f), None)
    if not features:
        return None
    examples = features[:LATENCY_EXAMPLES]
    was_training, times, precision = model.training, [], eval_precision(ctx, model)
    model.eval()
    try:
        with torch.inference_mode():
            for i, feature in enumerate([*examples[:LATENCY_WARMUP], *examples]):
                batch = to_device(ctx.task.collate([feature], ctx.tokenizer), ctx.device)
                if ctx.device.type == "cuda":
                    torch.cuda.synchronize(ctx.device)
                start = time.perf_counter()
                forward(model, batch, ctx.device, precision)
                if ctx.device.type == "cuda":
                    torch.cuda.synchronize(ctx.device)
                if i >= min(LATENCY_WARMUP, len(examples)):
                    times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return round(statistics.median(times) * 1000, 3)
