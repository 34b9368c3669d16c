"""Export stages in runs on the tiny model: the export checked on the run's validation batches, its report in
metrics.json and the run summary, ``hone predict --runtime onnxruntime`` from the run directory with torch's
predictions, several exports in one run, resume, and models the exporter refuses before any work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

for _module in ("onnx", "onnxscript", "onnxruntime"):
    pytest.importorskip(_module)

from hone.errors import HoneError, Interrupted
from hone.run.events import read_events

from tests.reproducible import reproducible

from tests.runs import NER_SAMPLE, write_spec
from .test_compress_stage import HEAD, SENTENCES, TEST, StopAt, run_capturing, spec_with

EXPORT = {"type": "export"}
TRAIN = {"type": "train", "name": "all", "epochs": 3, "batch_size": 8, "logging_steps": 1,  # enough to tag some entities
         "optimizer": {"name": "adamw", "lr": 1e-2}}
STRUCTURED = {"type": "compress", "name": "pruned", "compressor": {
    "name": "structured", "heads_fraction": 0.5, "ffn_fraction": 0.5, "calibration_batches": 2, "batch_size": 4}}


def sample_test_sentences() -> list[str]:
    """The NER sample's test sentences (the tiny model tags entities in some of them)."""
    blocks = (NER_SAMPLE / "test.txt").read_text().strip().split("\n\n")
    return [" ".join(line.split()[0] for line in block.splitlines() if not line.startswith("-DOCSTART-")) for block in blocks]


def predict(run_dir: Path, tmp_path: Path, *options: str) -> list[dict[str, Any]]:
    from hone.cli import main

    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"text": s}) + "\n" for s in [*SENTENCES, *sample_test_sentences()] if s))
    assert main(["predict", str(run_dir), "--input", str(source), "--output", str(target), *options]) == 0
    return [json.loads(line) for line in target.read_text().splitlines()]


