"""Checkpoints: weights (safetensors), training state (``torch.load(weights_only=True)``) and a
manifest of checksums, written to a temporary folder and renamed into place."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from hone.atomic import write_json, write_text
from hone.components import ModelFormat
from hone.errors import HoneError

WEIGHTS = "model.safetensors"
STATE = "training_state.pt"
MANIFEST = "manifest.json"
LATEST = "LATEST"


class CheckpointError(HoneError):
    """A checkpoint is missing, truncated or corrupted."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy": np.random.get_state()[1].tolist(),
        "numpy_pos": int(np.random.get_state()[2]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Checkpoints:
    """The ``checkpoints/`` folder of a run: numbered checkpoints and a LATEST pointer."""

    root: Path
    keep: int = 2  # the newest checkpoints kept while the run goes on
    format: ModelFormat | None = None  # how the model's weights are saved (the spec's model_format); needed to save

    def save(self, tag: str, model: torch.nn.Module, state: dict[str, Any], only: list[str] | None = None) -> Path:
        """Write checkpoint ``tag``: the model's weights (only the tensors named in ``only`` if given: an adapter's,
        say, beside frozen weights the run loads again) and ``state``."""
        final = self.root / tag
        tmp = self.root / f".{tag}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir(parents=True)
            assert self.format is not None, "Checkpoints(format=...) saves"
            weights = self.format.tensors(model)
            save_file(weights if only is None else {k: weights[k] for k in only if k in weights}, str(tmp / WEIGHTS))
            torch.save(state, tmp / STATE)
            structure = self.format.write_structure(model, tmp)  # how to rebuild a compressed model before its weights load
            manifest = {name: _sha256(tmp / name) for name in (WEIGHTS, STATE, *structure)}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            for path in tmp.iterdir():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
        except Exception as error:  # disk full: torch.save and safetensors raise their own types
            shutil.rmtree(tmp, ignore_errors=True)
            detail = error.strerror if isinstance(error, OSError) and error.strerror else f"{type(error).__name__}: {error}"
            raise CheckpointError(f"{final}: cannot write the checkpoint ({detail}); the previous checkpoints are kept") from error
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        history = [t for t in self.history() if t != tag] + [tag]
        write_json(self.root / "history.json", history)
        write_text(self.root / LATEST, tag + "\n")
        for old in history[: -self.keep]:
            shutil.rmtree(self.root / old, ignore_errors=True)
        write_json(self.root / "history.json", history[-self.keep :])
        return final

    def history(self) -> list[str]:
        path = self.root / "history.json"
        return json.loads(path.read_text()) if path.exists() else []

    def verify(self, tag: str) -> Path:
        folder = self.root / tag
        manifest_path = folder / MANIFEST
        if not manifest_path.exists():
            raise CheckpointError(f"{folder}: no {MANIFEST}; the checkpoint is incomplete")
        manifest = json.loads(manifest_path.read_text())
        for name, digest in manifest.items():
            path = folder / name
            if not path.exists():
                raise CheckpointError(f"{path}: missing from checkpoint")
            if _sha256(path) != digest:
                raise CheckpointError(f"{path}: checksum mismatch (truncated or corrupted)")
        return folder

    def latest_good(self, warn: Any = None) -> Path | None:
        """The newest checkpoint whose files match their checksums; reports and skips bad ones."""
        for tag in reversed(self.history()):
            try:
                return self.verify(tag)
            except CheckpointError as error:
                if warn:
                    warn(f"{error}; falling back to the previous checkpoint")
        return None


def retain(root: Path, what: str) -> None:
    """After a successful run, keep of ``checkpoints/`` only ``what``: none, last (the newest checkpoint), best
    (the ``best-*`` weights) or all."""
    if what == "all" or not root.is_dir():
        return
    if what == "none":
        shutil.rmtree(root)
        return
    checkpoints = Checkpoints(root)
    history = checkpoints.history()
    kept = history[-1:] if what == "last" else []
    if what == "last":  # history first: it never names a folder that is gone
        write_json(root / "history.json", kept)
    for path in root.iterdir():
        best = path.name.startswith("best-")
        if path.name in kept or (best and what == "best") or (path.name in ("history.json", LATEST) and kept):
            continue
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def load_checkpoint(folder: Path, model: torch.nn.Module, format: ModelFormat) -> dict[str, Any]:
    """Load weights into ``model`` and return the training state (never unpickles arbitrary objects)."""
    weights = load_file(str(folder / WEIGHTS))
    missing, unexpected = model.load_state_dict(format.fit(model.state_dict(), weights), strict=False)
    unexpected = [k for k in unexpected if k in weights]
    if unexpected:
        raise CheckpointError(f"{folder / WEIGHTS}: weights do not fit the model (unexpected: {unexpected[:5]})")
    return read_training_state(folder)


def read_training_state(folder: Path) -> dict[str, Any]:
    """A checkpoint's training state: plain tensors and containers only (``weights_only``), else a CheckpointError."""
    try:
        return torch.load(folder / STATE, weights_only=True, map_location="cpu")
    except Exception as error:
        raise CheckpointError(f"{folder / STATE}: refused to load ({type(error).__name__}: {error})") from None
