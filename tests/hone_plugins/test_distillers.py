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


P = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)  # the teacher's probabilities
Q = torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64)  # the student's


def hand_kl(p: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p || q) = sum p log(p / q), as torch.nn.functional.kl_div computes it (input: log q, target: p)."""
    by_hand = float((p * (p / q).log()).sum())
    assert by_hand == pytest.approx(float(torch.nn.functional.kl_div(q.log(), p, reduction="sum")), rel=1e-6)
    return by_hand


@pytest.mark.parametrize(("loss", "expected"), [
    ("forward-kl", lambda: hand_kl(P, Q)),
    ("reverse-kl", lambda: hand_kl(Q, P)),
    ("jsd", lambda: 0.5 * hand_kl(P, 0.5 * P + 0.5 * Q) + 0.5 * hand_kl(Q, 0.5 * P + 0.5 * Q)),
])
def test_each_divergence_matches_its_hand_computed_value(loss: str, expected: Any) -> None:
    distiller = logits_distiller(LogitsParams(alpha=1.0, temperature=1.0, loss=loss))
    value = float(distiller.loss(out([Q.log().tolist()]), [out([P.log().tolist()])], {}, torch.tensor(0.0)))
    assert value == pytest.approx(expected(), rel=1e-5)


def test_generalised_jsd_weights_the_teacher_by_beta_and_is_symmetric_at_one_half() -> None:
    for beta in (0.1, 0.9):
        mixture = beta * P + (1 - beta) * Q
        expected = beta * hand_kl(P, mixture) + (1 - beta) * hand_kl(Q, mixture)
        value = float(kd_loss(Q.log()[None], P.log()[None], 1.0, loss="jsd", beta=beta))
        assert value == pytest.approx(expected, rel=1e-5)
    # temperature softens both sides and scales by T^2, as for the KL losses
    softened = (2 * P.log()).softmax(-1), (2 * Q.log()).softmax(-1)  # logits 4 log p at T = 2
    assert float(kd_loss(4 * Q.log()[None], 4 * P.log()[None], 2.0, loss="jsd")) == pytest.approx(
        4 * float(kd_loss(softened[1].log()[None], softened[0].log()[None], 1.0, loss="jsd")), rel=1e-5)
    forward = float(kd_loss(Q.log()[None], P.log()[None], 1.0, loss="jsd"))
    assert forward == pytest.approx(float(kd_loss(P.log()[None], Q.log()[None], 1.0, loss="jsd")), rel=1e-6)
    assert 0 < forward < math.log(2)


def test_beta_is_refused_outside_jsd_and_outside_0_1() -> None:
    with pytest.raises(ValidationError, match="beta applies only to loss: jsd"):
        LogitsParams(beta=0.3)
    for beta in (0.0, 1.0):
        with pytest.raises(ValidationError, match="beta"):
            LogitsParams(loss="jsd", beta=beta)
    with pytest.raises(ValidationError, match="forward-kl"):
        LogitsParams(loss="kl")


def test_causal_lm_positions_count_where_the_next_label_is_an_answer_token() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(1, 4, 5), torch.randn(1, 4, 5)
    batch = {"labels": torch.tensor([[-100, -100, 3, 1]]), "_label_shift": 1}  # the prompt: tokens 0 and 1
    distiller = logits_distiller(LogitsParams(alpha=1.0, temperature=1.0, loss="reverse-kl"))
    shifted = float(distiller.loss(out(student), [out(teacher)], batch, torch.tensor(0.0)))
    # the logits at positions 1 and 2 predict the answer tokens 2 and 3; the last position predicts nothing
    assert shifted == pytest.approx(float(kd_loss(student[:, 1:3], teacher[:, 1:3], 1.0, loss="reverse-kl")), rel=1e-6)
    unshifted = float(distiller.loss(out(student), [out(teacher)], {"labels": batch["labels"]}, torch.tensor(0.0)))
    expected = float(kd_loss(student[:, 2:4], teacher[:, 2:4], 1.0, loss="reverse-kl"))
    assert unshifted == pytest.approx(expected, rel=1e-6)


def test_logits_of_other_widths_are_refused_with_the_reason() -> None:
    distiller = logits_distiller(LogitsParams(alpha=1.0))
    with pytest.raises(ValueError, match=r"shape \(1, 2, 4\), the teacher's \(1, 2, 5\)"):
        distiller.loss(out(torch.zeros(1, 2, 4)), [out(torch.zeros(1, 2, 5))], {}, torch.tensor(0.0))


@pytest.mark.parametrize("loss", ["forward-kl", "reverse-kl", "jsd"])
def test_instruction_data_is_distilled_on_the_completion_tokens_only(tiny_gpt2: Any, loss: str) -> None:
    """A teacher that disagrees with the student anywhere in the prompt costs nothing; on the answer it does."""
    from hone.plugins import load_plugins

    task = load_plugins(warn=False).registries.get("task", "causal-lm").build({"max_length": 32})
    model, tokenizer = task.load(str(tiny_gpt2), [])
    records = [{"prompt": "john smith lives in", "completion": " paris"},
               {"prompt": "mary was", "completion": " in london"}]
    batch = task.collate(task.encode(records, tokenizer, []), tokenizer)
    batch["_label_shift"] = task.label_shift
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"}).logits
    answer = torch.zeros_like(batch["labels"], dtype=torch.bool)
    answer[:, :-1] = batch["labels"][:, 1:] != -100  # the positions whose next token is a completion token or EOS
    prompt_ids = tokenizer("john smith lives in")["input_ids"]
    assert int(answer[0].sum()) == len(tokenizer(" paris", add_special_tokens=False)["input_ids"]) + 1  # and EOS
    assert not answer[0, : len(prompt_ids) - 2].any()  # no position inside the prompt predicts a prompt token
    distiller = logits_distiller(LogitsParams(alpha=1.0, loss=loss))
    outside = logits.clone()
    outside[~answer] = torch.randn_like(outside[~answer]) * 10
    assert float(distiller.loss(out(logits), [out(outside)], batch, torch.tensor(0.0))) == pytest.approx(0.0, abs=1e-6)
    inside = logits.clone()
    inside[0, int(answer[0].nonzero()[0])] += torch.randn(logits.shape[-1]) * 10
    assert float(distiller.loss(out(logits), [out(inside)], batch, torch.tensor(0.0))) > 1e-3


def test_seq2seq_targets_are_distilled_on_the_target_tokens_not_the_padding(tiny_t5: Any) -> None:
    from hone.plugins import load_plugins

    task = load_plugins(warn=False).registries.get("task", "seq2seq").build({"max_length": 32, "max_target_length": 16})
    model, tokenizer = task.load(str(tiny_t5), [])
    records = [{"source": "john smith lives in", "target": "paris"}, {"source": "mary was", "target": "in london"}]
    batch = task.collate(task.encode(records, tokenizer, []), tokenizer)
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"}).logits
    target = batch["labels"] != -100
    assert target.sum(1).tolist() == [len("paris") + 1, len("in london") + 1]  # ByT5: a token a byte, and EOS
    distiller = logits_distiller(LogitsParams(alpha=1.0, loss="jsd", beta=0.3))
    padding = logits.clone()
    padding[~target] += torch.randn_like(padding[~target]) * 10
    assert float(distiller.loss(out(logits), [out(padding)], batch, torch.tensor(0.0))) == pytest.approx(0.0, abs=1e-6)
    inside = logits.clone()
    inside[1, 0] += torch.randn(logits.shape[-1]) * 10
    assert float(distiller.loss(out(logits), [out(inside)], batch, torch.tensor(0.0))) > 1e-3
