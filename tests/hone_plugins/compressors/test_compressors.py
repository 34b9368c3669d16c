"""The built-in compressors on a tiny BERT: shapes, sparsity, closeness to the original, and the
save/restore round trip (safetensors weights + recipe) giving identical outputs."""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from hone.components import CompressionContext
from hone_plugins.formats.compressed import STEPS_ATTRIBUTE, load_weights, restore_steps
from hone_plugins.stages.sizes import model_report
from hone.plugins import PluginHost, load_plugins

LABELS = 5
HAS_TORCHAO = importlib.util.find_spec("torchao") is not None
needs_torchao = pytest.mark.skipif(not HAS_TORCHAO, reason="torchao is not installed (pip install 'hone-ml[torchao]')")


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins(warn=False)


@pytest.fixture(scope="module")
def base(tiny_bert: Path) -> torch.nn.Module:
    from transformers import AutoModelForTokenClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(0)
    return AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=LABELS).eval()


@pytest.fixture
def model(base: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(base)


INPUTS = torch.randint(5, 60, (4, 12), generator=torch.Generator().manual_seed(1))


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=INPUTS, attention_mask=torch.ones_like(INPUTS)).logits.float()


def compress(host: PluginHost, name: str, model: torch.nn.Module, context: CompressionContext | None = None,
             **params: Any) -> tuple[torch.nn.Module, dict[str, Any]]:
    return host.registries.get("compressor", name).build(params).compress(model, context or CompressionContext())


def round_trip(host: PluginHost, name: str, params: dict[str, Any], compressed: torch.nn.Module, report: dict[str, Any],
               fresh: torch.nn.Module) -> torch.nn.Module:
    """What saving and loading does: plain tensors out, recipe re-applied to a fresh model, tensors back in."""
    from safetensors.torch import load, save

    from hone_plugins.formats.compressed import state_dict_for_saving

    blob = save(state_dict_for_saving(compressed))
    steps = [{"compressor": name, "params": params, "recipe": report.get("recipe")}]
    restored = restore_steps(fresh, steps, host)
    load_weights(restored, load(blob), "test")
    return restored.eval()


def linear_weights(model: torch.nn.Module, prefix: str = "bert.encoder") -> dict[str, torch.Tensor]:
    return {n: m.weight for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.startswith(prefix)}


def test_compressor_module_does_not_import_torch() -> None:
    code = "import sys, hone_plugins.compressors; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_magnitude_reaches_the_sparsity_and_leaves_the_head_alone(host: PluginHost, model: torch.nn.Module, scope: str) -> None:
    classifier = model.classifier.weight.detach().clone()
    pruned, report = compress(host, "magnitude", model, sparsity=0.6, scope=scope)
    weights = linear_weights(pruned)
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    assert zeros / sum(w.numel() for w in weights.values()) == pytest.approx(0.6, abs=1e-3)
    if scope == "layer":
        assert all(float((w == 0).float().mean()) == pytest.approx(0.6, abs=1e-2) for w in weights.values())
    assert torch.equal(pruned.classifier.weight, classifier)
    assert report == {"sparsity": 0.6, "scope": scope, "pruned_layers": len(weights)}
    assert not any("weight_orig" in name for name, _ in pruned.named_parameters())  # made permanent
    assert "recipe" not in report  # plain weights: saved and loaded like any model


def test_magnitude_include_and_exclude_patterns(host: PluginHost, model: torch.nn.Module) -> None:
    pruned, report = compress(host, "magnitude", model, sparsity=0.5, include=["*.intermediate.dense"], exclude=["*.layer.1.*"])
    assert report["pruned_layers"] == 1
    sparsity = model_report(pruned)["layer_sparsity"]
    assert sparsity["bert.encoder.layer.0.intermediate.dense"] == 0.5
    assert sparsity["bert.encoder.layer.1.intermediate.dense"] < 0.1
    with pytest.raises(ValueError, match="no Linear layer matches include"):
        compress(host, "magnitude", copy.deepcopy(model), include=["*.nothing"])


