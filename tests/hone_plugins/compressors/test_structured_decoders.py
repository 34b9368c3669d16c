"""Structured pruning of decoders built in code (tiny random GPT-2 and grouped-query Llama): shapes, outputs equal
to the original with the removed heads and neurons silenced, generation, and the save/reload round trip."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from hone.components import CompressionContext
from hone_plugins.formats.compressed import STEPS_ATTRIBUTE, load_compressed_model, save_model_weights
from hone_plugins.stages.sizes import model_report
from hone.plugins import PluginHost, load_plugins
from hone_plugins.compressors.pruning.structured import StructuredPruning

IDS = torch.randint(3, 64, (2, 10), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins(warn=False)


def tiny(kind: str, attention: str = "sdpa") -> torch.nn.Module:
    """A 2-layer, 32-wide random decoder: GPT-2 (4 heads) or Llama (4 query heads in 2 key/value groups)."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokens = {"vocab_size": 64, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    if kind == "gpt2":
        config = GPT2Config(n_embd=32, n_inner=64, n_layer=2, n_head=4, n_positions=64, attn_implementation=attention, **tokens)
        return GPT2LMHeadModel(config).eval()
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=8, max_position_embeddings=64, attn_implementation=attention,
                         **tokens)
    return LlamaForCausalLM(config).eval()


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=IDS, attention_mask=torch.ones_like(IDS)).logits


def generate(model: torch.nn.Module) -> torch.Tensor:
    with torch.inference_mode():
        return model.generate(input_ids=IDS, attention_mask=torch.ones_like(IDS), max_new_tokens=6, do_sample=False)


def context() -> CompressionContext:
    torch.manual_seed(3)
    batches = [{"input_ids": torch.randint(3, 64, (4, 12))} for _ in range(3)]
    return CompressionContext(calibration_batches=lambda count, size: batches[:count],
                              loss=lambda m, b: m(input_ids=b["input_ids"], labels=b["input_ids"]).loss)


def layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    return list(model.transformer.h if hasattr(model, "transformer") else model.model.layers)


def kept_neurons(original: torch.nn.Module, pruned: torch.nn.Module) -> list[int]:
    """Which neurons of the original FFN the pruned one kept, found by their input rows."""
    def rows(layer: torch.nn.Module) -> torch.Tensor:
        return layer.mlp.c_fc.weight.t() if hasattr(layer.mlp, "c_fc") else layer.mlp.up_proj.weight

    before, after = rows(original), rows(pruned)
    return [int((before == row).all(1).nonzero()[0]) for row in after]


def silenced(base: torch.nn.Module, pruned: torch.nn.Module, heads_removed: dict[str, list[int]]) -> torch.nn.Module:
    """The original model with the removed heads' and neurons' output columns zeroed: what pruning must equal."""
    model = copy.deepcopy(base)
    with torch.no_grad():
        for i, (layer, small) in enumerate(zip(layers(model), layers(pruned))):
            name = next(n for n in heads_removed if n.endswith(f".{i}"))
            gone = [h * 8 + d for h in heads_removed[name] for d in range(8)]
            neurons = sorted(set(range(64)) - set(kept_neurons(layer, small)))
            if hasattr(layer, "attn"):  # Conv1D: (in, out), so an input column is a row
                layer.attn.c_proj.weight[gone] = 0
                layer.mlp.c_proj.weight[neurons] = 0
            else:
                layer.self_attn.o_proj.weight[:, gone] = 0
                layer.mlp.down_proj.weight[:, neurons] = 0
    return model


CASES = [("gpt2", "groups", "sdpa"), ("gpt2", "groups", "eager"), ("llama", "groups", "sdpa"),
         ("llama", "queries", "sdpa"), ("llama", "groups", "eager"), ("llama", "queries", "eager")]


