"""Gradient checkpointing as a train-stage option: the same loss and gradients, refused for models without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from hone_plugins.stages.setup import TrainingError, check_checkpointing, gradient_checkpointing, is_checkpointing


def loss_and_grads(model: Any, batch: dict[str, torch.Tensor], checkpointing: bool) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    with gradient_checkpointing(model, checkpointing, "train"):
        assert is_checkpointing(model) is checkpointing
        loss = model(**batch).loss
        loss.backward()
    assert is_checkpointing(model) is False  # left as it was found
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def same_with_and_without(model: Any, batch: dict[str, torch.Tensor], trained: int = 10) -> None:
    model.train()  # checkpointing only acts in training mode; the configs below have no dropout, so both passes match
    plain_loss, plain = loss_and_grads(model, batch, False)
    loss, grads = loss_and_grads(model, batch, True)
    assert loss == pytest.approx(plain_loss, rel=1e-6)
    assert grads.keys() == plain.keys() and len(grads) > trained
    for name, grad in grads.items():
        torch.testing.assert_close(grad, plain[name], rtol=1e-5, atol=1e-7, msg=name)


def test_bert_gets_the_same_loss_and_gradients(tiny_bert: Path) -> None:
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3, hidden_dropout_prob=0.0,
                                                            attention_probs_dropout_prob=0.0)
    ids = torch.randint(5, 60, (3, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0
    same_with_and_without(model, {"input_ids": ids, "attention_mask": mask, "labels": ids % 3})


def test_gpt2_gets_the_same_loss_and_gradients(tiny_gpt2: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    ids = torch.randint(5, 60, (2, 16), generator=torch.Generator().manual_seed(1))
    same_with_and_without(model, {"input_ids": ids, "labels": ids})


def test_checkpointing_is_real_it_recomputes_the_forward(tiny_bert: Path) -> None:
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3).train()
    calls = []
    model.bert.encoder.layer[0].intermediate.register_forward_hook(lambda *_: calls.append(1))
    ids = torch.randint(5, 60, (2, 8))
    for enabled in (False, True):
        calls.clear()
        with gradient_checkpointing(model, enabled, "train"):
            model(input_ids=ids, labels=ids % 3).loss.backward()
        assert len(calls) == (2 if enabled else 1)


def test_a_model_without_support_is_refused_clearly() -> None:
    model = torch.nn.Linear(4, 2)
    with pytest.raises(TrainingError, match=r"stage 'fit': gradient_checkpointing: Linear does not support it.*remove"):
        check_checkpointing(model, "fit")
    with pytest.raises(TrainingError, match="Linear does not support it"), gradient_checkpointing(model, True, "fit"):
        pass
    with gradient_checkpointing(model, False, "fit"):  # not asked for: nothing checked
        pass


def test_a_lora_wrapped_bert_gets_the_same_gradients_and_no_deprecation_warning(tiny_bert: Path) -> None:
    peft = pytest.importorskip("peft")
    import warnings

    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3, hidden_dropout_prob=0.0,
                                                            attention_probs_dropout_prob=0.0)
    model = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False,
                                                       target_modules=["query", "value"]))
    ids = torch.randint(5, 60, (3, 12), generator=torch.Generator().manual_seed(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # transformers 5 warns on the old is_gradient_checkpointing name
        warnings.filterwarnings("error", message=".*is_gradient_checkpointing.*")
        same_with_and_without(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids % 3},
                              trained=3)  # the adapters of query and value in each layer