def test_gradual_magnitude_follows_the_cubic_schedule(host: PluginHost, model: torch.nn.Module) -> None:
    pruner = host.registries.get("compressor", "magnitude").build({"sparsity": 0.8})
    hook = pruner.gradual(model, 20, 2, 12, 2)
    assert [round(hook.target(s), 4) for s in (2, 7, 12, 20)] == [0.0, round(0.8 * (1 - 0.5**3), 4), 0.8, 0.8]
    seen = []
    for step in range(1, 21):
        hook.after_step(model, step)
        weights = linear_weights(model)
        seen.append(sum(int((w == 0).sum()) for w in weights.values()) / sum(w.numel() for w in weights.values()))
    assert seen[0] < 0.01 and seen == sorted(seen)
    assert seen[11] == pytest.approx(0.8, abs=1e-3) and seen[-1] == pytest.approx(0.8, abs=1e-3)


def test_gradual_magnitude_resumed_from_a_checkpoint_continues_identically(host: PluginHost, model: torch.nn.Module) -> None:
    pruner = host.registries.get("compressor", "magnitude").build({"sparsity": 0.5})
    hook = pruner.gradual(model, 10, 0, 6, 3)
    for step in range(1, 5):
        hook.after_step(model, step)
    checkpoint = copy.deepcopy(model)
    resumed = pruner.gradual(checkpoint, 10, 0, 6, 3)  # a resumed stage: the checkpoint's zeros are the masks
    assert all(torch.equal(a, b) for a, b in zip(resumed.masks, hook.masks))
    for m in (model, checkpoint):
        with torch.no_grad():  # an optimizer step moves pruned weights too; the hook zeroes them again
            for weight in linear_weights(m).values():
                weight.add_(0.01)
    hook.after_step(model, 5)
    resumed.after_step(checkpoint, 5)
    assert all(torch.equal(a, b) for a, b in zip(linear_weights(model).values(), linear_weights(checkpoint).values()))


