"""examples/lm-eval.yaml: it validates, and its task YAMLs run (on a tiny GPT-2 in place of MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("lm_eval", reason="the lm-eval extra is not installed (pip install 'hone-ml[lm-eval]')")

from hone.cli import main  # noqa: E402
from hone.spec.loading import load_spec  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_lm_eval_example_validates() -> None:
    spec, _ = load_spec(EXAMPLES / "lm-eval.yaml")
    assert [stage.type for stage in spec.stages] == ["lm-eval", "train", "lm-eval"]
    assert spec.stages[0].include_path == str(EXAMPLES / "lm-eval")


def test_the_example_tasks_run_with_their_few_shot_rules(tmp_path: Path, tiny_gpt2: Path) -> None:
    spec = yaml.safe_load((EXAMPLES / "lm-eval.yaml").read_text())
    first = dict(spec["stages"][0], include_path=str(EXAMPLES / "lm-eval"), limit=3)
    data = dict(spec["data"], train=None, validation=str(EXAMPLES / "data" / "sentiment-sample.tsv"))
    spec.update(model=str(tiny_gpt2), stages=[first], data=data)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["run", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run"), "-q", "--no-report"]) == 0
    results = json.loads((tmp_path / "run" / "metrics.json").read_text())["before"]
    assert results["hone_sentiment"]["samples"] == 3 and 0 <= results["hone_sentiment"]["acc"] <= 1
    assert results["hone_arithmetic"]["samples"] == 3 and "exact_match" in results["hone_arithmetic"]
    assert results["lm_eval"]["num_fewshot"] == {"hone_sentiment": 0, "hone_arithmetic": 2}
    samples = tmp_path / "run" / "lm-eval" / "before"
    def prompts(task: str) -> list[str]:
        return [json.loads(line)["arguments"][0][0] for line in (samples / f"{task}.jsonl").read_text().splitlines()]

    assert all(prompt.count("Question:") == 3 for prompt in prompts("hone_arithmetic"))  # two solved, then the question
    assert all(prompt.count("Review:") == 1 for prompt in prompts("hone_sentiment"))
