"""Write run directories with hone as it was before the open core (commit 0ddd11a~1, the last flat core/).

How this folder was made: `git worktree add /tmp/oldhone 0ddd11a~1`, a folder /tmp/oldpkg with the links
hone -> /tmp/oldhone/core and hone_plugins -> /tmp/oldhone/plugins, then `PYTHONPATH=/tmp/oldpkg python
generate.py` and `hone predict finished --input predict-input.jsonl --output predict-expected.jsonl` with the
same PYTHONPATH; finished/checkpoints was removed and the absolute paths replaced by @FIXTURE@.
"""
import json, shutil, signal, sys
from pathlib import Path

import torch
import yaml
from transformers import BertConfig, BertModel, BertTokenizerFast

sys.path.insert(0, "/work/wt-integrate")
from tests.conftest import build_vocab  # the same vocabulary the tests use

from hone.runner import run
from hone.validation import load_spec
from hone.errors import Interrupted

root = Path("/tmp/genold/fixture")
shutil.rmtree(root, ignore_errors=True)
(root / "model").mkdir(parents=True)
torch.manual_seed(0)
vocab = build_vocab()
(root / "model" / "vocab.txt").write_text("\n".join(vocab) + "\n")
tokenizer = BertTokenizerFast(vocab=str(root / "model" / "vocab.txt"), do_lower_case=True)
BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)).save_pretrained(root / "model")
tokenizer.save_pretrained(root / "model")
data = root / "data"
shutil.copytree("/work/wt-integrate/examples/data/ner-sample", data)
spec = {
    "name": "before-open-core", "seed": 7, "model": "model",
    "task": {"name": "token-classification", "max_length": 48},
    "data": {"reader": "conll", "train": "data/train.txt", "validation": "data/valid.txt", "test": "data/test.txt", "limit": 64},
    "stages": [
        {"type": "train", "name": "head", "epochs": 1, "batch_size": 8, "train_only": ["classifier.*"],
         "optimizer": {"name": "adamw", "lr": "1e-2"}, "logging_steps": 1},
        {"type": "train", "name": "all", "epochs": 4, "batch_size": 8, "logging_steps": 1,
         "optimizer": {"name": "adamw", "lr": "5e-3"}, "scheduler": {"name": "linear", "warmup": 0.1}},
        {"type": "compress", "name": "prune", "compressor": {"name": "magnitude", "sparsity": 0.3}},
        {"type": "evaluate", "name": "test", "split": "test", "metrics": ["entity-f1", "accuracy"]},
    ],
}
(root / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


class InterruptAt:
    def on_step_end(self, event, data):
        if data["stage"] == "all" and data["step"] == 4:
            signal.raise_signal(signal.SIGINT)


loaded, host = load_spec(root / "spec.yaml")
run(loaded, host, out=root / "finished")
loaded, host = load_spec(root / "spec.yaml")
try:
    run(loaded, host, out=root / "interrupted", callbacks=[("interrupt", InterruptAt())])
except Interrupted as error:
    print("interrupted:", error)
for folder in ("finished", "interrupted"):
    shutil.rmtree(root / folder / "report", ignore_errors=True)
print(json.loads((root / "finished" / "metrics.json").read_text())["test"])