def calibration_context(model: torch.nn.Module) -> CompressionContext:
    torch.manual_seed(3)
    batches = [{"input_ids": torch.randint(5, 60, (4, 10)), "labels": torch.randint(0, LABELS, (4, 10))} for _ in range(3)]

    def loss(m: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        out = m(input_ids=batch["input_ids"]).logits
        return torch.nn.functional.cross_entropy(out.flatten(0, 1), batch["labels"].flatten())

    return CompressionContext(calibration_batches=lambda count, size: batches[:count], loss=loss)


@pytest.mark.parametrize(("importance", "scope"), [("magnitude", "layer"), ("gradient", "layer"), ("gradient", "global")])
def test_structured_pruning_shrinks_the_layers_and_keeps_the_model_runnable(
        host: PluginHost, model: torch.nn.Module, importance: str, scope: str) -> None:
    before = model_report(model, layers=False)["parameters"]
    context = calibration_context(model) if importance == "gradient" else None
    pruned, report = compress(host, "structured", model, context, heads_fraction=0.5, ffn_fraction=0.5,
                              importance=importance, scope=scope)
    layers = [pruned.bert.encoder.layer[i] for i in range(2)]
    assert sum(layer.attention.self.num_attention_heads for layer in layers) == 2  # 2 of 4 heads left
    for layer in layers:
        heads = layer.attention.self.num_attention_heads
        assert heads >= 1 and layer.attention.self.query.weight.shape == (heads * 16, 32)
        assert layer.attention.output.dense.weight.shape == (32, heads * 16)
        assert layer.intermediate.dense.out_features == layer.output.dense.in_features
    assert sum(layer.intermediate.dense.out_features for layer in layers) == 64
    assert report["importance"] == importance and report["heads"] == [4, 2]
    assert model_report(pruned, layers=False)["parameters"] < 0.75 * before
    assert logits(pruned).shape == (4, 12, LABELS) and torch.isfinite(logits(pruned)).all()


def test_structured_pruning_without_data_falls_back_to_magnitude(host: PluginHost, model: torch.nn.Module) -> None:
    _, report = compress(host, "structured", model, ffn_fraction=0.25, heads_fraction=0.0)
    assert report["importance"] == "magnitude" and report["heads"] == [4, 4]
    with pytest.raises(ValueError, match="needs calibration data"):
        compress(host, "structured", copy.deepcopy(model), importance="gradient")


def test_structured_pruning_refuses_a_model_without_a_bert_encoder(host: PluginHost) -> None:
    with pytest.raises(ValueError, match="BERT-style encoder"):
        compress(host, "structured", torch.nn.Sequential(torch.nn.Linear(4, 4)))


def test_dynamic_int8_quantizes_linear_layers_and_stays_close(host: PluginHost, model: torch.nn.Module, base: torch.nn.Module) -> None:
    quantized, report = compress(host, "dynamic-int8", model)
    assert report["quantized_layers"] == 13 and report["recipe"]["cpu_only"] is True
    assert "quantized" in type(quantized.bert.encoder.layer[0].intermediate.dense).__module__
    assert torch.allclose(logits(quantized), logits(base), atol=0.05)
    assert model_report(quantized, layers=False)["size_bytes"] < 0.8 * model_report(base, layers=False)["size_bytes"]


def test_dynamic_int8_scales_each_output_row_unless_asked_per_tensor(host: PluginHost, base: torch.nn.Module) -> None:
    def scheme(model: torch.nn.Module) -> torch.qscheme:
        return model.bert.encoder.layer[0].intermediate.dense.weight().qscheme()

    per_row, report = compress(host, "dynamic-int8", copy.deepcopy(base))
    assert scheme(per_row) == torch.per_channel_affine and report["recipe"]["per_channel"] is True
    per_tensor, report = compress(host, "dynamic-int8", copy.deepcopy(base), per_channel=False)
    assert scheme(per_tensor) == torch.per_tensor_affine and report["recipe"]["per_channel"] is False
    # a model saved before the option existed was quantized per tensor, and is rebuilt so
    from hone_plugins.compressors.quantization import DynamicInt8

    old = DynamicInt8(["*"], []).restore(copy.deepcopy(base), {"layers": report["recipe"]["layers"], "cpu_only": True})
    assert scheme(old) == torch.per_tensor_affine


def test_weight_int8_stores_int8_weights_and_stays_close(host: PluginHost, model: torch.nn.Module, base: torch.nn.Module) -> None:
    quantized, report = compress(host, "weight-int8", model)
    layer = quantized.bert.encoder.layer[0].intermediate.dense
    assert layer.weight.dtype == torch.int8 and layer.weight.shape == (64, 32)
    assert torch.allclose(logits(quantized), logits(base), atol=0.02)
    assert report["quantized_layers"] == 13


def test_dynamic_int8_refuses_before_work_where_torch_dropped_torch_ao(host: PluginHost, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.ao.quantization

    monkeypatch.delattr(torch.ao.quantization, "quantize_dynamic")
    with pytest.raises(ValueError, match=r"no longer has: use int8-weight-only \(torchao; pip install 'hone-ml\[torchao\]'\)"):
        host.registries.get("compressor", "dynamic-int8").build({})


@needs_torchao
@pytest.mark.parametrize(("name", "stored"), [("int8-weight-only", torch.int8), ("float8-weight-only", torch.float8_e4m3fn)])
def test_torchao_weight_only_quantizes_linear_layers_and_stays_close(
        host: PluginHost, model: torch.nn.Module, base: torch.nn.Module, name: str, stored: torch.dtype) -> None:
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    quantized, report = compress(host, name, model)
    weight = quantized.bert.encoder.layer[0].intermediate.dense.weight
    assert is_traceable_wrapper_subclass(weight) and weight.shape == (64, 32) and weight.qdata.dtype == stored
    assert weight.scale.shape == (64, 1)  # per output row
    assert type(quantized.classifier.weight.data) is torch.Tensor  # the task head is left alone by default
    assert report["quantized_layers"] == 12 and report["recipe"]["layers"][0] == "bert.encoder.layer.0.attention.output.dense"
    assert "cpu_only" not in report["recipe"]
    assert torch.allclose(logits(quantized), logits(base), atol=0.01)
    after, before = model_report(quantized), model_report(base)
    assert after["parameters"] == before["parameters"] and after["size_bytes"] < 0.8 * before["size_bytes"]
    assert after["layer_sparsity"]["bert.encoder.layer.0.intermediate.dense"] < 0.05


@needs_torchao
def test_torchao_weight_only_per_tensor_scales_and_layer_patterns(host: PluginHost, model: torch.nn.Module) -> None:
    quantized, report = compress(host, "int8-weight-only", model, include=["*.intermediate.dense"], granularity="per_tensor")
    assert report["quantized_layers"] == 2 and report["granularity"] == "per_tensor"
    assert quantized.bert.encoder.layer[1].intermediate.dense.weight.scale.numel() == 1
    assert type(quantized.bert.encoder.layer[1].output.dense.weight.data) is torch.Tensor


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a CUDA GPU")
@needs_torchao
def test_int4_weight_only_is_refused_on_a_cpu_before_any_work(host: PluginHost, model: torch.nn.Module) -> None:
    before = model.bert.encoder.layer[0].intermediate.dense.weight
    with pytest.raises(ValueError, match="int4-weight-only needs a CUDA GPU of compute capability 8.0 or newer .* "
                                         "the model is on cpu .* Use int8-weight-only or float8-weight-only instead"):
        compress(host, "int4-weight-only", model)
    assert model.bert.encoder.layer[0].intermediate.dense.weight is before and next(model.parameters()).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 0), reason="needs CUDA 8.0+")
