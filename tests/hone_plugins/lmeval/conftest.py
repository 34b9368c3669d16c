"""A tiny GPT-2 whose greedy continuations vary by prompt, the shipped lm-eval tasks, and specs that run them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import build_vocab

TASKS = Path(__file__).resolve().parent / "tasks"


@pytest.fixture(scope="session")
def peaked_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_gpt2's architecture and WordPiece tokenizer with weights drawn 50x wider (initializer_range 1.0): a
    0.02-initialised model predicts nearly the same token after every prompt, which makes generations uninformative."""
    import torch
    from transformers import BertTokenizerFast, GPT2Config, GPT2LMHeadModel

    directory = tmp_path_factory.mktemp("peaked-gpt2")
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(build_vocab()) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(build_vocab()), n_embd=32, n_layer=2, n_head=2, n_positions=128,
                        initializer_range=1.0, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    GPT2LMHeadModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def task_folder(tmp_path: Path) -> Path:
    """A copy of the shipped task folder, which a test may change."""
    return Path(shutil.copytree(TASKS, tmp_path / "tasks"))


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`datasets` caches what it reads in the test's folder, not in ~/.cache."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    try:
        import datasets.config
    except ImportError:
        return
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")


def lmeval_spec(model: Path, include_path: str, tasks: list[str], **stage: Any) -> dict[str, Any]:
    """A causal-lm run whose one stage runs ``tasks`` of ``include_path`` (relative to the spec's folder)."""
    return {
        "name": "tiny-lmeval",
        "seed": 3,
        "model": str(model),
        "task": "causal-lm",
        "data": {"reader": "jsonl", "test": "texts.jsonl"},
        "stages": [{"type": "lm-eval", "name": "harness", "include_path": include_path, "tasks": tasks, **stage}],
    }


def write_spec(folder: Path, spec: dict[str, Any]) -> Path:
    (folder / "texts.jsonl").write_text('{"text": "the movie was good"}\n{"text": "john smith said"}\n')
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
