"""Whole `hone run`s with an lm-eval stage on a tiny GPT-2: results checked against the model's own scores."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lm_eval", reason="the lm-eval extra is not installed (pip install 'hone-ml[lm-eval]')")

from hone.cli import main  # noqa: E402

from .conftest import lmeval_spec, write_spec  # noqa: E402


def hone_run(folder: Path, spec: dict[str, Any]) -> Path:
    assert main(["run", str(write_spec(folder, spec)), "--out", str(folder / "run"), "-q", "--no-report"]) == 0
    return folder / "run"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def load(model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir)


def ids(tokenizer: Any, text: str) -> list[int]:
    """The tokens the model sees: [CLS] and the text, without the [SEP] the WordPiece tokenizer appends."""
    encoded = tokenizer(text)["input_ids"]
    assert encoded[-1] == tokenizer.sep_token_id
    return encoded[:-1]


def continuation_logprob(model: Any, tokenizer: Any, context: str, continuation: str) -> float:
    import torch

    whole, start = ids(tokenizer, context + continuation), len(ids(tokenizer, context))
    with torch.no_grad():
        logprobs = model(torch.tensor([whole])).logits.log_softmax(-1)[0]
    return float(sum(logprobs[i - 1, whole[i]] for i in range(start, len(whole))))


def greedy(model: Any, tokenizer: Any, prompt: str, new_tokens: int) -> str:
    import torch

    prompt_ids = torch.tensor([ids(tokenizer, prompt)])
    with torch.no_grad():
        out = model.generate(prompt_ids, max_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, prompt_ids.shape[1]:], skip_special_tokens=True)


def first_word(generated: str) -> str:
    """tiny_gen's post-processing: cut at the stop string '.', then the regex filter's first match."""
    found = re.findall(r"([a-z]+)", generated.split(".")[0])
    return found[0] if found else "[invalid]"


def test_multiple_choice_accuracy_is_counted_from_the_models_own_log_likelihoods(tmp_path: Path, peaked_gpt2: Path,
                                                                                task_folder: Path) -> None:
    run = hone_run(tmp_path, lmeval_spec(peaked_gpt2, "tasks", ["tiny_mc"], batch_size=3))
    result = json.loads((run / "metrics.json").read_text())["harness"]["tiny_mc"]
    model, tokenizer = load(peaked_gpt2)
    docs = read_jsonl(task_folder / "data" / "tiny_mc.jsonl")
    samples = {row["doc_id"]: row for row in read_jsonl(run / "lm-eval" / "harness" / "tiny_mc.jsonl")}
    correct = correct_norm = 0
    for index, doc in enumerate(docs):
        context = f"{doc['question']} :"
        scores = [continuation_logprob(model, tokenizer, context, f" {choice}") for choice in doc["choices"]]
        # what lm-eval scored is the choice's own tokens, not the tokenizer's closing [SEP] (the same for every choice)
        assert [response[0][0] for response in samples[index]["resps"]] == pytest.approx(scores, abs=1e-4)
        correct += max(range(len(scores)), key=scores.__getitem__) == doc["answer"]
        normed = [score / len(choice) for score, choice in zip(scores, doc["choices"])]
        correct_norm += max(range(len(normed)), key=normed.__getitem__) == doc["answer"]
    n = len(docs)
    assert result["acc"] == pytest.approx(correct / n) and result["acc_norm"] == pytest.approx(correct_norm / n)
    p = correct / n
    # lm-eval's stderr of a mean: the sample standard deviation over sqrt(n)
    assert result["acc_stderr"] == pytest.approx(math.sqrt(p * (1 - p) * n / (n - 1) / n))
    assert result["samples"] == n and result["directions"] == {"acc": "max", "acc_norm": "max"}


def test_generate_until_exact_match_is_computed_from_the_models_own_generations(tmp_path: Path, peaked_gpt2: Path,
                                                                               task_folder: Path) -> None:
    model, tokenizer = load(peaked_gpt2)
    data = task_folder / "data" / "tiny_gen.jsonl"
    docs = read_jsonl(data)
    answers = [first_word(greedy(model, tokenizer, f"{doc['prompt']} :", 6)) for doc in docs]
    assert sum(a != "[invalid]" for a in answers) >= 2, answers
    # the targets: the model's own answer for the first two docs it answers with a word, a word it did not say otherwise
    hits = [i for i, a in enumerate(answers) if a != "[invalid]"][:2]
    targets = [answers[i] if i in hits else "nothing" for i in range(len(docs))]
    data.write_text("".join(json.dumps({**doc, "answer": target}) + "\n" for doc, target in zip(docs, targets)))

    run = hone_run(tmp_path, lmeval_spec(peaked_gpt2, "tasks", ["tiny_gen"], batch_size=4))
    result = json.loads((run / "metrics.json").read_text())["harness"]["tiny_gen"]
    samples = sorted(read_jsonl(run / "lm-eval" / "harness" / "tiny_gen.jsonl"), key=lambda row: row["doc_id"])
    assert [row["filtered_resps"][0] for row in samples] == answers
    assert result["exact_match"] == pytest.approx(2 / len(docs))
    assert result["directions"] == {"exact_match": "max"}


def test_a_tag_runs_its_tasks_and_results_reach_events_and_settings(tmp_path: Path, peaked_gpt2: Path,
                                                                     task_folder: Path) -> None:
    run = hone_run(tmp_path, lmeval_spec(peaked_gpt2, "tasks", ["tiny"], limit=3, num_fewshot=1))
    metrics = json.loads((run / "metrics.json").read_text())["harness"]
    assert set(metrics) - {"peak_rss_mb", "process_peak_rss_mb"} == {"tiny_mc", "tiny_gen", "lm_eval"}
    assert metrics["tiny_mc"]["samples"] == 3 and metrics["tiny_gen"]["samples"] == 3
    assert 0.0 <= metrics["tiny_mc"]["acc"] <= 1.0 and (metrics["tiny_mc"]["acc"] * 3).is_integer()
    assert metrics["lm_eval"]["num_fewshot"] == {"tiny_mc": 1, "tiny_gen": 1} and metrics["lm_eval"]["limit"] == 3
    prompts = [row["arguments"][0][0] for row in read_jsonl(run / "lm-eval" / "harness" / "tiny_mc.jsonl")]
    assert all(prompt.count(" :") == 2 for prompt in prompts)  # one solved example before each question
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    done = {e["split"]: e["metrics"] for e in events if e["event"] == "evaluation_done"}
    assert done["tiny_mc"]["acc"] == metrics["tiny_mc"]["acc"] and "exact_match" in done["tiny_gen"]


def test_the_stage_leaves_the_model_and_the_random_state_as_it_found_them(tmp_path: Path, peaked_gpt2: Path,
                                                                          task_folder: Path) -> None:
    from safetensors.torch import load_file

    spec = lmeval_spec(peaked_gpt2, "tasks", ["tiny_mc"], log_samples=False)
    train = {"type": "train", "name": "tune", "epochs": 1, "batch_size": 2, "optimizer": {"name": "adamw", "lr": 1e-3}}
    spec["data"]["train"] = "texts.jsonl"
    spec["stages"] = [spec["stages"][0], train]
    with_stage = hone_run(tmp_path, spec)
    alone = tmp_path / "alone"
    alone.mkdir()
    spec["stages"] = [train]
    without = hone_run(alone, spec)
    assert not (with_stage / "lm-eval").exists()
    first = load_file(str(with_stage / "model" / "model.safetensors"))
    second = load_file(str(without / "model" / "model.safetensors"))
    assert all((first[k] == second[k]).all() for k in first)  # the same training, so the same RNG draws and weights


def test_rolling_log_likelihood_scores_the_texts_own_tokens_after_the_start_token(tmp_path: Path, peaked_gpt2: Path,
                                                                                   task_folder: Path) -> None:
    import torch

    run = hone_run(tmp_path, lmeval_spec(peaked_gpt2, "tasks", ["tiny_ppl"]))
    result = json.loads((run / "metrics.json").read_text())["harness"]["tiny_ppl"]
    model, tokenizer = load(peaked_gpt2)
    docs = read_jsonl(task_folder / "data" / "tiny_ppl.jsonl")
    samples = {row["doc_id"]: row for row in read_jsonl(run / "lm-eval" / "harness" / "tiny_ppl.jsonl")}
    total, words = 0.0, 0
    for index, doc in enumerate(docs):
        # [CLS] opens the window as the prefix; every token of the text is predicted, [CLS] itself and [SEP] are not
        whole = ids(tokenizer, doc["text"])
        with torch.no_grad():
            logprobs = model(torch.tensor([whole])).logits.log_softmax(-1)[0]
        expected = float(sum(logprobs[i - 1, whole[i]] for i in range(1, len(whole))))
        assert samples[index]["resps"][0][0] == pytest.approx(expected, abs=1e-3)
        total, words = total + expected, words + len(doc["text"].split())
    assert result["word_perplexity"] == pytest.approx(math.exp(-total / words), rel=1e-3)
    assert result["directions"]["word_perplexity"] == "min"
