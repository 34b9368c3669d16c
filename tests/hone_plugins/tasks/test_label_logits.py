"""causal-lm's training forward projects only the labelled positions onto the vocabulary: same loss, same gradients."""

from __future__ import annotations

from typing import Any

import pytest

from hone.plugins import load_plugins
from tests.hone_plugins.tasks.generative import inputs

RECORDS = [
    {"prompt": "what color is the sky?", "completion": " it is blue."},
    {"prompt": "the capital of france is", "completion": " paris"},
    {"prompt": "yes", "completion": " no"},
]


def build(**params: Any) -> Any:
    return load_plugins(warn=False).registries.get("task", "causal-lm").build(params)


def cpu_context(task: Any, model: Any, tokenizer: Any) -> Any:
    """A run context of just a task and a model on the CPU, at fp32: what the loss and distillation paths read."""
    import torch

    from hone.run.context import RunContext

    return RunContext(spec=None, host=None, run_dir=None, task=task, model=model, tokenizer=tokenizer,  # type: ignore[arg-type]
                      labels=[], features={}, device=torch.device("cpu"), precision="fp32", events=None,  # type: ignore[arg-type]
                      checkpoints=None, progress=None)


def loss_and_grads(task: Any, model: Any, batch: dict[str, Any], scoped: bool) -> tuple[Any, Any, dict[str, Any]]:
    from contextlib import nullcontext

    model.zero_grad(set_to_none=True)
    with task.loss_scope(model, batch) if scoped else nullcontext():
        outputs = model(**inputs(batch))
    loss = task.loss(outputs, batch)
    loss.backward()
    return loss.detach(), outputs.logits.shape, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("fixture", ["tiny_gpt2_bpe", "tiny_llama", "tiny_bert"])
@pytest.mark.parametrize("completion_only", [True, False])
def test_same_loss_and_gradients_as_full_logits(fixture: str, completion_only: bool, request: pytest.FixtureRequest) -> None:
    import torch

    task = build(max_length=32, completion_only_loss=completion_only)
    model, tokenizer = task.load(str(request.getfixturevalue(fixture)), [])
    model.eval()  # no dropout: both passes see the same network
    batch = task.collate(task.encode(RECORDS, tokenizer, []), tokenizer)
    full_loss, full_shape, full = loss_and_grads(task, model, batch, scoped=False)
    loss, shape, grads = loss_and_grads(task, model, batch, scoped=True)
    labelled = int((batch["labels"][:, 1:] != -100).sum())
    assert full_shape[:2] == batch["labels"].shape and tuple(shape[:2]) == (1, labelled) < tuple(full_shape[:2])
    torch.testing.assert_close(loss, full_loss, rtol=1e-5, atol=1e-6)
    assert grads.keys() == full.keys() and len(grads) > 5
    for name, grad in grads.items():
        torch.testing.assert_close(grad, full[name], rtol=1e-4, atol=1e-6, msg=name)
    assert model(**inputs(batch)).logits.shape == full_shape  # the hook is gone after the scope


def test_a_model_without_an_output_projection_keeps_full_logits() -> None:
    import torch

    from hone_plugins.tasks.label_logits import logits_at_labels

    model = torch.nn.Linear(4, 6)  # no get_output_embeddings
    labels = torch.tensor([[-100, 1, 2]])
    with logits_at_labels(model, labels, 1):
        assert model(torch.ones(1, 3, 4)).shape == (1, 3, 6)


def test_the_run_context_runs_the_training_loss_inside_the_tasks_scope() -> None:
    from contextlib import contextmanager
    from types import SimpleNamespace

    import torch


    seen: list[str] = []

    @contextmanager
    def scope(model: Any, batch: Any) -> Any:
        seen.append("enter")
        yield
        seen.append("exit")

    class Model(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            seen.append("forward")
            return SimpleNamespace(value=x.sum())

    task = SimpleNamespace(loss_scope=scope, loss=lambda outputs, batch, smoothing: seen.append("loss") or outputs.value)
    ctx = cpu_context(task, Model(), None)
    assert float(ctx.loss(ctx.model, {"x": torch.ones(2), "labels": torch.ones(2)})) == 2.0
    assert seen == ["enter", "forward", "exit", "loss"]
    del task.loss_scope  # a task without one: the forward runs as it is
    seen.clear()
    ctx.loss(ctx.model, {"x": torch.ones(2)})
    assert seen == ["forward", "loss"]


@pytest.mark.parametrize("distiller_name", ["logits", "hidden"])
def test_distilling_a_causal_lm_projects_only_the_answer_positions_with_the_same_loss(
        distiller_name: str, tiny_gpt2_bpe: Any) -> None:
    from types import SimpleNamespace

    import torch

    from hone_plugins.stages.distill import distill_loss

    task = build(max_length=32)
    teacher, tokenizer = task.load(str(tiny_gpt2_bpe), [])
    student, _ = task.load(str(tiny_gpt2_bpe), [])
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)  # a student that disagrees with its teacher
    teacher.eval(), student.eval()
    batch = task.collate(task.encode(RECORDS, tokenizer, []), tokenizer)
    registries = load_plugins(warn=False).registries
    params = {"alpha": 0.5} | ({"beta": 0.1} if distiller_name == "hidden" else {"loss": "reverse-kl"})
    distiller = registries.get("distiller", distiller_name).build(params)
    distiller.prepare(student, [teacher])
    ctx = cpu_context(task, student, tokenizer)
    rows: list[int] = []
    hooks = [m.get_output_embeddings().register_forward_hook(lambda _, args, out: rows.append(out.shape[:2]))
             for m in (teacher, student)]
    scoped = distill_loss(ctx, SimpleNamespace(label_smoothing=0.0), distiller, [teacher])(student, batch)  # type: ignore[arg-type]
    for hook in hooks:
        hook.remove()
    labelled = int((batch["labels"][:, 1:] != -100).sum())
    assert rows == [(1, labelled), (1, labelled)]  # teacher, then student: the answer positions only
    flags = {"output_hidden_states": True} if distiller.needs_hidden_states else {}
    with torch.no_grad():
        teacher_outputs = teacher(**inputs(batch), **flags)
    outputs = student(**inputs(batch), **flags)
    full = distiller.loss(outputs, [teacher_outputs], {**batch, "_label_shift": 1}, task.loss(outputs, batch))
    torch.testing.assert_close(scoped, full, rtol=1e-5, atol=1e-6)


def test_a_distiller_that_does_not_take_compact_logits_gets_every_positions(tiny_gpt2_bpe: Any) -> None:
    from types import SimpleNamespace


    from hone_plugins.stages.distill import distill_loss

    task = build(max_length=32)
    model, tokenizer = task.load(str(tiny_gpt2_bpe), [])
    batch = task.collate(task.encode(RECORDS, tokenizer, []), tokenizer)
    seen: list[Any] = []

    class ThirdParty:  # written against the distiller contract before compact logits existed
        needs_hidden_states = needs_attentions = False

        def loss(self, outputs: Any, teacher_outputs: Any, batch: Any, task_loss: Any) -> Any:
            seen.extend([outputs.logits.shape[:2], teacher_outputs[0].logits.shape[:2]])
            return task_loss

    ctx = cpu_context(task, model, tokenizer)
    distill_loss(ctx, SimpleNamespace(label_smoothing=0.0), ThirdParty(), [model])(model, batch)  # type: ignore[arg-type]
    assert seen == [batch["labels"].shape, batch["labels"].shape]
