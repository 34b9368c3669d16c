"""The ``lm-eval`` stage's runner: wrap the run's model in lm-eval's HFLM and evaluate the spec's tasks."""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from hone.atomic import write_text
from hone.errors import HoneError
from hone.run.context import RunContext
from hone.run.devices import autocast
from hone_plugins.lmeval.spec import INSTALL, LMEvalStage, installed

CAUSAL_SUFFIXES, SEQ2SEQ_SUFFIXES = ("ForCausalLM", "LMHeadModel"), ("ForConditionalGeneration",)
SAMPLES_DIR = "lm-eval"


def backend_of(model: Any, wanted: str = "auto") -> str:
    """``causal`` or ``seq2seq``: how lm-eval's HFLM can score ``model``; a HoneError naming what it is otherwise."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES)

    def names(mapping: Mapping[str, Any]) -> set[str]:
        return {n for value in mapping.values() for n in (value if isinstance(value, (list, tuple)) else [value])}

    config = getattr(model, "config", None)
    classes = [cls.__name__ for cls in type(model).__mro__]
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    if wanted != "auto":
        found = wanted
    elif encoder_decoder and (set(classes) & names(MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES)
                              or classes[0].endswith(SEQ2SEQ_SUFFIXES)):
        found = "seq2seq"
    elif not encoder_decoder and (set(classes) & names(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
                                  or classes[0].endswith(CAUSAL_SUFFIXES)):
        found = "causal"
    else:
        raise HoneError(
            f"lm-eval scores language models; the run's model is a {classes[0]}, which has no language-model head "
            "(an encoder with a task head, such as token or sequence classification, cannot give lm-eval's "
            "log-likelihoods or generations). Run lm-eval tasks on a causal LM (task: causal-lm) or an encoder-decoder "
            "(a seq2seq task; lm-eval's seq2seq backend); set `backend:` only for a model class hone does not know")
    if found == "causal" and getattr(config, "is_decoder", None) is False and not encoder_decoder:
        raise HoneError(
            f"the run's {classes[0]} attends in both directions (its config has is_decoder: false), so it sees the "
            "tokens lm-eval scores: load the encoder checkpoint as a decoder (is_decoder=True) for causal-lm")
    return found


class LMEval:
    def __init__(self, spec: LMEvalStage) -> None:
        self.spec = spec

    def check(self, ctx: RunContext, index: int) -> None:
        """Before any stage runs: lm-eval installed, a model and tokenizer lm-eval can score."""
        name = ctx.stage_names[index]
        if not installed():
            raise HoneError(f"stage '{name}': the lm-eval stage needs lm-evaluation-harness: {INSTALL}")
        try:
            scoring_tokenizer(ctx.tokenizer, backend_of(ctx.core, self.spec.backend))
        except HoneError as error:
            raise HoneError(f"stage '{name}' ({self.spec.type}): {error}") from None

    def run(self, ctx: RunContext, index: int, resume: dict[str, Any] | None = None) -> dict[str, Any]:
        from hone_plugins.lmeval import tasks as found

        self.check(ctx, index)
        name = ctx.stage_names[index]
        folder = found.folder(Path(self.spec.include_path))
        problems = [p for task in self.spec.tasks if (p := found.name_problem(task, folder))]
        if problems:  # the spec was validated without its folder (or the folder changed since)
            raise HoneError(f"stage '{name}': " + "; ".join(problems))
        task_names = found.expand(self.spec.tasks, folder)
        ctx.events.emit("stage_start", stage=name, type=self.spec.type, tasks=task_names)
        output = self._evaluate(ctx, index, found.task_configs(self.spec.tasks, folder))
        results = task_results(output)
        for task, values in results.items():
            ctx.events.emit("evaluation_done", stage=name, split=task, lm_eval_task=task,
                            metrics={k: v for k, v in values.items() if isinstance(v, float)})
        if self.spec.log_samples and ctx.run_dir is not None and ctx.rank == 0:
            write_samples(ctx.run_dir / SAMPLES_DIR / name, output.get("samples") or {})
        return {**results, found.SETTINGS_KEY: self._settings(output)}

    def _evaluate(self, ctx: RunContext, index: int, configs: list[dict[str, Any]]) -> dict[str, Any]:
        from lm_eval.evaluator import evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager

        from hone.run.checkpoint import rng_state, set_rng_state

        model = ctx.core
        was_training, state = model.training, rng_state()
        try:
            with quiet_lm_eval(), offline_datasets(), datasets_cache(ctx.run_dir) as cache:
                configs = [with_cache_dir(cfg, cache) for cfg in configs]
                loaded = TaskManager(include_path=self.spec.include_path, include_defaults=False).load(configs)
                for task in loaded["tasks"].values():
                    self._fewshot(task, ctx.seed)
                backend = backend_of(model, self.spec.backend)
                tokenizer, options = scoring_tokenizer(ctx.tokenizer, backend)
                lm = scorer(HFLM)(pretrained=model, tokenizer=tokenizer, backend=backend, batch_size=self.spec.batch_size,
                                  max_length=self.spec.max_length, **options)
                torch.manual_seed(ctx.seed * 1000 + index)  # sampled generations (a task's do_sample) repeat run to run
                # the run's training precision, not its eval_precision: `auto`'s bf16 evaluation on CPUs is measured for
                # classification F1, while log-likelihood comparisons between choices shift under bf16
                with torch.inference_mode(), autocast(ctx.device, ctx.precision):
                    output = evaluate(lm=lm, task_dict=loaded, limit=self.spec.limit,
                                      bootstrap_iters=self.spec.bootstrap_iters, log_samples=self.spec.log_samples)
        finally:  # the stage keeps the model as it found it, and the RNG the next stages draw from
            model.train(was_training)
            set_rng_state(state)
        if not output:
            raise HoneError("lm-eval returned no results")
        return output

    def _fewshot(self, task: Any, seed: int) -> None:
        """``num_fewshot`` as lm-eval's simple_evaluate sets it: a task fixing 0 keeps it; none set means 0."""
        if self.spec.num_fewshot is not None and task.get_config("num_fewshot") != 0:
            task.set_config(key="num_fewshot", value=self.spec.num_fewshot)
        elif task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=seed)

    def _settings(self, output: Mapping[str, Any]) -> dict[str, Any]:
        import lm_eval

        configs = output.get("configs") or {}
        return {"version": getattr(lm_eval, "__version__", None), "include_path": self.spec.include_path,
                "limit": self.spec.limit, "bootstrap_iters": self.spec.bootstrap_iters,
                "num_fewshot": {task: cfg.get("num_fewshot") for task, cfg in configs.items()},
                "task_versions": dict(output.get("versions") or {})}


