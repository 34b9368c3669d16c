"""The built-in distillers on hand-made logits and tiny randomly initialised BERTs."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from hone_plugins.distillers import (
    HiddenParams,
    LogitsParams,
    hidden_distiller,
    kd_loss,
    logits_distiller,
    uniform_map,
)


def out(logits: list[Any] | torch.Tensor) -> SimpleNamespace:
    return SimpleNamespace(logits=torch.as_tensor(logits, dtype=torch.float))


def tiny_bert(width: int, layers: int, heads: int = 2) -> Any:
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(width + layers)
    config = BertConfig(vocab_size=50, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=2 * width, max_position_embeddings=32, num_labels=3,
                        attn_implementation="eager")
    return BertForTokenClassification(config)


def test_logits_loss_is_zero_when_the_student_matches_the_teacher() -> None:
    distiller = logits_distiller(LogitsParams(alpha=1.0, temperature=3.0))
    logits = torch.randn(2, 5, 4)
    loss = distiller.loss(out(logits), [out(logits.clone())], {}, torch.tensor(7.0))
    assert abs(float(loss)) < 1e-6


def test_temperature_scaling_matches_a_hand_computed_value() -> None:
    # T = 2: teacher logits (2 ln 3, 0) soften to (3/4, 1/4); the student's (0, 0) to (1/2, 1/2)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    student, teacher = out([[0.0, 0.0]]), out([[2 * math.log(3), 0.0]])
    distiller = logits_distiller(LogitsParams(alpha=1.0, temperature=2.0))
    assert float(distiller.loss(student, [teacher], {}, torch.tensor(0.0))) == pytest.approx(4 * kl, rel=1e-5)
    mixed = logits_distiller(LogitsParams(alpha=0.25, temperature=2.0))
    assert float(mixed.loss(student, [teacher], {}, torch.tensor(1.0))) == pytest.approx(0.25 * 4 * kl + 0.75, rel=1e-5)


def test_positions_labelled_minus_100_are_ignored() -> None:
    student = torch.tensor([[[5.0, -5.0], [0.0, 0.0], [9.0, 1.0]]])
    teacher = torch.tensor([[[-5.0, 5.0], [2 * math.log(3), 0.0], [-9.0, 1.0]]])
    batch = {"labels": torch.tensor([[-100, 0, -100]])}
    distiller = logits_distiller(LogitsParams(alpha=1.0, temperature=2.0))
    masked = float(distiller.loss(out(student), [out(teacher)], batch, torch.tensor(0.0)))
    only_middle = float(kd_loss(student[:, 1:2], teacher[:, 1:2], 2.0))
    assert masked == pytest.approx(only_middle, rel=1e-6)
    assert float(kd_loss(student, teacher, 2.0)) > masked


def test_teacher_logits_are_averaged_or_weighted() -> None:
    a, b, student = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    single = logits_distiller(LogitsParams(alpha=1.0, temperature=1.5))
    weighted = logits_distiller(LogitsParams(alpha=1.0, temperature=1.5, teacher_weights=[3, 1]))
    weighted.prepare(None, [None, None])
    assert float(weighted.loss(out(student), [out(a), out(b)], {}, 0.0)) == pytest.approx(
        float(single.loss(out(student), [out(0.75 * a + 0.25 * b)], {}, 0.0)), rel=1e-5)
    averaged = logits_distiller(LogitsParams(alpha=1.0, temperature=1.5))
    assert float(averaged.loss(out(student), [out(a), out(b)], {}, 0.0)) == pytest.approx(
        float(single.loss(out(student), [out((a + b) / 2)], {}, 0.0)), rel=1e-5)
    with pytest.raises(ValueError, match="2 weights for 3 teacher"):
        weighted.prepare(None, [None] * 3)


def test_teacher_weights_must_be_usable() -> None:
    with pytest.raises(ValidationError, match="non-negative"):
        LogitsParams(teacher_weights=[1.0, -1.0])


def test_a_single_output_regression_head_is_matched_by_squared_error() -> None:
    loss = kd_loss(torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [2.0]]), temperature=4.0)
    assert float(loss) == pytest.approx(2.0)


def test_uniform_layer_map_is_tinybert_style() -> None:
    assert uniform_map(3, 6) == {0: 0, 1: 2, 2: 4, 3: 6}
    assert uniform_map(1, 2) == {0: 0, 1: 2}


def test_hidden_loss_across_widths_trains_the_projection() -> None:
    student, teacher = tiny_bert(16, 1), tiny_bert(32, 2).eval()
    distiller = hidden_distiller(HiddenParams(attention=True))
    modules = distiller.prepare(student, [teacher])
    assert set(modules) == {"projection0"} and modules["projection0"].weight.shape == (32, 16)
    before = modules["projection0"].weight.detach().clone()
    parameters = [*student.parameters(), *modules["projection0"].parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-2)
    batch = {"input_ids": torch.randint(5, 50, (4, 10)), "attention_mask": torch.ones(4, 10, dtype=torch.long)}
    batch["attention_mask"][0, 7:] = 0
    with torch.no_grad():
        target = teacher(**batch, output_hidden_states=True, output_attentions=True)
    losses = []
    for _ in range(15):
        outputs = student(**batch, output_hidden_states=True, output_attentions=True)
        loss = distiller.loss(outputs, [target], batch, torch.tensor(0.0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert modules["projection0"].weight.grad is not None
    assert not torch.equal(before, modules["projection0"].weight.detach())
    assert losses[-1] < 0.5 * losses[0]


def test_hidden_loss_adds_the_attention_term_and_needs_no_projection_for_equal_widths() -> None:
    student, teacher = tiny_bert(32, 1), tiny_bert(32, 2).eval()
    batch = {"input_ids": torch.randint(5, 50, (2, 8)), "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    with torch.no_grad():
        s = student(**batch, output_hidden_states=True, output_attentions=True)
        t = teacher(**batch, output_hidden_states=True, output_attentions=True)
    plain, with_attention = hidden_distiller(HiddenParams()), hidden_distiller(HiddenParams(attention=True))
    assert plain.prepare(student, [teacher]) == {} and with_attention.needs_attentions
    with_attention.prepare(student, [teacher])
    assert float(with_attention.loss(s, [t], batch, 0.0)) > float(plain.loss(s, [t], batch, 0.0)) > 0


def test_a_layer_map_outside_the_models_is_refused() -> None:
    distiller = hidden_distiller(HiddenParams(layer_map={1: 5}))
    with pytest.raises(ValueError, match="out of range"):
        distiller.prepare(tiny_bert(16, 1), [tiny_bert(16, 2)])


def test_the_distillers_are_registered_plugins() -> None:
    from hone.plugins import load_plugins

    registry = load_plugins().registries
    assert registry.get("distiller", "logits").origin.distribution == "hone-ml"
    assert registry.get("distiller", "tinybert").name == "hidden"
