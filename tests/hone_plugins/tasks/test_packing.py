"""causal-lm packing: a batch's examples in full rows, each attending only to itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hone.plugins import load_plugins
from tests.hone_plugins.tasks.generative import inputs

RECORDS = [
    {"prompt": "what color is the sky?", "completion": " it is blue."},
    {"prompt": "the capital of france is", "completion": " paris"},
    {"prompt": "john smith lives in", "completion": " paris"},
    {"prompt": "yes", "completion": " no"},
    {"prompt": "mary was in", "completion": " london"},
]


def build(**params: Any) -> Any:
    return load_plugins(warn=False).registries.get("task", "causal-lm").build(params)


def test_first_fit_decreasing_fills_rows() -> None:
    from hone_plugins.tasks.packing import first_fit_decreasing

    assert first_fit_decreasing([5, 3, 8, 2, 4], 10) == [[2, 3], [0, 4], [1]]
    assert first_fit_decreasing([10, 10], 10) == [[0], [1]]


def test_packed_rows_and_their_masks(tiny_llama: Path) -> None:
    import torch

    task = build(max_length=16, packing=True)
    _, tokenizer = task.load(str(tiny_llama), [])
    features = [
        {"input_ids": [11, 12, 13], "labels": [-100, 12, 13], "_reference": "a"},
        {"input_ids": [21, 22, 23, 24, 25, 26, 27, 28, 29, 30], "labels": [21] * 10, "_reference": "b"},
        {"input_ids": [31, 32], "labels": [31, 32], "_reference": "c"},
    ]
    batch = task.collate(features, tokenizer)
    assert batch["_reference"] == ["a", "b", "c"]  # per example, in order: generation does not see the rows
    pad = tokenizer.pad_token_id
    assert batch["input_ids"].tolist() == [[21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 11, 12, 13, 31, 32, pad]]
    assert batch["position_ids"].tolist() == [[*range(10), 0, 1, 2, 0, 1, 0]]
    # each example's first label is dropped: the token before it belongs to another example
    assert batch["labels"].tolist() == [[-100] + [21] * 9 + [-100, 12, 13, -100, 32, -100]]
    mask = batch["attention_mask"]
    assert mask.shape == (1, 1, 16, 16) and mask.dtype == torch.float32
    allowed = (mask[0, 0] == 0).int()
    segments = [0] * 10 + [1] * 3 + [2] * 2 + [3]
    expected = [[int(segments[q] == segments[k] and k <= q) for k in range(16)] for q in range(16)]
    assert allowed.tolist() == expected  # causal inside each example, nothing across, padding on its own
    assert set(mask.unique().tolist()) == {0.0, torch.finfo(torch.float32).min}


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("checkpoint", ["tiny_gpt2_bpe", "tiny_llama", "tiny_bert"])
def test_a_packed_batch_has_the_unpacked_loss(request: pytest.FixtureRequest, checkpoint: str, attention: str) -> None:
    import torch

    packed, plain = build(max_length=32, packing=True), build(max_length=32)
    model, tokenizer = packed.load(str(request.getfixturevalue(checkpoint)), [])
    model.set_attn_implementation(attention)
    features = plain.encode(RECORDS, tokenizer, [])
    rows, padded = packed.collate(features, tokenizer), plain.collate(features, tokenizer)
    assert rows["input_ids"].shape[0] < padded["input_ids"].shape[0]  # fewer rows, same examples
    assert int((rows["labels"] != -100).sum()) == int((padded["labels"][:, 1:] != -100).sum())
    model.eval()  # no dropout
    with torch.no_grad():
        assert torch.allclose(packed.loss(model(**inputs(rows)), rows), plain.loss(model(**inputs(padded)), padded),
                              atol=1e-5)
    gradients = []
    for batch in (rows, padded):  # the gradients agree too
        model.zero_grad()
        packed.loss(model(**inputs(batch)), batch).backward()
        gradients.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(*gradients, atol=1e-5)


def test_packing_is_refused_where_examples_cannot_be_kept_apart(tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from hone_plugins.tasks import causal_lm
    from hone_plugins.tasks.packing import isolation_problem

    model, _ = build().load(str(tiny_llama), [])
    assert isolation_problem(model) is None

    class IgnoresMasks(torch.nn.Module):
        """A model that drops the 4D mask and the positions, as a flash-attention-only kernel would."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def get_input_embeddings(self) -> Any:
            return model.get_input_embeddings()

        def forward(self, input_ids: Any, **kwargs: Any) -> Any:
            return model(input_ids=input_ids)

    assert "logits change when other examples share the row" in isolation_problem(IgnoresMasks())

    class RefusesPositions(IgnoresMasks):
        def forward(self, input_ids: Any, attention_mask: Any = None) -> Any:
            return model(input_ids=input_ids, attention_mask=attention_mask)

    assert "refuses packed inputs (TypeError" in isolation_problem(RefusesPositions())
    monkeypatch.setattr(causal_lm, "isolation_problem", lambda model: "its attention ignores 4D masks")
    with pytest.raises(ValueError, match=r"packing: true cannot keep examples apart in LlamaForCausalLM \(attention "
                       r"sdpa\): its attention ignores 4D masks; set packing: false"):
        build(packing=True).load(str(tiny_llama), [])