@functools.cache
def scorer(hflm: type) -> type:
    """lm-eval's HFLM whose rolling log-likelihoods score a text's own tokens only: the start token a tokenizer adds
    ([CLS], BOS) opens the first window as its prefix instead of being one more token to predict."""

    class Scorer(hflm):  # type: ignore[misc, valid-type]
        _rolling = False

        def loglikelihood_rolling(self, requests: Any, disable_tqdm: bool = False) -> Any:
            self._rolling = True
            try:
                return super().loglikelihood_rolling(requests, disable_tqdm)
            finally:
                self._rolling = False

        def tok_encode(self, string: str, add_special_tokens: bool | None = None, left_truncate_len: int | None = None,
                       **kwargs: Any) -> list[int]:
            if self._rolling and add_special_tokens is None and self.backend == "causal":
                add_special_tokens = False
            return super().tok_encode(string, add_special_tokens, left_truncate_len, **kwargs)

    return Scorer


def scoring_tokenizer(tokenizer: Any, backend: str) -> tuple[Any, dict[str, Any]]:
    """A copy of the run's tokenizer for lm-eval (which may set its pad token) and HFLM's options for it.

    The copy has an end-of-sequence token (generate-until stops on it). For a causal LM it encodes a text without the
    closing token a BERT-style tokenizer appends: lm-eval scores a continuation as the tokens of context + continuation
    after those of the context, which would otherwise be that closing token for every choice. Leading special tokens
    ([CLS], BOS) stay, as the model saw them in training; the first starts an empty context.
    """
    scoring = copy.deepcopy(tokenizer)
    if scoring.eos_token is None:
        if getattr(scoring, "sep_token", None) is None:
            raise HoneError(f"the run's tokenizer ({type(tokenizer).__name__}) has no end-of-sequence token, which "
                            "lm-eval needs; give the model's tokenizer an eos_token")
        scoring.eos_token = scoring.sep_token  # BERT-style vocabularies end a text with [SEP]
    if backend != "causal":
        return scoring, {}
    plain = scoring("a", add_special_tokens=False)["input_ids"]
    full = scoring("a")["input_ids"]
    start = next((i for i in range(len(full) - len(plain) + 1) if full[i:i + len(plain)] == plain), None)
    prefix = full[:start] if start else []
    options: dict[str, Any] = {"prefix_token_id": prefix[0]} if prefix and scoring.bos_token_id is None else {}
    if start is None or start + len(plain) == len(full):
        return scoring, options  # nothing appended (GPT-2, Llama)
    backend_tokenizer = getattr(scoring, "backend_tokenizer", None)
    if backend_tokenizer is None:  # no post-processor to change: encode without special tokens at all
        return scoring, {**options, "add_bos_token": False}
    from tokenizers.processors import TemplateProcessing

    names = [scoring.convert_ids_to_tokens(i) for i in prefix]
    template = " ".join([*names, "$A"])
    backend_tokenizer.post_processor = TemplateProcessing(
        single=template, pair=f"{template} $B:1", special_tokens=list(dict(zip(names, prefix)).items()))
    return scoring, options


