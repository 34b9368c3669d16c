"""The onnx-int8 compressor on a tiny BERT: a smaller file, outputs close to torch's, and the save /
reload round trip (ONNX bytes in safetensors + recipe, no pickle) giving identical outputs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

for _module in ("onnx", "onnxscript", "onnxruntime"):
    pytest.importorskip(_module)

import torch

from hone.components import CompressionContext
from hone_plugins.compressors.onnx_int8 import saturating_int8_kernels
from hone_plugins.formats.compressed import COMPRESSION_JSON, STEPS_ATTRIBUTE, load_compressed_model, save_model_weights
from hone_plugins.stages.sizes import model_report
from hone.plugins import PluginHost, load_plugins
from hone_plugins.runtimes.onnxruntime import OnnxRuntimeModel

LABELS = 5


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins(warn=False)


@pytest.fixture(scope="module")
def base(tiny_bert: Path) -> tuple[torch.nn.Module, Any]:
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=LABELS).eval()
    return model, AutoTokenizer.from_pretrained(tiny_bert)


@pytest.fixture(scope="module")
def compressed(host: PluginHost, base: tuple[torch.nn.Module, Any]) -> tuple[torch.nn.Module, dict[str, Any]]:
    model, tokenizer = base
    compressor = host.registries.get("compressor", "onnx-int8").build({})
    return compressor.compress(copy.deepcopy(model), CompressionContext(tokenizer=tokenizer))


INPUTS = torch.randint(5, 60, (4, 12), generator=torch.Generator().manual_seed(1))


def logits(model: torch.nn.Module, inputs: torch.Tensor = INPUTS) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits.float()


def test_onnx_int8_is_smaller_and_close_to_torch(base: tuple[torch.nn.Module, Any],
                                                 compressed: tuple[torch.nn.Module, dict[str, Any]]) -> None:
    model, _ = base
    quantized, report = compressed
    assert isinstance(quantized, OnnxRuntimeModel) and type(quantized).__name__ == "BertForTokenClassification"
    assert report["onnx_int8_bytes"] < 0.6 * report["onnx_fp32_bytes"]
    assert model_report(quantized, layers=False)["size_bytes"] < 0.75 * model_report(model, layers=False)["size_bytes"]
    assert report["max_abs_diff_fp32"] <= 1e-4 < report["max_abs_diff_int8"] < 0.05
    assert report["reduce_range"] is saturating_int8_kernels()  # `auto`, decided for this CPU and recorded
    assert report["quantized_ops"]["MatMulInteger"] == 13  # 2 layers x 6 Linear + the classifier
    assert report["quantized_ops"]["DequantizeLinear"] == 3  # word, position and segment embeddings
    assert report["recipe"] == {"onnx_bytes": report["onnx_int8_bytes"], "cpu_only": True}
    assert (logits(quantized) - logits(model)).abs().max() < 0.05
    assert not any(p.requires_grad for p in quantized.parameters())


def test_reduce_range_auto_is_on_for_x86_cpus_without_vnni_only() -> None:
    assert saturating_int8_kernels("x86_64", {"avx2", "fma"})  # VPMADDUBSW: 16-bit sums that saturate
    assert not saturating_int8_kernels("x86_64", {"avx2", "avx512_vnni"})
    assert not saturating_int8_kernels("AMD64", {"avx2", "avx_vnni"})
    assert not saturating_int8_kernels("aarch64", {"asimd"})


def test_an_explicit_reduce_range_is_kept(host: PluginHost) -> None:
    build = host.registries.get("compressor", "onnx-int8").build
    assert build({"reduce_range": False}).reduce_range is False and build({"reduce_range": True}).reduce_range is True


def test_the_saved_model_reloads_with_identical_outputs(host: PluginHost, base: tuple[torch.nn.Module, Any],
                                                        compressed: tuple[torch.nn.Module, dict[str, Any]],
                                                        tmp_path: Path) -> None:
    quantized, report = compressed
    setattr(quantized, STEPS_ATTRIBUTE, [{"stage": "compress", "compressor": "onnx-int8", "params": {},
                                          "recipe": report["recipe"]}])
    save_model_weights(quantized, tmp_path)  # what a run saves: config, plain tensors, compression.json
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["BertForTokenClassification"]
    assert json.loads((tmp_path / COMPRESSION_JSON).read_text())["steps"][0]["recipe"]["cpu_only"] is True
    reloaded = load_compressed_model(tmp_path, host)
    assert isinstance(reloaded, OnnxRuntimeModel) and reloaded.onnx_bytes.numel() == report["onnx_int8_bytes"]
    assert torch.equal(logits(reloaded), logits(quantized))
    other = torch.randint(5, 60, (1, 30), generator=torch.Generator().manual_seed(2))
    assert torch.equal(logits(reloaded, other), logits(copy.deepcopy(quantized), other))


def test_without_embeddings_only_the_matmuls_are_quantized(host: PluginHost, base: tuple[torch.nn.Module, Any],
                                                           compressed: tuple[torch.nn.Module, dict[str, Any]]) -> None:
    model, _ = base  # and without a tokenizer: random ids sample the graph
    quantized, report = host.registries.get("compressor", "onnx-int8").build(
        {"embeddings": False, "per_channel": False}).compress(copy.deepcopy(model), CompressionContext())
    assert "DequantizeLinear" not in report["quantized_ops"] and report["quantized_ops"]["MatMulInteger"] == 13
    assert report["onnx_int8_bytes"] > compressed[1]["onnx_int8_bytes"]
    assert (logits(quantized) - logits(model)).abs().max() < 0.05


def test_plugins_json_lists_onnx_int8(capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert "onnx-int8" in rows["hone.compressors"]["components"]["compressor"] and rows["hone.compressors"]["status"] == "ok"
