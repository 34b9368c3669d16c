"""One `hone run` with --threads and gradient checkpointing: what it records of precision, threads and memory."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from hone.run.devices import cpu_bf16_units, pick_precisions
from hone.run.events import read_events

from tests.runs import NER_SAMPLE, ner_spec, write_spec


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> SimpleNamespace:
    """The run directory, its stdout, the precisions each forward pass ran at and torch's threads before it."""
    from hone.cli import main

    folder = tmp_path_factory.mktemp("resources")
    spec = ner_spec(tiny_bert)
    spec["stages"] = [
        {"type": "train", "name": "fit", "epochs": 1, "batch_size": 8, "gradient_checkpointing": True,
         "optimizer": {"name": "adamw", "lr": 3e-3}},
        {"type": "evaluate", "name": "test", "split": "test", "metrics": ["entity-f1"]},
    ]
    seen: dict[str, list[str]] = {"train": [], "eval": []}
    checkpointing: list[bool] = []
    import hone.run.devices as devices
    import hone_plugins.stages.evaluation as evaluation
    from hone_plugins.stages.setup import is_checkpointing

    def spy(kind: str, real: Any) -> Any:
        def forward(model: Any, batch: Any, device: Any, precision: str, **flags: Any) -> Any:
            seen[kind].append(precision)
            if kind == "train":
                checkpointing.append(is_checkpointing(model))
            return real(model, batch, device, precision, **flags)
        return forward

    threads_before, stdout = torch.get_num_threads(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.setattr(devices, "forward", spy("train", devices.forward))  # RunContext.forward imports it per call
        patch.setattr(evaluation, "forward", spy("eval", evaluation.forward))
        code = main(["run", str(write_spec(folder, spec)), "--out", str(folder / "run"), "-q", "--no-report", "--threads", "1"])
    assert code == 0
    return SimpleNamespace(run_dir=folder / "run", stdout=stdout.getvalue(), seen=seen, checkpointing=checkpointing,
                           threads_before=threads_before)


def test_the_run_records_both_precisions_and_the_cpus_bf16_units(finished: SimpleNamespace) -> None:
    expected = pick_precisions("auto", torch.device("cpu"))._asdict()
    start = next(e for e in read_events(finished.run_dir / "events.jsonl") if e["event"] == "run_start")
    assert start["precision"] == expected and start["cpu_bf16"] == cpu_bf16_units()
    assert json.loads((finished.run_dir / "state.json").read_text())["precision"] == expected
    assert f"precision: train {expected['train']}, eval {expected['eval']}; 1 threads" in finished.stdout


def test_training_and_evaluation_ran_at_their_own_precision(finished: SimpleNamespace) -> None:
    expected = pick_precisions("auto", torch.device("cpu"))
    assert finished.seen["train"] and set(finished.seen["train"]) == {expected.train}
    assert finished.seen["eval"] and set(finished.seen["eval"]) == {expected.eval}


def test_threads_are_recorded_and_restored_after_the_run(finished: SimpleNamespace) -> None:
    start = next(e for e in read_events(finished.run_dir / "events.jsonl") if e["event"] == "run_start")
    assert start["threads"] == 1 and json.loads((finished.run_dir / "state.json").read_text())["threads"] == 1
    assert torch.get_num_threads() == finished.threads_before


def test_gradient_checkpointing_was_on_while_training_and_off_after(finished: SimpleNamespace) -> None:
    from transformers import AutoModelForTokenClassification

    assert finished.checkpointing and all(finished.checkpointing)
    saved = AutoModelForTokenClassification.from_pretrained(finished.run_dir / "model")
    assert not saved.config.to_dict().get("gradient_checkpointing")


def test_every_stage_reports_its_peak_rss(finished: SimpleNamespace) -> None:
    metrics = json.loads((finished.run_dir / "metrics.json").read_text())
    for stage in ("fit", "test"):
        peak = metrics[stage].get("peak_rss_mb", metrics[stage].get("process_peak_rss_mb"))
        assert isinstance(peak, float) and 10 < peak < 100_000
    assert "peak RSS per stage: fit " in finished.stdout and " MB" in finished.stdout
    end = next(e for e in read_events(finished.run_dir / "events.jsonl") if e["event"] == "run_end")
    stages = [metrics[s].get("peak_rss_mb", metrics[s].get("process_peak_rss_mb")) for s in ("fit", "test")]
    assert end["process_peak_rss_mb"] >= max(stages)


def test_gradient_checkpointing_for_a_model_without_it_is_refused_before_any_stage_runs(
        tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import BertForTokenClassification

    from hone.errors import HoneError
    from hone.run.runner import run
    from hone.spec.loading import load_spec

    monkeypatch.setattr(BertForTokenClassification, "supports_gradient_checkpointing", False)
    spec = ner_spec(tiny_bert)
    spec["stages"] = [{"type": "evaluate", "split": "test"},
                      {"type": "train", "name": "fit", "batch_size": 8, "gradient_checkpointing": True}]
    loaded, host = load_spec(write_spec(tmp_path, spec))
    with pytest.raises(HoneError, match="stage 'fit': gradient_checkpointing: BertForTokenClassification does not support it"):
        run(loaded, host, out=tmp_path / "run")
    assert not any(e["event"] == "stage_start" for e in read_events(tmp_path / "run" / "events.jsonl"))


def test_threads_on_the_command_line_must_be_positive(tmp_path: Path, tiny_bert: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    spec = write_spec(tmp_path, ner_spec(tiny_bert))
    with pytest.raises(SystemExit):
        main(["run", str(spec), "--threads", "0"])
    assert "must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_predict_takes_threads_and_precision(finished: SimpleNamespace, tmp_path: Path) -> None:
    from hone.cli import main

    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "John Smith lives in Paris ."}) + "\n")
    before, outputs = torch.get_num_threads(), []
    try:
        for precision in ([], ["--precision", "auto"]):  # the default is fp32
            target = tmp_path / f"out{len(outputs)}.jsonl"
            assert main(["predict", str(finished.run_dir), "-i", str(source), "-o", str(target), "--threads", "1",
                         *precision]) == 0
            assert torch.get_num_threads() == 1
            outputs.append(json.loads(target.read_text()))
    finally:
        torch.set_num_threads(before)
    assert outputs[0]["tokens"] == outputs[1]["tokens"] == ["John", "Smith", "lives", "in", "Paris", "."]


def test_predict_refuses_a_precision_for_a_serving_runtime(finished: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    assert main(["predict", str(finished.run_dir), "-i", str(NER_SAMPLE / "test.txt"), "--runtime", "onnxruntime",
                 "--precision", "bf16"]) == 2
    assert "--precision bf16 is for --runtime torch" in capsys.readouterr().err


def test_predict_runs_at_the_precision_auto_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    from hone_plugins.commands.predict import precision_scope

    model = torch.nn.Linear(4, 2)
    monkeypatch.setattr("hone.run.devices.cpu_bf16_units", lambda: ["amx_bf16"])
    with precision_scope(model, "auto"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with precision_scope(model, "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr("hone.run.devices.cpu_bf16_units", lambda: [])
    with precision_scope(model, "auto"):
        assert not torch.is_autocast_enabled("cpu")