@needs_torchao
def test_int4_weight_only_on_a_gpu_round_trips(host: PluginHost, base: torch.nn.Module) -> None:
    quantized, report = compress(host, "int4-weight-only", copy.deepcopy(base).cuda(), group_size=32)
    assert report["quantized_layers"] == 12 and report["model_dtype"] == "bf16"
    restored = round_trip(host, "int4-weight-only", {"group_size": 32}, quantized, report, type(base)(base.config))
    ids = INPUTS.cuda()
    with torch.inference_mode():
        assert torch.equal(restored(input_ids=ids).logits, quantized(input_ids=ids).logits)


def test_torchao_compressors_without_torchao_name_the_install(host: PluginHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchao", None)  # import torchao now raises ImportError
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    for name in ("int8-weight-only", "float8-weight-only", "int4-weight-only"):
        with pytest.raises(ValueError, match=r"needs torchao: pip install 'hone-ml\[torchao\]'"):
            host.registries.get("compressor", name).build({})


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_half_casts_and_stays_close(host: PluginHost, model: torch.nn.Module, base: torch.nn.Module, dtype: str) -> None:
    cast, _ = compress(host, "half", model, dtype=dtype)
    assert next(cast.parameters()).dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    assert torch.allclose(logits(cast), logits(base), atol=0.05)
    assert model_report(cast, layers=False)["size_bytes"] < 0.6 * model_report(base, layers=False)["size_bytes"]


ROUND_TRIPS = [
    ("magnitude", {"sparsity": 0.5}),
    ("structured", {"heads_fraction": 0.5, "ffn_fraction": 0.5, "importance": "magnitude"}),
    ("dynamic-int8", {}),
    ("dynamic-int8", {"per_channel": False}),
    ("weight-int8", {"include": ["*.intermediate.dense", "*.output.dense"]}),
    ("half", {"dtype": "bf16"}),
    pytest.param("int8-weight-only", {}, marks=needs_torchao),
    pytest.param("float8-weight-only", {"granularity": "per_tensor"}, marks=needs_torchao),
]


def _round_trip_id(case: Any) -> str:
    name, params = case.values if hasattr(case, "values") else case
    return name + "".join(f"-{k}={v}" for k, v in params.items() if k == "per_channel")


@pytest.mark.parametrize(("name", "params"), ROUND_TRIPS, ids=[_round_trip_id(c) for c in ROUND_TRIPS])
def test_saved_weights_and_recipe_rebuild_an_identical_model(
        host: PluginHost, base: torch.nn.Module, name: str, params: dict[str, Any]) -> None:
    compressed, report = compress(host, name, copy.deepcopy(base), **params)
    fresh = type(base)(base.config)  # random weights: everything must come from the saved tensors
    restored = round_trip(host, name, params, compressed, report, fresh)
    assert torch.equal(logits(restored), logits(compressed))
    assert getattr(restored, STEPS_ATTRIBUTE)[0]["compressor"] == name


def test_per_channel_quantized_tensors_survive_plain_tensors() -> None:
    from hone_plugins.formats.compressed import fit_state, plain_tensors

    weight = torch.quantize_per_channel(torch.randn(3, 4), torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 1, 2]), 0, torch.qint8)
    flat = plain_tensors({"w": weight, "packed": (weight, torch.ones(3)), "dtype": torch.qint8})
    assert all(isinstance(v, torch.Tensor) and not v.is_quantized for v in flat.values())
    back = fit_state({"w": weight, "packed": (weight, torch.zeros(3)), "dtype": torch.qint8}, flat)
    assert torch.equal(back["w"].dequantize(), weight.dequantize()) and back["w"].q_per_channel_axis() == 0
    assert torch.equal(back["packed"][1], torch.ones(3)) and back["dtype"] == torch.qint8


