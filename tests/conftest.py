"""Shared fixtures: tiny randomly initialised models built in code, and the shared data sets."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("HONE_DATA_DIR", REPO.parent / "shared" / "data"))
WORDS = (
    "the a an of to in and is was for on with at by from he she it they we you i "
    "john smith mary paris london germany france eu un reuters new york city company "
    "said says will would good bad great terrible movie film film's not n't very "
    "peter blackburn brussels german british lamb rejects call boycott "
    ". , ' \" - ( ) : ; ! ?"
).split()


def build_vocab() -> list[str]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    pieces = ["##" + ch for ch in letters]
    return special + sorted(set(WORDS)) + letters + pieces


def save_tiny_model(directory: Path, architecture: str = "bert") -> Path:
    """Save a tiny random model and a WordPiece tokenizer (no download) to ``directory``."""
    from transformers import BertConfig, BertModel, BertTokenizerFast, GPT2Config, GPT2LMHeadModel

    directory.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab()
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True)
    if architecture == "bert":
        config = BertConfig(
            vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=128,
        )
        model = BertModel(config)
    else:
        config = GPT2Config(
            vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2, n_positions=128,
            bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = GPT2LMHeadModel(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with its tokenizer, saved to a folder."""
    import torch

    torch.manual_seed(0)
    return save_tiny_model(tmp_path_factory.mktemp("tiny-bert"), "bert")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide GPT-2 (causal LM) sharing the WordPiece tokenizer."""
    import torch

    torch.manual_seed(0)
    return save_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama whose byte-level BPE tokenizer has an EOS and a ChatML chat template."""
    from tests.hone_plugins.tasks.generative import save_decoder

    return save_decoder(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gpt2_bpe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 with the byte-level BPE tokenizer and no chat template."""
    from tests.hone_plugins.tasks.generative import save_decoder

    return save_decoder(tmp_path_factory.mktemp("tiny-gpt2-bpe"), "gpt2", chat_template=None)


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide T5 with ByT5's byte tokenizer (no vocabulary file)."""
    from tests.hone_plugins.tasks.generative import save_t5

    return save_t5(tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared CoNLL-2003 / SST-2 folder (``$HONE_DATA_DIR``); skips when it is absent."""
    if not (SHARED_DATA / "conll2003" / "train.txt").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set HONE_DATA_DIR)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No plugin settings leak in from the shell, and no entry-point scan cache from ~/.cache."""
    for name in ("HONE_DISABLE_PLUGINS", "HONE_ALLOW_PLUGINS", "HONE_PLUGINS_DIR"):
        monkeypatch.delenv(name, raising=False)
    # stevedore caches entry-point scans on disk with ~2-minute mtime resolution
    cache = getattr(importlib.import_module("stevedore._cache"), "_c", None)
    if cache is not None:
        monkeypatch.setattr(cache, "_dir", str(tmp_path / "stevedore-cache"))


@pytest.fixture
def ner_spec_file(tmp_path: Path, tiny_bert: Path) -> Path:
    """A spec of two train stages and a test evaluation of the tiny BERT on the shipped NER sample."""
    from tests.runs import ner_spec, write_spec

    return write_spec(tmp_path, ner_spec(tiny_bert))
