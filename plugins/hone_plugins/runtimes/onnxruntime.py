"""An ONNX Runtime session behind the interface of a transformers model, so tasks, evaluations and
``hone predict`` call it like the torch model: ``model(**inputs).logits``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.utils import ModelOutput

from hone.errors import HoneError
from hone_plugins.exporters.layout import MODEL_FILE, ONNX_JSON, RUN_FOLDER

OUTPUT = "logits"
DEFAULTS = {"attention_mask": torch.ones_like, "token_type_ids": torch.zeros_like}  # what transformers assumes when absent


def create_session(source: str | bytes, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU from a file path or serialized model bytes."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()  # as many as torch uses in this process
    options.log_severity_level = 3  # errors only: no notes about initializers it folded
    return onnxruntime.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


@dataclass
class OnnxRuntimeOutput(ModelOutput):
    """What the ONNX graph returns: the logits, as a torch tensor."""

    logits: torch.Tensor | None = None


class OnnxRuntimeModel(nn.Module):
    """Runs an ONNX model with ONNX Runtime (CPU) when called like a transformers model.

    The serialized model is either a file (``path``) or the uint8 parameter ``onnx_bytes``, which
    safetensors saves with the rest of a compressed model; the session is created on first use and
    again after ``load_state_dict`` replaces the bytes. The parameter never trains (``requires_grad``
    is off); it also tells tasks which device to put their inputs on (they are moved to the CPU here).
    """

    def __init__(self, config: Any, *, path: Path | None = None, size: int = 0, data: bytes | None = None) -> None:
        super().__init__()
        self.config = config
        self.path = path
        buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(size, dtype=torch.uint8)
        self.onnx_bytes = nn.Parameter(buffer, requires_grad=False)
        self._session: Any = None
        self.register_load_state_dict_post_hook(lambda module, incompatible: module.reset_session())

    def reset_session(self) -> None:
        self._session = None

    @property
    def session(self) -> Any:
        if self._session is None:
            if self.path is None and not self.onnx_bytes.numel():
                raise HoneError("the ONNX Runtime model holds no ONNX model yet (load its weights first)")
            self._session = create_session(str(self.path) if self.path is not None else self.serialized())
        return self._session

    def serialized(self) -> bytes:
        """The ONNX model's bytes (from the file, or from ``onnx_bytes``)."""
        return self.path.read_bytes() if self.path is not None else self.onnx_bytes.detach().cpu().numpy().tobytes()

    @property
    def input_names(self) -> list[str]:
        return [node.name for node in self.session.get_inputs()]

    def forward(self, input_ids: torch.Tensor | None = None, **inputs: Any) -> OnnxRuntimeOutput:
        if input_ids is None:
            raise TypeError("the ONNX model needs input_ids")
        unused = {name: value for name, value in inputs.items() if value is not None and value is not False}
        feeds: dict[str, Any] = {}
        for name in self.input_names:
            value = input_ids if name == "input_ids" else unused.pop(name, None)
            if value is None and name in DEFAULTS:
                value = DEFAULTS[name](input_ids)
            if value is None:
                raise TypeError(f"the ONNX model needs the input {name!r}")
            feeds[name] = value.detach().to("cpu", torch.int64).numpy()
        if "token_type_ids" in unused and not bool((unused["token_type_ids"] == 0).all()):
            raise HoneError("the ONNX model was exported without token_type_ids, but this batch has text pairs; "
                            "export it again with a tokenizer that returns token_type_ids")
        unused.pop("token_type_ids", None)
        if unused:
            raise TypeError(f"the ONNX model takes {', '.join(self.input_names)} and returns logits only; "
                            f"it cannot take {', '.join(sorted(unused))}")
        (logits,) = self.session.run([OUTPUT], feeds)
        return OnnxRuntimeOutput(logits=torch.from_numpy(logits).to(input_ids.device))

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        raise HoneError("generation is not served by ONNX Runtime here (the exported graph returns logits, without a "
                        "KV cache); predict with the torch model (--runtime torch)")

    def __getstate__(self) -> dict[str, Any]:  # copy.deepcopy: a session cannot be copied, it is made again
        state = super().__getstate__()
        state["_session"] = None
        return state

    def _get_name(self) -> str:
        return f"OnnxRuntimeModel[{type(self).__name__}]" if type(self) is not OnnxRuntimeModel else "OnnxRuntimeModel"

    def extra_repr(self) -> str:
        return f"path={self.path}" if self.path is not None else f"onnx_bytes={self.onnx_bytes.numel()}"


_CLASSES: dict[str, type[OnnxRuntimeModel]] = {}


def onnx_model_class(architecture: str) -> type[OnnxRuntimeModel]:
    """:class:`OnnxRuntimeModel` under the name of the transformers class it stands in for.

    hone saves a compressed model's config with ``architectures = [type(model).__name__]`` and, to
    reload it, builds that transformers class before the compressor's ``restore``: the name must
    stay the original architecture's."""
    if architecture not in _CLASSES:
        _CLASSES[architecture] = type(architecture, (OnnxRuntimeModel,), {"__module__": __name__, "__qualname__": architecture})
    return _CLASSES[architecture]


def find_export(source: Path) -> Path:
    """The export folder: ``source`` itself, or the last ONNX export of a run directory (``export/<name>/``)."""
    from hone_plugins.exporters.folders import last_export

    if (source / ONNX_JSON).is_file():
        return source
    folder = last_export(source, lambda path: (path / ONNX_JSON).is_file(), f"an ONNX export (with {ONNX_JSON})")
    if folder is None:
        raise HoneError(f"{source}: no ONNX export here (expected {source / RUN_FOLDER / ONNX_JSON} or another "
                        f"export/<name>/ in a run directory, or {ONNX_JSON} in an export folder); add an export stage "
                        "(type: export) to the spec")
    return folder


def load_export(source: Path) -> tuple[OnnxRuntimeModel, Any, dict[str, Any]]:
    """(model, tokenizer, metadata) of an export folder or of a run directory's ONNX export."""
    from hone_plugins.tasks.common import quiet_transformers

    quiet_transformers()  # first: importing transformers imports torchao
    from transformers import AutoConfig, AutoTokenizer

    folder = find_export(source)
    try:
        meta = json.loads((folder / ONNX_JSON).read_text(encoding="utf-8"))
        config, tokenizer = AutoConfig.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise HoneError(f"{folder}: cannot read the ONNX export ({type(error).__name__}: {error})") from None
    model = OnnxRuntimeModel(config, path=folder / meta.get("file", MODEL_FILE))
    try:
        model.session  # noqa: B018  (an unreadable model fails here, before any record is read)
    except Exception as error:
        raise HoneError(f"{model.path}: ONNX Runtime cannot load it ({type(error).__name__}: {error})") from None
    return model.eval(), tokenizer, meta