def test_tensor_subclasses_are_saved_as_their_plain_inner_tensors_and_rebuilt_from_the_template() -> None:
    """A weight that is a tensor subclass (as torchao's are) saves as plain tensors and loads back into the
    restored model's subclass: the template gives the type and metadata, the file the values."""
    two_tensor = pytest.importorskip("torch.testing._internal.two_tensor")
    from hone_plugins.formats.compressed import fit_state, plain_tensors

    def model_with(a: torch.Tensor, b: torch.Tensor) -> torch.nn.Module:
        linear = torch.nn.Linear(3, 2)
        linear.weight = torch.nn.Parameter(two_tensor.TwoTensor(a, b), requires_grad=False)
        return linear

    saved = model_with(torch.randn(2, 3), torch.randn(2, 3))
    flat = plain_tensors(saved.state_dict())
    assert set(flat) == {"weight", "weight@b", "bias"} and all(type(t) is torch.Tensor for t in flat.values())
    fresh = model_with(torch.zeros(2, 3), torch.zeros(2, 3))
    load_weights(fresh, flat, "test")
    assert type(fresh.weight) is type(saved.weight)
    assert torch.equal(fresh.weight.a, saved.weight.a) and torch.equal(fresh.weight.b, saved.weight.b)
    incomplete = fit_state(fresh.state_dict(), {"weight": flat["weight"], "bias": flat["bias"]})
    assert "weight" not in incomplete  # a part missing: the key is reported missing, not half-loaded


def test_model_report_counts_float8_and_tensor_subclass_weights_by_their_stored_values() -> None:
    two_tensor = pytest.importorskip("torch.testing._internal.two_tensor")
    data = torch.tensor([[0.0, 1.0, 0.0, 2.0], [3.0, 0.0, 4.0, 5.0]])
    subclass = torch.nn.Linear(4, 2, bias=False)
    subclass.weight = torch.nn.Parameter(two_tensor.TwoTensor(data, torch.ones(2, 4)), requires_grad=False)
    fp8 = torch.nn.Module()
    fp8.register_buffer("weight", data.to(torch.float8_e4m3fn))  # count_nonzero has no float8 kernel
    for module in (subclass, fp8):
        report = model_report(module)
        assert (report["parameters"], report["nonzero"], report["layer_sparsity"]) == (8, 5, {"": 0.375})


def rows_zeros(weight: torch.Tensor) -> set[int]:
    """The distinct numbers of zeros in the rows of an (out, in) weight."""
    return set((weight == 0).sum(1).tolist())


