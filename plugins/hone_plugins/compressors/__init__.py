"""Built-in compressors: magnitude, Wanda and structured pruning; dynamic int8 (torch.ao), weight-only int8,
float8 and int4 (torchao), a hand-written weight-only int8, half precision,
ONNX Runtime int8.

Only params models and factories live here (``hone plugins`` imports this module); the
implementations, which import torch, are in the submodules (``pruning.magnitude``, ``pruning.structured``, ``quantization``, ``onnx_int8``...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hone.hookspecs import hookimpl
from hone.registry import Register
from hone_plugins.extras import ONNX_INSTALL, ONNX_MODULES, require

if TYPE_CHECKING:
    from hone_plugins.compressors.onnx_int8 import OnnxInt8
    from hone_plugins.compressors.pruning.magnitude import MagnitudePruning
    from hone_plugins.compressors.pruning.structured import StructuredPruning
    from hone_plugins.compressors.pruning.wanda import WandaPruning
    from hone_plugins.compressors.quantization import DynamicInt8, Half, WeightInt8
    from hone_plugins.compressors.weight_only import WeightOnly

HEADS = ["*classifier*", "*lm_head*", "*qa_outputs*", "*score*"]


class LayerSelection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include: list[str] = Field(default_factory=lambda: ["*"], description="Linear module names to compress (fnmatch patterns).")
    exclude: list[str] = Field(default_factory=list, description="Linear module names to leave alone (fnmatch patterns).")


class DynamicInt8Params(LayerSelection):
    per_channel: bool = Field(True, description="One int8 scale per output row of each weight (measured on CoNLL-2003: "
                              "-0.9 F1 points vs -1.5 with one scale per tensor, at the same speed); false: per tensor.")


class NMPattern(LayerSelection):
    """An N:M sparsity pattern as an alternative to a share of weights."""

    sparsity: float
    n_m: tuple[int, int] | None = Field(None, description="N:M sparsity instead of a share: at most N non-zero weights in "
                                        "every M consecutive inputs of a row, e.g. [2, 4] (2:4 runs faster on NVIDIA GPUs "
                                        "with torch's semi-structured kernels; on a CPU it only zeroes weights).")

    @model_validator(mode="after")
    def _pattern(self) -> NMPattern:
        if self.n_m is not None:
            n, m = self.n_m
            if not 1 <= n < m:
                raise ValueError(f"n_m [N, M] needs 1 <= N < M (e.g. [2, 4]); got {list(self.n_m)}")
            if "sparsity" in self.model_fields_set and abs(self.sparsity - (1 - n / m)) > 1e-6:
                raise ValueError(f"n_m {list(self.n_m)} sets the sparsity to {1 - n / m:g}; leave `sparsity` out")
        return self


class MagnitudeParams(NMPattern):
    sparsity: float = Field(0.5, ge=0, lt=1, description="Share of the selected weights set to zero. With n_m: 1 - N/M, "
                            "which need not be given.")
    scope: Literal["layer", "global"] = Field("layer", description="Rank weights within each layer, or over all selected "
                                              "layers (not with n_m).")
    exclude: list[str] = Field(default_factory=lambda: list(HEADS), description="Linear module names to leave alone "
                               "(fnmatch patterns); default: the task heads.")

    @model_validator(mode="after")
    def _row_scope(self) -> MagnitudeParams:
        if self.n_m is not None and self.scope != "layer":
            raise ValueError("n_m prunes within each row's groups of M: scope must be 'layer'")
        return self


class WandaParams(NMPattern):
    sparsity: float = Field(0.5, ge=0, lt=1, description="Share of each output row's weights set to zero (every row "
                            "loses exactly this share). With n_m: 1 - N/M, which need not be given.")
    exclude: list[str] = Field(default_factory=lambda: list(HEADS), description="Layer names to leave alone "
                               "(fnmatch patterns); default: the task heads.")
    calibration_batches: int = Field(8, ge=1, description="Training batches whose inputs measure each input feature's "
                                     "norm (one-shot; in a train stage's pruning the training batches do).")
    batch_size: int = Field(16, ge=1, description="Examples per calibration batch.")


class StructuredParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    heads_fraction: float = Field(0.25, ge=0, lt=1, description="Share of attention (query) heads to remove.")
    ffn_fraction: float = Field(0.25, ge=0, lt=1, description="Share of feed-forward (intermediate) neurons to remove.")
    importance: Literal["auto", "gradient", "magnitude"] = Field(
        "auto", description="gradient: |dLoss/dgate| on calibration batches (Michel et al.); magnitude: weight norms; "
        "auto: gradient when the run has training data.")
    scope: Literal["layer", "global"] = Field("layer", description="Remove the same share in every layer, or rank over all layers.")
    gqa: Literal["groups", "queries"] = Field(
        "groups", description="Decoders with grouped-query attention (fewer key/value heads than query heads): remove "
        "whole key/value groups with their query heads (groups: the KV cache shrinks too), or the same number of query "
        "heads from every group (queries: key/value heads stay). The same for multi-head attention.")
    calibration_batches: int = Field(16, ge=1, description="Training batches used to score importance (gradient).")
    batch_size: int = Field(16, ge=1, description="Examples per calibration batch.")

    @model_validator(mode="after")
    def _something(self) -> StructuredParams:
        if not self.heads_fraction and not self.ffn_fraction:
            raise ValueError("set `heads_fraction` and/or `ffn_fraction` above 0")
        return self


class WeightOnlyParams(LayerSelection):
    exclude: list[str] = Field(default_factory=lambda: list(HEADS), description="Linear module names to leave alone "
                               "(fnmatch patterns); default: the task heads (an LM head is often tied to the embeddings).")
    granularity: Literal["per_row", "per_tensor"] = Field(
        "per_row", description="One scale per output row of each weight (per_row), or one per weight (per_tensor).")


class Int4WeightOnlyParams(LayerSelection):
    exclude: list[str] = Field(default_factory=lambda: list(HEADS), description="Linear module names to leave alone "
                               "(fnmatch patterns); default: the task heads (an LM head is often tied to the embeddings).")
    group_size: Literal[32, 64, 128, 256] = Field(
        128, description="Input features sharing one scale and zero point; smaller: more accurate, a little larger. "
        "Layers whose in_features it does not divide stay unquantized.")


class HalfParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dtype: Literal["bf16", "fp16"] = Field("bf16", description="bf16 keeps fp32's range; fp16 is faster on older GPUs.")


class OnnxInt8Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_channel: bool = Field(True, description="One int8 scale per output channel of each weight; false: one per tensor.")
    reduce_range: bool | Literal["auto"] = Field("auto", description=(
        "7-bit weights. auto: on for x86 CPUs without VNNI, whose u8s8 int8 kernels can saturate (9x the error on a "
        "tiny BERT on an AVX2 EPYC), off elsewhere; the report says which was used."))
    embeddings: bool = Field(True, description="Also quantize the embedding tables (Gather), most of a small encoder's size.")
    opset: int = Field(20, ge=18, description="ONNX opset of the export.")
    atol: float = Field(1e-4, ge=0, description="Largest difference allowed between the float ONNX graph's logits and "
                        "torch's before quantizing (an export check; the int8 difference is reported, not limited).")


def magnitude(params: MagnitudeParams) -> MagnitudePruning:
    """Unstructured L1 pruning of Linear weights to a target sparsity (one-shot, or gradual in a train stage)."""
    from hone_plugins.compressors.pruning.magnitude import MagnitudePruning

    return MagnitudePruning(params.sparsity, params.scope, params.include, params.exclude, params.n_m)


def wanda(params: WandaParams) -> WandaPruning:
    """Wanda pruning: |weight| x input-feature norm from calibration data, per output row, to a share or N:M."""
    from hone_plugins.compressors.pruning.wanda import WandaPruning

    return WandaPruning(params.sparsity, params.n_m, params.include, params.exclude, params.calibration_batches,
                        params.batch_size)


def structured(params: StructuredParams) -> StructuredPruning:
    """Remove the least important attention heads and FFN neurons: smaller, faster BERT, GPT-2 and Llama-style models."""
    from hone_plugins.compressors.pruning.structured import StructuredPruning

    return StructuredPruning(params.heads_fraction, params.ffn_fraction, params.importance, params.scope,
                             params.calibration_batches, params.batch_size, params.gqa)


def dynamic_int8(params: DynamicInt8Params) -> DynamicInt8:
    """int8 Linear layers with activations quantized per batch (torch.ao dynamic quantization; CPU)."""
    from hone_plugins.compressors.quantization import DynamicInt8

    return DynamicInt8(params.include, params.exclude, params.per_channel)


def weight_int8(params: LayerSelection) -> WeightInt8:
    """Weight-only int8 Linear layers (per-row scales): 4x smaller weights, float compute."""
    from hone_plugins.compressors.quantization import WeightInt8

    return WeightInt8(params.include, params.exclude)


def int8_weight_only(params: WeightOnlyParams) -> WeightOnly:
    """torchao weight-only int8 Linear layers (Int8WeightOnlyConfig): a quarter of fp32's size, CPU or GPU."""
    from hone_plugins.compressors.weight_only import WeightOnly

    return WeightOnly("int8", params.include, params.exclude, params.granularity)


