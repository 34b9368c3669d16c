"""Saving and reloading compressed models without pickle: plain tensors in safetensors, plus the
``compression.json`` recipe that rebuilds the compressed structure before the weights load."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import is_traceable_wrapper_subclass

from hone.errors import HoneError
from hone.host import PluginHost

COMPRESSION_JSON = "compression.json"
COMPRESSED_WEIGHTS = "compressed.safetensors"
STEPS_ATTRIBUTE = "hone_compression"  # on the model: the compression steps applied to it, in order
_SCALE, _ZERO_POINT, _AXIS = "@scale", "@zero_point", "@axis"


def _encode(name: str, tensor: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    """A quantized tensor becomes its integer values and its quantization parameters."""
    if not tensor.is_quantized:
        out[name] = tensor
        return
    out[name] = tensor.int_repr()
    if tensor.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        out[name + _SCALE] = torch.tensor(tensor.q_scale(), dtype=torch.float64)
        out[name + _ZERO_POINT] = torch.tensor(tensor.q_zero_point(), dtype=torch.int64)
    else:
        out[name + _SCALE] = tensor.q_per_channel_scales()
        out[name + _ZERO_POINT] = tensor.q_per_channel_zero_points()
        out[name + _AXIS] = torch.tensor(tensor.q_per_channel_axis(), dtype=torch.int64)


def _inner_names(name: str, tensor: torch.Tensor) -> list[tuple[str, str]]:
    """(key, attribute) of a tensor subclass's inner tensors: the first (its data) keeps ``name``, the others
    are ``name@attribute`` (as a quantized tensor's scale is ``name@scale``)."""
    attributes, _ = tensor.__tensor_flatten__()
    return [(name if i == 0 else f"{name}@{attribute}", attribute) for i, attribute in enumerate(attributes)]


def _flatten(name: str, tensor: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    """A tensor subclass (e.g. torchao's quantized weights) becomes its inner plain tensors, recursively; its
    metadata is structure, which ``restore()`` rebuilds."""
    if not is_traceable_wrapper_subclass(tensor):
        _encode(name, tensor, out)
        return
    for key, attribute in _inner_names(name, tensor):
        if key in out:
            raise HoneError(f"cannot save tensor {name!r} of {type(tensor).__name__}: inner tensor names collide at {key!r}")
        _flatten(key, getattr(tensor, attribute), out)


def stored_values(tensor: torch.Tensor) -> torch.Tensor:
    """The plain tensor saved under a weight's own name: a quantized tensor's integers, a subclass's data."""
    while is_traceable_wrapper_subclass(tensor):
        tensor = getattr(tensor, tensor.__tensor_flatten__()[0][0])
    return tensor.int_repr() if tensor.is_quantized else tensor


def plain_tensors(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A state dict as plain tensors: quantized tensors, tensor subclasses and tuples of tensors (packed params) flattened."""
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            _flatten(name, value, out)
        elif isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) or v is None for v in value):
            for i, item in enumerate(value):
                if item is not None:
                    _flatten(f"{name}.{i}", item, out)
        # anything else (a dtype, a flag) is structure: restore() rebuilds it and the template supplies it
    return out


def _keys(name: str, like: Any) -> list[str]:
    """The plain tensors' names that :func:`_decode` reads for ``like`` (a subclass has several)."""
    if isinstance(like, torch.Tensor) and is_traceable_wrapper_subclass(like):
        return [k for key, attribute in _inner_names(name, like) for k in _keys(key, getattr(like, attribute))]
    return [name]


def _decode(name: str, like: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(like, torch.Tensor) and is_traceable_wrapper_subclass(like):
        # the template (a freshly restored model) supplies the subclass's type, metadata and device; the file its data
        inner = {attribute: _decode(key, getattr(like, attribute), tensors).to(getattr(like, attribute).device)
                 for key, attribute in _inner_names(name, like)}
        return type(like).__tensor_unflatten__(inner, like.__tensor_flatten__()[1], like.size(), like.stride())
    value = tensors[name]
    if not (isinstance(like, torch.Tensor) and like.is_quantized):
        return value
    if name + _AXIS in tensors:
        return torch._make_per_channel_quantized_tensor(
            value, tensors[name + _SCALE], tensors[name + _ZERO_POINT], int(tensors[name + _AXIS]))
    return torch._make_per_tensor_quantized_tensor(value, float(tensors[name + _SCALE]), int(tensors[name + _ZERO_POINT]))


def fit_state(template: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Undo :func:`plain_tensors` against ``template`` (the target model's state dict); unknown keys are kept as they are."""
    state: dict[str, Any] = OrderedDict()
    metadata = getattr(template, "_metadata", None)
    if metadata is not None:  # per-module versions: quantized modules read their state by version
        state._metadata = metadata  # type: ignore[attr-defined]
    used: set[str] = set()
    for name, like in template.items():
        if isinstance(like, torch.Tensor):
            keys = _keys(name, like)
            if all(k in tensors for k in keys):
                state[name] = _decode(name, like, tensors)
            used.update(keys)  # a subclass with a part missing is reported missing, not loaded as a plain tensor
        elif isinstance(like, (tuple, list)) and like and all(isinstance(v, torch.Tensor) or v is None for v in like):
            parts = [f"{name}.{i}" for i in range(len(like))]
            if any(p in tensors for p in parts):
                state[name] = tuple(_decode(p, v, tensors) if p in tensors else None for p, v in zip(parts, like))
                used.update(parts)
        else:
            state[name] = like
    for name, value in tensors.items():
        if name not in used and name.split("@")[0] not in used:
            state[name] = value
    return state


def state_dict_for_saving(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous, de-duplicated plain tensors (safetensors refuses shared storage, e.g. tied embeddings;
    quantized weights are stored as their integers and scales)."""
    seen: dict[int, str] = {}
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in plain_tensors(model.state_dict()).items():
        if not isinstance(tensor, torch.Tensor):
            continue
        key = tensor.untyped_storage().data_ptr() if tensor.numel() else id(tensor)
        if key in seen and tensor.shape == tensors[seen[key]].shape:
            continue
        seen[key] = name
        tensors[name] = tensor.detach().contiguous().cpu()
    return tensors


def compression_steps(model: Any) -> list[dict[str, Any]]:
    """The compression steps applied to ``model`` (``[]`` for an uncompressed model)."""
    return list(getattr(model, STEPS_ATTRIBUTE, None) or [])


def needs_recipe(model: Any) -> bool:
    """Whether the model's structure differs from what its config builds (so it is saved in hone's compressed format)."""
    return any(step.get("recipe") is not None for step in compression_steps(model))


def cpu_only(steps: list[dict[str, Any]]) -> bool:
    """Whether a step's recipe asks for CPU (e.g. quantized kernels that only exist there)."""
    return any((step.get("recipe") or {}).get("cpu_only") for step in steps)


def write_steps(model: Any, folder: Path) -> bool:
    """Write ``compression.json`` into ``folder`` if the model was compressed; return whether it was."""
    steps = compression_steps(model)
    if steps:
        (folder / COMPRESSION_JSON).write_text(json.dumps({"steps": steps}, indent=2))
    return bool(steps)


def read_steps(folder: Path) -> list[dict[str, Any]]:
    """The steps in ``folder``'s ``compression.json`` (``[]`` if there is none)."""
    path = folder / COMPRESSION_JSON
    if not path.exists():
        return []
    try:
        return list(json.loads(path.read_text(encoding="utf-8"))["steps"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HoneError(f"{path}: cannot read the compression recipe ({type(error).__name__}: {error})") from None


def restore_steps(model: Any, steps: list[dict[str, Any]], host: PluginHost) -> Any:
    """Re-apply each step's structural change (its compressor's ``restore``) to a freshly built model."""
    for step in steps:
        if step.get("recipe") is not None:
            name = step["compressor"]
            if name not in host.registries["compressor"]:
                raise HoneError(f"the model was compressed with '{name}', which no installed plugin provides; "
                                "install the plugin that registers it, or name its folder with --plugins-dir")
            compressor = host.build("compressor", {"name": name, **(step.get("params") or {})})
            model = compressor.restore(model, step["recipe"])
    setattr(model, STEPS_ATTRIBUTE, list(steps))
    return model


def save_model_weights(model: Any, folder: Path) -> None:
    """``save_pretrained``, or for a structurally compressed model: config, plain weights and the recipe."""
    from safetensors.torch import save_file


    folder.mkdir(parents=True, exist_ok=True)
    if needs_recipe(model):
        model.config.architectures = [type(model).__name__]  # what load_compressed_model builds (save_pretrained sets it too)
        model.config.save_pretrained(folder)
        save_file(state_dict_for_saving(model), str(folder / COMPRESSED_WEIGHTS))
    else:
        model.save_pretrained(folder)
    write_steps(model, folder)


def is_compressed_model(folder: Path) -> bool:
    """Whether ``folder`` holds a model in hone's compressed format (loadable only through its recipe)."""
    return (folder / COMPRESSED_WEIGHTS).exists()


def load_weights(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], where: str) -> None:
    """Load every tensor strictly; a key may be missing only if it shares storage with one loaded (tied weights)."""
    state = model.state_dict()
    missing, unexpected = model.load_state_dict(fit_state(state, tensors), strict=False)
    loaded = {_storage(state[k]) for k in state if k in tensors} - {None}
    untied = [k for k in missing if _storage(state.get(k)) not in loaded]
    if untied or unexpected:
        raise HoneError(f"{where}: the weights do not fit the compressed model (missing: {untied[:5]}, unexpected: {unexpected[:5]})")


def _storage(tensor: Any) -> int | None:
    """The address of a plain tensor's storage (to recognise tied weights); None for anything else."""
    if (not isinstance(tensor, torch.Tensor) or tensor.is_quantized or is_traceable_wrapper_subclass(tensor)
            or not tensor.numel()):
        return None
    return tensor.untyped_storage().data_ptr()


def load_compressed_model(folder: Path, host: PluginHost) -> torch.nn.Module:
    """Build the original architecture from ``config.json``, re-apply the recipe, load the weights."""
    import transformers
    from safetensors.torch import load_file

    config = transformers.AutoConfig.from_pretrained(folder)
    architecture = (config.architectures or [None])[0]
    model_class = getattr(transformers, architecture or "", None)
    if model_class is None:
        raise HoneError(f"{folder}: cannot rebuild architecture {architecture!r} of the compressed model")
    model = restore_steps(model_class(config), read_steps(folder), host)
    load_weights(model, load_file(str(folder / COMPRESSED_WEIGHTS)), str(folder / COMPRESSED_WEIGHTS))
    return model.eval()
