"""What the lm-eval stage refuses before any work: as the spec loads (`hone validate` too), or before stage one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hone.spec.loading import SpecError, load_spec
from hone_plugins.lmeval import installed

from .conftest import TASKS, lmeval_spec, write_spec

REPO = Path(__file__).resolve().parents[3]

needs_lm_eval = pytest.mark.skipif(not installed(), reason="the lm-eval extra is not installed (pip install 'hone-ml[lm-eval]')")


def problems(spec_file: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(spec_file)
    return str(caught.value)


def test_the_plugin_module_imports_neither_lm_eval_nor_torch() -> None:
    code = "import sys, hone_plugins.lmeval; assert not {'lm_eval', 'torch', 'transformers'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_the_extra_the_spec_names_the_install_command(tmp_path: Path, tiny_gpt2: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import hone_plugins.lmeval.spec

    monkeypatch.setattr(hone_plugins.lmeval.spec, "installed", lambda: False)  # where lm-eval is absent this is how it is
    text = problems(write_spec(tmp_path, lmeval_spec(tiny_gpt2, str(TASKS), ["tiny_mc"])))
    assert "spec.yaml:9: stages[0]:" in text and "pip install 'hone-ml[lm-eval]'" in text


def test_a_missing_task_folder_is_refused_relative_to_the_spec(tmp_path: Path, tiny_gpt2: Path) -> None:
    text = problems(write_spec(tmp_path, lmeval_spec(tiny_gpt2, "no-such-folder", ["tiny_mc"])))
    assert f"spec.yaml:11: stages[0].include_path: no folder {tmp_path / 'no-such-folder'}" in text


@needs_lm_eval
def test_every_bad_task_name_is_reported_at_its_line_with_the_fix(tmp_path: Path, tiny_gpt2: Path) -> None:
    names = ["tiny_mc", "tiny_mcq", "tiny_hub", "tiny_missing", "tiny_group", "nope_*"]
    text = problems(write_spec(tmp_path, lmeval_spec(tiny_gpt2, str(TASKS), names)))
    assert "5 problems" in text and "stages[0].tasks[0]" not in text
    assert "spec.yaml:14: stages[0].tasks[1]: no lm-eval task 'tiny_mcq'" in text and "Did you mean 'tiny_mc'?" in text
    assert "stages[0].tasks[2]: task 'tiny_hub'" in text and "reads the Hub dataset 'allenai/ai2_arc'" in text
    assert "`dataset_path: json`" in text
    assert f"stages[0].tasks[3]: task 'tiny_missing' ({TASKS / 'tiny_missing.yaml'}): data file not found: " \
        f"{TASKS / 'data' / 'not_there.jsonl'}" in text
    assert "stages[0].tasks[4]: 'tiny_group' is an lm-eval group" in text and "(tiny_mc, tiny_gen)" in text
    assert "stages[0].tasks[5]: the pattern 'nope_*' matches no task" in text


@needs_lm_eval
def test_one_of_lm_evals_own_tasks_is_refused_as_a_hub_dataset(tmp_path: Path, tiny_gpt2: Path) -> None:
    text = problems(write_spec(tmp_path, lmeval_spec(tiny_gpt2, str(TASKS), ["hellaswag"])))
    assert "'hellaswag' is one of lm-eval's own tasks" in text and "the Hub dataset 'Rowan/hellaswag'" in text
    assert f"copy its YAML into {TASKS}" in text


@needs_lm_eval
def test_a_yaml_lm_eval_cannot_read_is_named_when_its_task_is_missing(tmp_path: Path, tiny_gpt2: Path,
                                                                      task_folder: Path) -> None:
    (task_folder / "broken.yaml").write_text("task: tiny_broken\ndoc_to_text: [unclosed\n")
    text = problems(write_spec(tmp_path, lmeval_spec(tiny_gpt2, "tasks", ["tiny_broken"])))
    assert "no lm-eval task 'tiny_broken'" in text and "YAML files there that cannot be read: broken.yaml:" in text


@needs_lm_eval
def test_an_encoder_with_a_task_head_is_refused_before_the_first_stage(tmp_path: Path, tiny_bert: Path) -> None:
    from hone.errors import HoneError
    from hone.run.runner import run

    spec = lmeval_spec(tiny_bert, str(TASKS), ["tiny_mc"])
    spec["task"] = "sequence-classification"
    spec["data"] = {"reader": "tsv", "train": str(REPO / "examples" / "data" / "sentiment-sample.tsv")}
    spec["stages"].insert(0, {"type": "train", "name": "tune", "epochs": 1})
    loaded, host = load_spec(write_spec(tmp_path, spec))
    with pytest.raises(HoneError, match="stage 'harness' \\(lm-eval\\): lm-eval scores language models; the run's "
                                        "model is a BertForSequenceClassification, which has no language-model head"):
        run(loaded, host, out=tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()  # the train stage before it never started
    assert json.loads((tmp_path / "run" / "state.json").read_text())["completed"] == []


@needs_lm_eval
def test_how_lm_eval_would_score_each_kind_of_model() -> None:
    from transformers import (BertConfig, BertForTokenClassification, BertLMHeadModel, GPT2Config, GPT2LMHeadModel,
                              GPT2Model, T5Config, T5ForConditionalGeneration)

    from hone.errors import HoneError
    from hone_plugins.lmeval.runner import backend_of

    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
             "vocab_size": 50}
    assert backend_of(GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50))) == "causal"
    assert backend_of(BertLMHeadModel(BertConfig(**small, is_decoder=True))) == "causal"
    assert backend_of(T5ForConditionalGeneration(T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8,
                                                          vocab_size=50))) == "seq2seq"
    with pytest.raises(HoneError, match="attends in both directions"):
        backend_of(BertLMHeadModel(BertConfig(**small)))
    with pytest.raises(HoneError, match="BertForTokenClassification, which has no language-model head"):
        backend_of(BertForTokenClassification(BertConfig(**small)))
    no_head = GPT2Model(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50))
    assert backend_of(no_head, "causal") == "causal"  # `backend:` decides for a class hone does not know


@needs_lm_eval
def test_a_seq2seq_model_is_scored_through_hflms_seq2seq_backend() -> None:
    from lm_eval.evaluator import evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import ByT5Tokenizer, T5Config, T5ForConditionalGeneration

    from hone_plugins.lmeval import tasks
    from hone_plugins.lmeval.runner import backend_of, scoring_tokenizer, task_results

    tokenizer = ByT5Tokenizer()
    config = T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8, vocab_size=len(tokenizer),
                      decoder_start_token_id=tokenizer.pad_token_id)
    model = T5ForConditionalGeneration(config)
    backend = backend_of(model)
    scoring, options = scoring_tokenizer(tokenizer, backend)
    assert backend == "seq2seq" and options == {}
    configs = tasks.task_configs(["tiny_mc"], tasks.folder(TASKS))
    loaded = TaskManager(include_path=str(TASKS), include_defaults=False).load(configs)
    for task in loaded["tasks"].values():
        task.set_config(key="num_fewshot", value=0)
    lm = HFLM(pretrained=model, tokenizer=scoring, backend=backend, batch_size=4)
    output = evaluate(lm, loaded, limit=4, bootstrap_iters=0)
    result = task_results(output)["tiny_mc"]
    assert result["samples"] == 4 and (result["acc"] * 4).is_integer() and result["acc_stderr"] is None
