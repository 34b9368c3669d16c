"""Generative tasks through whole runs: generation at validation, predictions files, generation metrics driving
early stopping and search, and `hone predict` with generation options, on tiny models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hone.cli import main
from hone.run.events import read_events
from hone.run.runner import run
from hone.spec.loading import load_spec

from tests.runs import NER_SAMPLE, ner_spec, predict, write_spec

QA = [("john smith lives in", "paris"), ("mary was in", "london"), ("the company is in", "new york"),
      ("he said the film was", "good"), ("she said the movie was", "bad"), ("reuters said they will", "rejects")]
PATIENCE = 15  # evaluations without a better exact match; early ones are noisy (a lucky guess scores 1/6)


def qa_file(directory: Path) -> Path:
    path = directory / "qa.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "completion": " " + c}) + "\n" for p, c in QA))
    return path


def causal_spec(model: Path, train: Path, validation: Path, **stage: Any) -> dict[str, Any]:
    return {
        "name": "qa", "seed": 3, "model": str(model),
        "task": {"name": "causal-lm", "max_length": 24, "generation": {"max_new_tokens": 4}},
        "data": {"reader": "jsonl", "train": str(train), "validation": str(validation)},
        "stages": [
            {"type": "train", "epochs": 60, "batch_size": 6, "dropout": 0.0, "scheduler": "constant",
             "optimizer": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.0},
             "metrics": ["exact-match", {"name": "rouge", "types": ["rouge1"]}],
             "early_stopping": {"metric": "exact_match", "patience": PATIENCE}, **stage},
            {"type": "evaluate", "split": "validation", "metrics": ["exact-match"]},
        ],
    }


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2: Path) -> Path:
    """A tiny GPT-2 instruction-tuned on six prompt/completion pairs (validated on the same) until exact match
    stops improving."""
    directory = tmp_path_factory.mktemp("qa-run")
    data = qa_file(directory)
    spec = causal_spec(tiny_gpt2, data, data)
    spec_file = write_spec(directory, spec)
    assert main(["run", str(spec_file), "--out", str(directory / "run"), "-q", "--no-report"]) == 0
    return directory / "run"


def test_validation_generates_and_exact_match_stops_training_early(qa_run: Path) -> None:
    metrics = json.loads((qa_run / "metrics.json").read_text())
    train = metrics["0-train"]
    per_epoch = [e["metrics"] for e in read_events(qa_run / "events.jsonl")
                 if e["event"] == "evaluation_done" and e["stage"] == "0-train"]
    assert all({"exact_match", "rouge1", "loss"} <= set(m) for m in per_epoch)
    scores = [m["exact_match"] for m in per_epoch]
    best = scores.index(max(scores))  # the first epoch with the highest exact match (higher is better)
    assert train["best"] == max(scores) == 1.0  # memorised: every generated text is its completion
    assert train["early_stopped"] is True and len(scores) == best + 1 + PATIENCE < 60
    restored = metrics["1-evaluate"]["validation"]  # restore_best: the evaluate stage sees the best epoch's weights
    assert restored["exact_match"] == 1.0 and restored["loss"] == pytest.approx(per_epoch[best]["loss"])


def test_every_validation_writes_its_predictions(qa_run: Path) -> None:
    epochs = len([e for e in read_events(qa_run / "events.jsonl")
                  if e["event"] == "evaluation_done" and e["stage"] == "0-train"])
    names = sorted(p.name for p in (qa_run / "predictions").iterdir())
    per_epoch = [f"0-train-validation-epoch{n:03d}.jsonl" for n in range(1, epochs + 1)]
    assert names == per_epoch + ["1-evaluate-validation.jsonl"]
    last = jsonl(qa_run / "predictions" / f"0-train-validation-epoch{epochs:03d}.jsonl")
    assert [r["index"] for r in last] == list(range(len(QA)))
    assert [(r["input"], r["reference"]) for r in last] == [(p, c) for p, c in QA]  # the split's order
    assert all(r["prediction"] == r["reference"] == r["generated"].strip() for r in last)
    first = jsonl(qa_run / "predictions" / "0-train-validation-epoch001.jsonl")
    assert any(r["prediction"] != r["reference"] for r in first)  # the untrained model's texts, as generated then


def test_hone_predict_generates_with_the_runs_settings_and_the_options(qa_run: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    records = [{"prompt": p} for p, _ in QA[:3]]
    results = predict(qa_run, records, capsys)
    assert [r["prediction"] for r in results] == ["paris", "london", "new york"]
    assert [r["generated"].strip() for r in results] == ["paris", "london", "new york"]
    shorter = predict(qa_run, records, capsys, "--max-new-tokens", "1")
    assert [r["prediction"] for r in shorter] == ["paris", "london", "new"]
    assert predict(qa_run, records, capsys, "--num-beams", "3") == results
    stopped = predict(qa_run, records, capsys, "--stop", "york", "--stop", "lon")
    assert [r["generated"].strip() for r in stopped] == ["paris", "", "new"]  # cut before the stop strings
    sampling = ("--do-sample", "--temperature", "5", "--top-k", "0", "--seed", "1")
    sampled = predict(qa_run, records, capsys, *sampling)
    assert predict(qa_run, records, capsys, *sampling) == sampled
    assert sampled != results  # a flat distribution over the whole vocabulary leaves the memorised answers


def test_hone_predict_refuses_bad_generation_options_with_the_fix(qa_run: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"prompt": "mary was in"}) + "\n")
    assert main(["predict", str(qa_run), "--input", str(records), "--temperature", "0.7"]) == 2
    assert "error: generation options: temperature applies only when sampling: set do_sample" in capsys.readouterr().err
    for option, value, problem in (("--top-p", "1.5", "must be above 0 and at most 1, got 1.5"),
                                   ("--max-new-tokens", "0", "must be at least 1, got 0"),
                                   ("--stop", "", "must not be empty")):
        with pytest.raises(SystemExit):
            main(["predict", str(qa_run), "--input", str(records), option, value])
        assert f"{option}: {problem}" in capsys.readouterr().err


def test_hone_predict_writes_an_output_file_whole(qa_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    records, out = tmp_path / "records.jsonl", tmp_path / "out.jsonl"
    records.write_text(json.dumps({"prompt": "mary was in"}) + "\n" + json.dumps({"source": "x"}) + "\n")
    out.write_text("earlier results\n")
    assert main(["predict", str(qa_run), "--input", str(records), "--output", str(out), "--batch-size", "1"]) == 2
    assert f"{records}:2: expected key 'messages' or 'prompt' or 'text', got ['source']" in capsys.readouterr().err
    assert out.read_text() == "earlier results\n"  # not half-written over by the first record's result
    records.write_text(json.dumps({"prompt": "mary was in"}) + "\n")
    assert main(["predict", str(qa_run), "--input", str(records), "--output", str(out)]) == 0
    assert [r["prediction"] for r in jsonl(out)] == ["london"]


def test_hone_predict_names_a_bad_records_file_and_line_and_writes_nothing(qa_run: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    records, out = tmp_path / "records.jsonl", tmp_path / "out.jsonl"
    good = json.dumps({"prompt": "mary was in"})
    for bad, problem in (({"messages": [{"role": "user"}]}, "'messages'[0] (user) needs a string 'content'"),
                         ({"text": ["mary"]}, "'text' must be a string, got list"),
                         ({"prompt": "x", "_line": 1}, None)):
        records.write_text(f"{good}\n\n{good}\n{json.dumps(bad)}\n")  # the blank line is counted too
        code = main(["predict", str(qa_run), "--input", str(records), "--output", str(out), "--batch-size", "1"])
        if problem is None:  # a field of the record's own named like hone's location is replaced, not trusted
            assert code == 0 and len(jsonl(out)) == 3
            continue
        assert code == 2 and f"{records}:4: {problem}" in capsys.readouterr().err
        assert not out.exists()  # nothing written: the three good records' results are not kept without the fourth


@pytest.mark.slow
def test_a_search_optimises_validation_exact_match(tmp_path: Path, tiny_gpt2: Path) -> None:
    from hone_plugins.search.command import search_command

    data = qa_file(tmp_path)
    spec = causal_spec(tiny_gpt2, data, data, epochs=15)
    del spec["stages"][0]["early_stopping"]
    spec["stages"] = spec["stages"][:1]
    spec["search"] = {"searcher": "grid", "objectives": "validation.exact_match",
                      "space": {"stages[0].optimizer.lr": [1e-2, 1e-5]}}
    summary = search_command(write_spec(tmp_path, spec), tmp_path / "search", quiet=True)
    assert summary is not None and summary["status"] == "completed"
    values = {row["params"]["stages[0].optimizer.lr"]: row["values"]["validation.exact_match"]
              for row in json.loads((tmp_path / "search" / "trials.json").read_text())}
    assert values[1e-2] > values[1e-5] == 0.0  # 1e-5 is too small a learning rate to memorise anything in 15 steps
    assert summary["best"]["value"] == values[1e-2] and summary["best"]["params"]["stages[0].optimizer.lr"] == 1e-2


def test_seq2seq_run_stops_on_rouge1_and_predict_gives_the_best_epochs_texts(
        tmp_path: Path, tiny_t5: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"source": p, "target": c}) + "\n" for p, c in QA))
    patience, epochs = 20, 40  # the tiny T5 first generates a matching word after ~18 epochs
    spec = {
        "name": "s2s", "seed": 3, "model": str(tiny_t5),
        "task": {"name": "seq2seq", "max_length": 32, "max_target_length": 16, "generation": {"max_new_tokens": 8}},
        "data": {"reader": "jsonl", "train": str(pairs), "validation": str(pairs)},
        "stages": [{"type": "train", "epochs": epochs, "batch_size": 6, "optimizer": {"name": "adamw", "lr": 1e-2},
                    "scheduler": "constant", "early_stopping": {"metric": "rouge1", "patience": patience}}],
    }
    run_dir = run(*load_spec(write_spec(tmp_path, spec)), out=tmp_path / "run")
    train = json.loads((run_dir / "metrics.json").read_text())["0-train"]
    assert {"rouge1", "rouge2", "rougeL", "rougeLsum", "loss"} <= set(train["validation"])  # rouge: the default
    scores = [e["metrics"]["rouge1"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "evaluation_done"]
    best = scores.index(max(scores))
    assert train["best"] == max(scores)
    assert len(scores) == (best + 1 + patience if train["early_stopped"] else epochs)
    files = sorted((run_dir / "predictions").iterdir())
    assert [f.name for f in files] == [f"0-train-validation-epoch{n:03d}.jsonl" for n in range(1, len(scores) + 1)]
    at_best = jsonl(files[best])
    assert [(r["input"], r["reference"]) for r in at_best] == QA
    assert all(r["prediction"] == r["generated"].strip() for r in at_best) and any(r["generated"] for r in at_best)
    # the run's model holds the best epoch's weights (restore_best), and greedy decoding is deterministic
    results = predict(run_dir, [{"source": p} for p, _ in QA[:3]] + [{"text": p} for p, _ in QA[3:]], capsys)
    assert [r["generated"] for r in results] == [r["generated"] for r in at_best]


def test_non_generative_tasks_write_predictions_at_evaluate_stages_only(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"] = [spec["stages"][1], spec["stages"][2],
                      {"type": "evaluate", "name": "quiet", "split": "test", "save_predictions": False}]
    spec["stages"][0]["epochs"] = 1
    run_dir = run(*load_spec(write_spec(tmp_path, spec)), out=tmp_path / "run")
    assert [p.name for p in (run_dir / "predictions").iterdir()] == ["1-test-test.jsonl"]
    records = jsonl(run_dir / "predictions" / "1-test-test.jsonl")
    assert records[0]["index"] == 0 and len(records[0]["prediction"]) == len(records[0]["reference"])
    assert len(records[0]["scores"]) == len(records[0]["prediction"])  # a confidence per word
    first_sentence = (NER_SAMPLE / "test.txt").read_text().split("\n\n")[1].splitlines()
    assert records[0]["reference"] == [line.split()[-1] for line in first_sentence]