@pytest.mark.parametrize(("kind", "gqa", "attention"), CASES, ids=["-".join(c) for c in CASES])
def test_pruned_decoder_equals_the_original_with_the_removed_parts_silenced(kind: str, gqa: str, attention: str) -> None:
    base = tiny(kind, attention)
    pruned, report = StructuredPruning(0.5, 0.25, "magnitude", "layer", 1, 1, gqa).compress(copy.deepcopy(base))
    for layer in layers(pruned):
        if kind == "gpt2":
            assert layer.attn.num_heads == 2 and layer.attn.c_attn.weight.shape == (32, 3 * 16)
            assert layer.attn.c_proj.weight.shape == (16, 32) and layer.mlp.c_fc.weight.shape == (32, 48)
        else:
            attention_ = layer.self_attn
            kv = 1 if gqa == "groups" else 2
            assert attention_.q_proj.weight.shape == (16, 32) and attention_.o_proj.weight.shape == (32, 16)
            assert attention_.k_proj.weight.shape == attention_.v_proj.weight.shape == (kv * 8, 32)
            assert attention_.num_key_value_groups == 2 // kv
            assert layer.mlp.gate_proj.weight.shape == layer.mlp.up_proj.weight.shape == (48, 32)
            assert layer.mlp.down_proj.weight.shape == (32, 48)
    assert report["heads"] == [8, 4] and report["architecture"] == kind and report["gqa"] == gqa
    assert report["kv_heads"] == ([8, 4] if kind == "gpt2" else [4, 2] if gqa == "groups" else [4, 4])
    if kind == "llama" and gqa == "groups":  # a whole group: its two query heads, side by side
        assert all(heads in ([0, 1], [2, 3]) for heads in report["heads_removed"].values())
    assert torch.allclose(logits(pruned), logits(silenced(base, pruned, report["heads_removed"])), atol=1e-5)
    assert model_report(pruned, layers=False)["parameters"] < 0.8 * model_report(base, layers=False)["parameters"]


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_pruning_nothing_leaves_the_outputs_unchanged(kind: str) -> None:
    base = tiny(kind)
    same, report = StructuredPruning(0.0, 0.0, "magnitude", "layer", 1, 1).compress(copy.deepcopy(base))
    assert report["heads"] == [8, 8] and torch.equal(logits(same), logits(base))
    assert torch.equal(generate(same), generate(base))


@pytest.mark.parametrize(("kind", "params"), [
    ("gpt2", {"heads_fraction": 0.5, "ffn_fraction": 0.5}),
    ("llama", {"heads_fraction": 0.5, "ffn_fraction": 0.5, "scope": "global"}),
    ("llama", {"heads_fraction": 0.5, "ffn_fraction": 0.25, "gqa": "queries"}),
], ids=["gpt2", "llama-groups-global", "llama-queries"])
def test_a_pruned_decoder_generates_and_reloads_identically_through_the_recipe(
        host: PluginHost, tmp_path: Path, kind: str, params: dict[str, Any]) -> None:
    base = tiny(kind)
    pruned, report = host.registries.get("compressor", "structured").build(params).compress(copy.deepcopy(base), context())
    assert report["importance"] == "gradient"
    tokens = generate(pruned)
    assert tokens.shape == (2, 16)
    setattr(pruned, STEPS_ATTRIBUTE, [{"stage": "prune", "compressor": "structured", "params": params,
                                       "recipe": report["recipe"]}])
    save_model_weights(pruned, tmp_path / "model")  # what a run saves; hone predict loads it like this
    assert (tmp_path / "model" / "compressed.safetensors").exists()
    reloaded = load_compressed_model(tmp_path / "model", host)
    assert type(reloaded) is type(base) and torch.equal(logits(reloaded), logits(pruned))
    assert torch.equal(generate(reloaded), tokens)
    for name, sizes in report["recipe"]["layers"].items():
        assert set(sizes) == {"heads", "kv_heads", "ffn"}
        assert reloaded.get_submodule(name) is not None


def test_structured_pruning_names_the_supported_architectures(host: PluginHost) -> None:
    with pytest.raises(ValueError, match="BERT-style encoder .* GPT-2 blocks .* Llama-style decoder layers"):
        host.registries.get("compressor", "structured").build({}).compress(torch.nn.Sequential(torch.nn.Linear(4, 4)),
                                                                            CompressionContext())
