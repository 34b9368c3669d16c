"""Tiny generative models built in code (GPT-2 and Llama with a byte-level BPE that has an EOS and a chat
template), chat templates, and helpers for the generative task tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CORPUS = [
    "the sky is blue", "john smith lives in paris", "mary was in london", "what color is the sky?",
    "it is blue.", "the capital of france is paris", "yes", "no", "answer: 42",
]
SPECIAL = ["<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_GENERATION = (  # marks the assistant tokens for transformers' return_assistant_tokens_mask
    "{% for message in messages %}{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>\n' }}{% endgeneration %}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PLAIN_CHAT = (  # for WordPiece vocabularies without <|...|> tokens (MiniLM)
    "{% for m in messages %}{{ m['role'] + ' : ' + m['content'] + ' ; ' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant : ' }}{% endif %}"
)


def bpe_tokenizer(chat_template: str | None = CHATML) -> Any:
    """A byte-level BPE of ~300 tokens trained on the fly, with EOS, padding and ChatML tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS * 4, trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=SPECIAL[0], pad_token=SPECIAL[1],
                                      additional_special_tokens=SPECIAL[2:])
    wrapped.chat_template = chat_template
    return wrapped


def save_decoder(directory: Path, kind: str, chat_template: str | None = CHATML) -> Path:
    """A 2-layer, 32-wide GPT-2 or Llama causal LM and its BPE tokenizer, saved to ``directory``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = bpe_tokenizer(chat_template)
    ids = {"eos_token_id": tokenizer.eos_token_id, "bos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2,
                                           n_positions=128, **ids))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=128, **ids))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def save_t5(directory: Path) -> Path:
    """A 2-layer, 32-wide T5 with ByT5's byte tokenizer (no vocabulary file), saved to ``directory``."""
    import torch
    from transformers import ByT5Tokenizer, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    tokenizer = ByT5Tokenizer()
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_ff=64, d_kv=16, num_layers=2, num_heads=2,
                      decoder_start_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    T5ForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def train(task: Any, model: Any, batch: dict[str, Any], steps: int = 60, lr: float = 1e-2) -> float:
    """Overfit ``model`` on one batch with the task's loss; the last loss."""
    import torch

    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = task.loss(model(**inputs(batch)), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return loss.item()


def inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """What hone's loops pass to the model's forward: no labels, no ``_`` metadata."""
    return {k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"}