def task_results(output: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """lm-eval's ``{task: {"acc,none": ..., "acc_stderr,none": ...}}`` as ``{task: {"acc": ..., "acc_stderr": ...,
    "samples": n, "directions": {"acc": "max"}}}``; a metric under several filters is ``<metric>_<filter>``."""
    out: dict[str, dict[str, Any]] = {}
    better = output.get("higher_is_better") or {}
    counts = output.get("n-samples") or {}
    for task, values in (output.get("results") or {}).items():
        keyed = {key.split(",", 1)[0]: key.split(",", 1)[1] for key in values if "," in key}
        filters = set(keyed.values())
        row: dict[str, Any] = {}
        directions: dict[str, str] = {}
        for key, value in values.items():
            if "," not in key:
                continue
            metric, filter_name = key.split(",", 1)
            name = metric if len(filters) == 1 else f"{metric}_{_clean(filter_name)}"
            row[name] = _number(value)
            base = metric.removesuffix("_stderr")
            if base == metric and base in (better.get(task) or {}):
                directions[name] = "max" if better[task][base] else "min"
        if isinstance((counts.get(task) or {}).get("effective"), int):
            row["samples"] = counts[task]["effective"]
        row["directions"] = directions
        out[task] = row
    return out


def _clean(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _number(value: Any) -> float | None:
    """A finite float, or ``None`` (lm-eval writes "N/A" for a stderr it cannot compute; NaN is not JSON)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def write_samples(folder: Path, samples: Mapping[str, list[dict[str, Any]]]) -> None:
    """One JSONL file per task: each example's document, prompt, responses, filtered answer and scores."""
    for task, rows in samples.items():
        lines = (json.dumps(_plain(row), ensure_ascii=False, default=str) for row in rows)
        write_text(folder / f"{_clean(task)}.jsonl", "".join(line + "\n" for line in lines))


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics")
    out = {key: row[key] for key in keep if key in row}
    out["scores"] = {m: row[m] for m in row.get("metrics") or [] if m in row}
    return out


@contextmanager
def datasets_cache(run_dir: Path | None) -> Iterator[str | None]:
    """A folder in the run directory for the Arrow files `datasets` makes of the task data, removed after the stage:
    a run writes nothing outside its directory (not ~/.cache/huggingface), and keeps no copy of the data."""
    if run_dir is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix=".lm-eval-datasets-", dir=run_dir) as folder:
        yield folder


def with_cache_dir(cfg: dict[str, Any], cache: str | None) -> dict[str, Any]:
    """``cfg`` loading its data with ``cache_dir=cache``; a task whose own code builds its data is left alone (its
    function gets ``dataset_kwargs`` as keyword arguments)."""
    if cache is None or "class" in cfg or cfg.get("custom_dataset") is not None:
        return cfg
    return {**cfg, "dataset_kwargs": {**(cfg.get("dataset_kwargs") or {}), "cache_dir": cache}}


@contextmanager
def quiet_lm_eval() -> Iterator[None]:
    """lm-eval's info messages and warnings (e.g. about a model passed in memory) hidden; its errors kept."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def offline_datasets() -> Iterator[None]:
    """`datasets` never reaches for the Hub while lm-eval loads the (checked local) task data, and shows no
    progress bar for reading a small local file."""
    import datasets.config
    from datasets.utils.tqdm import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    previous, hidden = datasets.config.HF_HUB_OFFLINE, are_progress_bars_disabled()
    datasets.config.HF_HUB_OFFLINE = True
    disable_progress_bars()
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = previous
        if not hidden:
            enable_progress_bars()
