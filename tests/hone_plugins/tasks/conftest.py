"""Fixtures: tiny generative models built in code (see ``generative.py``); the BERT decoder comes from
``tests/conftest.py``'s ``tiny_bert``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hone_plugins.tasks.generative import save_decoder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama whose tokenizer has an EOS and a ChatML chat template."""
    return save_decoder(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gpt2_bpe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 with the BPE tokenizer and no chat template."""
    return save_decoder(tmp_path_factory.mktemp("tiny-gpt2-bpe"), "gpt2", chat_template=None)


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide T5 with ByT5's byte tokenizer (no vocabulary file)."""
    import torch
    from transformers import ByT5Tokenizer, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-t5")
    tokenizer = ByT5Tokenizer()
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_ff=64, d_kv=16, num_layers=2, num_heads=2,
                      decoder_start_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    T5ForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
