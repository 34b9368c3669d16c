"""An export folder's files: ``model.onnx`` (plus ``model.onnx.data`` beyond 2 GB), ``onnx.json`` (what a runtime
needs: task, labels, input and output names, opset), ``config.json`` and the tokenizer."""

from __future__ import annotations

from pathlib import Path

MODEL_FILE = "model.onnx"
ONNX_JSON = "onnx.json"
RUN_FOLDER = Path("export", "onnx")  # a run directory's ONNX export from an unnamed export stage