def test_wanda_prunes_exactly_the_share_of_every_output_row(host: PluginHost, model: torch.nn.Module, base: torch.nn.Module) -> None:
    classifier = model.classifier.weight.detach().clone()
    pruned, report = compress(host, "wanda", model, calibration_context(model), sparsity=0.5, calibration_batches=2)
    weights = linear_weights(pruned)
    assert all(rows_zeros(w) == {w.shape[1] // 2} for w in weights.values())
    assert torch.equal(pruned.classifier.weight, classifier)
    assert report["pruned_layers"] == len(weights) == 12 and report["sparsity"] == 0.5 and report["n_m"] is None
    assert report["calibration_tokens"] == 2 * 4 * 10 and report["unused_layers"] == []
    assert "recipe" not in report  # zeros only: saved and reloaded like any model


def test_wanda_n_m_pattern_holds_in_every_group_of_m(host: PluginHost, model: torch.nn.Module) -> None:
    pruned, report = compress(host, "wanda", model, calibration_context(model), n_m=[2, 4])
    assert report["sparsity"] == 0.5 and report["n_m"] == [2, 4]
    for weight in linear_weights(pruned).values():
        nonzero_per_group = (weight != 0).reshape(weight.shape[0], -1, 4).sum(-1)
        assert bool((nonzero_per_group == 2).all())


def test_magnitude_n_m_keeps_the_largest_weights_of_every_group_of_m(host: PluginHost, model: torch.nn.Module) -> None:
    before = {name: w.detach().clone() for name, w in linear_weights(model).items()}
    pruned, report = compress(host, "magnitude", model, n_m=[2, 4])
    assert report["sparsity"] == 0.5 and report["n_m"] == [2, 4]
    for name, weight in linear_weights(pruned).items():
        groups, original = (weight != 0).reshape(weight.shape[0], -1, 4), before[name].abs().reshape(weight.shape[0], -1, 4)
        assert bool((groups.sum(-1) == 2).all())
        kept_smallest = original.masked_fill(~groups, float("inf")).min(-1).values
        dropped_largest = original.masked_fill(groups, -1.0).max(-1).values
        assert bool((kept_smallest >= dropped_largest).all())  # by magnitude, within each group


def test_magnitude_n_m_refuses_a_global_scope_and_widths_m_does_not_divide(host: PluginHost) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="scope must be 'layer'"):
        host.registries.get("compressor", "magnitude").build({"n_m": [2, 4], "scope": "global"})
    with pytest.raises(ValueError, match=r"n_m \[2, 4\]: in_features of 0 is not a multiple of 4"):
        compress(host, "magnitude", torch.nn.Sequential(torch.nn.Linear(6, 4)), n_m=[2, 4], exclude=[])


def test_gradual_magnitude_n_m_ends_on_the_pattern(host: PluginHost, model: torch.nn.Module) -> None:
    pruner = host.registries.get("compressor", "magnitude").build({"n_m": [2, 4]})
    schedule = pruner.gradual(model, total_steps=10, start=0, end=4, every=1)
    for step in range(6):
        schedule.after_step(model, step)
    for weight in linear_weights(model).values():
        assert bool(((weight != 0).reshape(weight.shape[0], -1, 4).sum(-1) == 2).all())
    assert schedule.report(model)["n_m"] == [2, 4]


def feature_model() -> tuple[torch.nn.Module, CompressionContext]:
    """One Linear whose input feature 0 is 100x louder than the others, and a context feeding it."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.1, 1.0, 0.9, 0.8]] * 3))
    x = torch.randn(32, 4)
    x = x / x.norm(dim=0) * torch.tensor([100.0, 1.0, 1.0, 1.0])  # input norms 100, 1, 1, 1
    context = CompressionContext(calibration_batches=lambda count, size: [{"x": x}], loss=lambda m, b: m(b["x"]).sum())
    return model, context


def test_wanda_keeps_small_weights_on_loud_inputs_where_magnitude_drops_them(host: PluginHost) -> None:
    model, context = feature_model()
    by_magnitude, _ = compress(host, "magnitude", copy.deepcopy(model), sparsity=0.25, exclude=[])
    by_wanda, _ = compress(host, "wanda", model, context, sparsity=0.25, exclude=[])
    assert bool((by_magnitude[0].weight[:, 0] == 0).all())
    assert bool((by_wanda[0].weight[:, 0] != 0).all()) and bool((by_wanda[0].weight[:, 3] == 0).all())


def test_wanda_refuses_before_work_without_data_or_with_widths_m_does_not_divide(host: PluginHost) -> None:
    model, context = feature_model()
    with pytest.raises(ValueError, match="wanda needs calibration batches from the run's training data"):
        compress(host, "wanda", copy.deepcopy(model), exclude=[])
    ragged = torch.nn.Sequential(torch.nn.Linear(6, 4))
    calls: list[int] = []
    context = CompressionContext(calibration_batches=lambda count, size: calls.append(1) or [], loss=lambda m, b: None)
    with pytest.raises(ValueError, match=r"n_m \[2, 4\]: in_features of 0 is not a multiple of 4"):
        compress(host, "wanda", ragged, context, n_m=[2, 4], exclude=[])
    assert not calls  # refused before calibrating
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="sets the sparsity to 0.5; leave `sparsity` out"):
        host.registries.get("compressor", "wanda").build({"n_m": [2, 4], "sparsity": 0.7})
    with pytest.raises(ValidationError, match="needs 1 <= N < M"):
        host.registries.get("compressor", "wanda").build({"n_m": [4, 4]})


def forward_steps(model: torch.nn.Module, hook: Any, steps: range) -> list[float]:
    """Training-like steps: a forward pass (the hooks see it), weights moved, then the hook; the sparsity after each."""
    seen = []
    for step in steps:
        with torch.no_grad():
            model(input_ids=INPUTS, attention_mask=torch.ones_like(INPUTS))
            for weight in linear_weights(model).values():
                weight.add_(0.001)  # an optimizer step moves pruned weights too
        hook.after_step(model, step)
        weights = linear_weights(model)
        seen.append(sum(int((w == 0).sum()) for w in weights.values()) / sum(w.numel() for w in weights.values()))
    return seen


@pytest.mark.parametrize("params", [{"sparsity": 0.75}, {"n_m": [2, 4]}], ids=["share", "n_m"])
def test_gradual_wanda_ends_at_the_target_with_exact_rows(host: PluginHost, model: torch.nn.Module, params: dict[str, Any]) -> None:
    pruner = host.registries.get("compressor", "wanda").build(params)
    hook = pruner.gradual(model, 20, 2, 12, 2)
    seen = forward_steps(model, hook, range(1, 21))
    target = 0.75 if "sparsity" in params else 0.5
    assert seen[0] == 0.0 and seen == sorted(seen) and any(0 < s < target for s in seen)
    assert seen[11] == pytest.approx(target) and seen[-1] == pytest.approx(target)
    for weight in linear_weights(model).values():
        if "n_m" in params:
            assert bool(((weight != 0).reshape(weight.shape[0], -1, 4).sum(-1) == 2).all())
        else:
            assert rows_zeros(weight) == {round(0.75 * weight.shape[1])}
    assert hook.norms is None and not model._forward_pre_hooks  # the hooks are gone once the schedule is done
    assert hook.report(model)["target_sparsity"] == target


def test_gradual_wanda_from_step_zero_to_zero_only_keeps_the_zeros(host: PluginHost, model: torch.nn.Module) -> None:
    pruned, _ = compress(host, "wanda", model, calibration_context(model), sparsity=0.5)
    hook = host.registries.get("compressor", "wanda").build({"sparsity": 0.5}).gradual(pruned, 10, 0, 0, 1)
    assert hook.norms is None  # nothing to measure: no forward hooks during the fine-tune
    assert forward_steps(pruned, hook, range(1, 4)) == [pytest.approx(0.5)] * 3


def test_wanda_input_norms_leave_padding_out(model: torch.nn.Module) -> None:
    from hone_plugins.compressors.pruning.wanda import InputNorms

    name = "bert.encoder.layer.0.intermediate.dense"
    layer = model.get_submodule(name)
    mask = torch.ones_like(INPUTS)
    mask[:, 8:] = 0
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].detach()))
    norms = InputNorms(model, {name: layer})
    with torch.no_grad():
        model(input_ids=INPUTS, attention_mask=mask)
    norms.remove()
    handle.remove()
    assert norms.tokens[name] == 4 * 8 and not layer._forward_hooks and not model._forward_pre_hooks
    assert torch.allclose(norms.norms(name), seen[0][:, :8].reshape(-1, 32).norm(dim=0))


NEW_COMPRESSORS = {"wanda", "int8-weight-only", "float8-weight-only", "int4-weight-only"}


def test_hone_plugins_lists_the_compressors_and_every_parameter_is_described(
        host: PluginHost, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from hone.cli import main

    assert main(["plugins", "--json"]) == 0
    plugin = next(p for p in json.loads(capsys.readouterr().out) if p["name"] == "hone.compressors")
    assert plugin["status"] == "ok" and NEW_COMPRESSORS | {"magnitude", "structured"} <= set(plugin["components"]["compressor"])
    builtin = [c for c in host.registries["compressor"] if c.origin.module == "hone_plugins.compressors"]
    assert {c.name for c in builtin} >= NEW_COMPRESSORS
    for component in builtin:
        assert component.doc, component.name
        for field, info in component.params.model_fields.items():
            assert info.description, f"{component.name}.{field} has no description"
