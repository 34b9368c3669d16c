"""The quick start's job: its invented sample is what generate.py writes, and the README's predict example is unseen."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from hone.spec.loading import load_spec

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "data" / "ner-quickstart"
SPLITS = ("train", "valid", "test")
README_EXAMPLE = "Maria Keller flew from Oslo to Lisbon for Nordwind Shipping ."


def tokens(split: str) -> set[str]:
    lines = (SAMPLE / f"{split}.txt").read_text(encoding="utf-8").splitlines()
    return {line.split()[0].lower() for line in lines if line and not line.startswith("-DOCSTART-")}


def test_the_shipped_sample_is_what_generate_writes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SAMPLE / "generate.py"), str(tmp_path)], check=True)
    for split in SPLITS:
        assert (tmp_path / f"{split}.txt").read_bytes() == (SAMPLE / f"{split}.txt").read_bytes(), split


def test_the_readme_example_is_not_in_train_or_valid() -> None:
    assert README_EXAMPLE in (REPO / "README.md").read_text(encoding="utf-8")
    example = {word.lower() for word in README_EXAMPLE.split() if word[0].isupper()}
    assert example == {"maria", "keller", "oslo", "lisbon", "nordwind", "shipping"}
    assert not example & (tokens("train") | tokens("valid"))


def test_the_quickstart_spec_reads_the_whole_sample() -> None:
    spec, host = load_spec(REPO / "examples" / "quickstart.yaml")
    conll = host.registries.get("reader", "conll").build({})
    files = [spec.data.train, spec.data.validation, spec.data.test]
    assert [Path(f) for f in files] == [SAMPLE / f"{split}.txt" for split in SPLITS]
    generator = importlib.util.spec_from_file_location("generate", SAMPLE / "generate.py")
    assert generator and generator.loader
    module = importlib.util.module_from_spec(generator)
    generator.loader.exec_module(module)
    assert [len(conll.read(Path(f))) for f in files] == list(module.SIZES.values())