def float8_weight_only(params: WeightOnlyParams) -> WeightOnly:
    """torchao weight-only float8 (e4m3) Linear layers (Float8WeightOnlyConfig); matmuls stay in the model's dtype."""
    from hone_plugins.compressors.weight_only import WeightOnly

    return WeightOnly("float8", params.include, params.exclude, params.granularity)


def int4_weight_only(params: Int4WeightOnlyParams) -> WeightOnly:
    """torchao weight-only int4 Linear layers, grouped scales, bf16 compute; needs a CUDA GPU of compute capability 8.0+."""
    from hone_plugins.compressors.weight_only import WeightOnly

    return WeightOnly("int4", params.include, params.exclude, group_size=params.group_size)


def half(params: HalfParams) -> Half:
    """Cast the model to bf16 or fp16."""
    from hone_plugins.compressors.quantization import Half

    return Half(params.dtype)


# suffixed: importing the submodule onnx_int8 would overwrite a package attribute of that name
def onnx_int8_compressor(params: OnnxInt8Params) -> OnnxInt8:
    """Export to ONNX and quantize with ONNX Runtime (int8 weights, dynamic activations); runs on ONNX Runtime (CPU)."""
    require("the onnx-int8 compressor")
    from hone_plugins.compressors.onnx_int8 import OnnxInt8

    return OnnxInt8(params.per_channel, params.reduce_range, params.embeddings, params.opset, params.atol)


@hookimpl
def register_compressors(register: Register) -> None:
    register("magnitude", magnitude, MagnitudeParams)
    register("wanda", wanda, WandaParams)
    register("structured", structured, StructuredParams)
    register("dynamic-int8", dynamic_int8, DynamicInt8Params)
    register("weight-int8", weight_int8, LayerSelection)
    register("half", half, HalfParams)
    register("int8-weight-only", int8_weight_only, WeightOnlyParams)
    register("float8-weight-only", float8_weight_only, WeightOnlyParams)
    register("int4-weight-only", int4_weight_only, Int4WeightOnlyParams)
    register("onnx-int8", onnx_int8_compressor, OnnxInt8Params, requires=dict.fromkeys(ONNX_MODULES, ONNX_INSTALL))