def without_scores(results: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [[{k: v for k, v in e.items() if k != "score"} for e in r["entities"]] for r in results]


def scores(results: list[dict[str, Any]]) -> list[float]:
    return [e["score"] for r in results for e in r["entities"]]


def spy_on_exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The export folders ``hone predict --runtime onnxruntime`` serves from now on, in order."""
    import hone_plugins.runtimes.onnxruntime as runtime

    served: list[Path] = []
    find = runtime.find_export

    def recording(source: Path) -> Path:
        served.append(find(source))
        return served[-1]

    monkeypatch.setattr(runtime, "find_export", recording)
    return served


def stage_starts(run_dir: Path, stage: str) -> int:
    return sum(1 for e in read_events(run_dir / "events.jsonl") if e["event"] == "stage_start" and e["stage"] == stage)


@pytest.mark.slow
def test_train_export_evaluate_reports_the_check_and_predicts_like_torch(
        tmp_path: Path, tiny_bert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    spec = write_spec(tmp_path, spec_with(tiny_bert, TRAIN, EXPORT, TEST))
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q", "--no-report"]) == 0
    run_dir = tmp_path / "run"
    summary = capsys.readouterr().out
    result = json.loads((run_dir / "metrics.json").read_text())["1-export"]
    assert result["exporter"] == "onnx" and result["folder"] == "export/onnx" and result["reference"] == "torch"
    assert result["params"] == {"opset": 20, "atol": 1e-4, "dynamic_axes": True, "optimize": True}
    assert result["check_data"] == {"split": "validation", "examples": 12, "batches": 2}
    first, second = result["check_shapes"]
    assert first[0] == 8 and second[0] == 4 and second[1] < first[1]  # the batch and the sequence axes both varied
    assert 0 <= result["max_abs_diff"] <= 1e-4 and result["opset"] == 20 and result["seconds"] > 0
    assert result["size_bytes"] > result["onnx_bytes"] > 0
    folder = run_dir / "export" / "onnx"
    assert {"model.onnx", "onnx.json", "config.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert f"1-export: onnx export in {folder} (" in summary and "from torch" in summary
    assert "1-export [" not in summary and "test [test]: loss" in summary  # no split lines made of its params
    meta = json.loads((folder / "onnx.json").read_text())
    assert meta["task"] == "token-classification" and meta["task_params"]["max_length"] == 48
    assert meta["labels"] == json.loads((run_dir / "model" / "hone.json").read_text())["labels"]
    assert not [p for p in (run_dir / "export").iterdir() if p.name.startswith(".")]  # no temporary folder left

    expected = predict(run_dir, tmp_path, "--device", "cpu")
    served = predict(run_dir, tmp_path, "--runtime", "onnxruntime")
    assert [r["tags"] for r in served] == [r["tags"] for r in expected]
    assert any(r["entities"] for r in expected) and without_scores(served) == without_scores(expected)
    assert scores(served) == pytest.approx(scores(expected), abs=1e-5)
    assert predict(run_dir, tmp_path, "--runtime", "onnxruntime", "--export", "onnx") == served


@pytest.mark.slow
def test_exports_before_and_after_compression_keep_their_own_folders(
        tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """fp32, structurally pruned, then ONNX Runtime int8 (the onnx-int8 graph, written as it is); the last is served by default."""
    from hone.cli import main

    int8 = {"type": "compress", "name": "int8", "compressor": "onnx-int8"}
    spec = spec_with(tiny_bert, HEAD, {**EXPORT, "name": "fp32"}, STRUCTURED, {**EXPORT, "name": "small"}, int8,
                     {**EXPORT, "name": "small-int8"}, TEST)
    run_dir, _ = run_capturing(tmp_path, spec, monkeypatch)
    results = json.loads((run_dir / "metrics.json").read_text())
    fp32, small, quantized = results["fp32"], results["small"], results["small-int8"]
    assert [r["folder"] for r in (fp32, small, quantized)] == ["export/fp32", "export/small", "export/small-int8"]
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == ["fp32", "small", "small-int8"]
    assert quantized["onnx_bytes"] < small["onnx_bytes"] < fp32["onnx_bytes"]
    assert fp32["reference"] == small["reference"] == "torch" and quantized["reference"].startswith("onnxruntime")
    assert max(fp32["max_abs_diff"], small["max_abs_diff"]) <= 1e-4 and quantized["max_abs_diff"] == 0.0
    assert quantized["opset"] == 20 and quantized["dynamic_axes"] is True

    # the run's final model is the onnx-int8 one: torch-side predictions and the last export agree exactly
    served = spy_on_exports(monkeypatch)
    assert predict(run_dir, tmp_path, "--runtime", "onnxruntime") == predict(run_dir, tmp_path, "--device", "cpu")
    for name in ("fp32", "small"):
        predict(run_dir, tmp_path, "--runtime", "onnxruntime", "--export", name)
    assert served == [run_dir / "export" / name for name in ("small-int8", "fp32", "small")]
    capsys.readouterr()
    (tmp_path / "in.jsonl").write_text('{"text": "paris"}\n')
    assert main(["predict", str(run_dir), "--runtime", "onnxruntime", "--export", "smal", "--input",
                 str(tmp_path / "in.jsonl")]) == 2
    error = capsys.readouterr().err
    assert "no export 'smal'. Did you mean 'small'? Available: fp32, small, small-int8" in error


@pytest.mark.slow
def test_a_finished_export_is_not_redone_and_an_interrupted_one_is_redone_whole(
        tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hone_plugins.exporters.onnx as onnx_export

    spec = spec_with(tiny_bert, HEAD, EXPORT, TEST)
    # stopped before the evaluation: the export stage is finished and resuming leaves its folder alone
    with pytest.raises(Interrupted):
        run_capturing(tmp_path, spec, monkeypatch, "after", callbacks=[("stop", StopAt("stage_start", "test"))])
    model_file = tmp_path / "after" / "export" / "onnx" / "model.onnx"
    written = model_file.stat().st_mtime_ns, model_file.stat().st_ino
    resumed, _ = run_capturing(tmp_path, spec, monkeypatch, "after", resume=True)
    assert (model_file.stat().st_mtime_ns, model_file.stat().st_ino) == written
    assert stage_starts(resumed, "1-export") == 1 and stage_starts(resumed, "test") == 2
    finished = json.loads((resumed / "metrics.json").read_text())

    # stopped halfway through writing the export (model.onnx saved, not yet checked), plus a leftover of a killed attempt
    check = onnx_export.check_onnx

    def stop_while_checking(*args: Any, **kwargs: Any) -> Any:
        raise Interrupted("stopped by the test while the export was being checked")

    monkeypatch.setattr(onnx_export, "check_onnx", stop_while_checking)
    with pytest.raises(Interrupted):
        run_capturing(tmp_path, spec, monkeypatch, "during")
    exports = tmp_path / "during" / "export"
    assert list(exports.iterdir()) == []  # nothing half-written is left
    (exports / ".onnx.killed.tmp").mkdir()
    (exports / ".onnx.killed.tmp" / "model.onnx").write_bytes(b"half a graph")
    monkeypatch.setattr(onnx_export, "check_onnx", check)
    again, _ = run_capturing(tmp_path, spec, monkeypatch, "during", resume=True)
    assert [p.name for p in exports.iterdir()] == ["onnx"]
    assert stage_starts(again, "1-export") == 2
    results = json.loads((again / "metrics.json").read_text())
    assert reproducible(results)["test"] == reproducible(finished)["test"] and results["1-export"]["max_abs_diff"] <= 1e-4


def test_the_exporter_refuses_a_compressed_model_before_any_work_naming_the_compressor(
        tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec check knows dynamic-int8; without it (as for a plugin's compressor) the stage still refuses at once."""
    from hone.spec.loading import SpecError, load_spec
    from hone_plugins.exporters import REFUSES

    spec = spec_with(tiny_bert, HEAD, {"type": "compress", "name": "q", "compressor": "dynamic-int8"}, EXPORT)
    with pytest.raises(SpecError, match=r"stages\[2\]: the onnx exporter cannot export a model compressed by "
                                        r"'dynamic-int8' \(stage 'q'\): torch.ao quantized layers"):
        load_spec(write_spec(tmp_path, spec))
    monkeypatch.delitem(REFUSES, "dynamic-int8")
    with pytest.raises(HoneError, match=r"stage '2-export': the onnx exporter cannot export the run's model: the model "
                                        r"holds torch.ao quantized layers.*compressed by stage 'q' \(dynamic-int8\)"):
        run_capturing(tmp_path, spec, monkeypatch)
    assert not (tmp_path / "run" / "export").exists()
    assert stage_starts(tmp_path / "run", "2-export") == 0
