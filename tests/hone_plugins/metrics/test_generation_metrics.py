"""The generation metrics (rouge, bleu, chrf, exact-match), reached through plugin discovery, against
the values rouge-score's and sacrebleu's documentation publish and hand-computed ones."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from hone.components import EvalOutput
from hone.errors import HoneError
from hone.plugins import PluginHost, load_plugins

INSTALL = "pip install 'hone-ml[generation]'"
# sacrebleu's README: one system, two reference streams
SYSTEM = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
STREAMS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
PER_EXAMPLE = [list(refs) for refs in zip(*STREAMS)]  # hone's shape: each example's references
# rouge-score's README example (target, prediction)
FOX = "The quick brown fox jumps over the lazy dog"
DOG = "The quick brown dog jumps on the log."


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins(allowed=["hone.metrics"])


@pytest.fixture
def rouge_score() -> ModuleType:
    return pytest.importorskip("rouge_score", reason=f"rouge-score is not installed ({INSTALL})")


@pytest.fixture
def sacrebleu() -> ModuleType:
    return pytest.importorskip("sacrebleu", reason=f"sacrebleu is not installed ({INSTALL})")


def compute(
    host: PluginHost, name: str, predictions: list[Any], references: list[Any], **params: Any
) -> dict[str, Any]:
    metric = host.registries.get("metric", name).build(params)
    return metric.compute(EvalOutput(predictions=predictions, references=references))


def test_rouge_readme_example(host: PluginHost, rouge_score: ModuleType) -> None:
    # rouge-score's README pair with use_stemmer=True: rouge1 P=6/8 R=6/9, rouge2 P=2/7 R=2/8, rougeL P=5/8 R=5/9
    assert compute(host, "rouge", [DOG], [FOX], use_stemmer=True) == {
        "rouge1": pytest.approx(0.7058823529411765),
        "rouge2": pytest.approx(0.26666666666666666),
        "rougeL": pytest.approx(0.5882352941176471),
        "rougeLsum": pytest.approx(0.5882352941176471),
    }


def test_rouge_stemmer_and_types(host: PluginHost, rouge_score: ModuleType) -> None:
    # "the cats are running" vs "the cat is running": the, running match; stemmed, cat and run too
    assert compute(host, "rouge", ["the cats are running"], ["the cat is running"], types=["rouge1"]) == {
        "rouge1": pytest.approx(0.5)
    }
    pair = ["the cats are running"], ["the cat is running"]
    assert compute(host, "rouge", *pair, types=["rouge1"], use_stemmer=True) == {"rouge1": pytest.approx(0.75)}


def test_rouge_lsum_reads_lines_as_sentences(host: PluginHost, rouge_score: ModuleType) -> None:
    # the same two sentences in the other order: the LCS over the whole text is 2 of 4 tokens, per sentence all 4
    result = compute(host, "rouge", ["c d\na b"], ["a b\nc d"], types=["rougeL", "rougeLsum"])
    assert result == {"rougeL": pytest.approx(0.5), "rougeLsum": pytest.approx(1.0)}


def test_rouge_takes_the_best_reference_and_averages_examples(host: PluginHost, rouge_score: ModuleType) -> None:
    result = compute(host, "rouge", [DOG, "exactly this"], [["nothing alike", FOX], "exactly this"], use_stemmer=True)
    assert result["rouge1"] == pytest.approx((0.7058823529411765 + 1.0) / 2)
    assert result["rouge2"] == pytest.approx((0.26666666666666666 + 1.0) / 2)


def test_rouge_refuses_text_its_tokenizer_cannot_read(host: PluginHost, rouge_score: ModuleType) -> None:
    with pytest.raises(ValueError, match="keeps only a-z and 0-9"):
        compute(host, "rouge", ["東京は晴れ"], ["東京は晴れ"])


@pytest.mark.parametrize(
    "params", [{"types": []}, {"types": ["rouge3"]}, {"types": ["rouge1", "rouge1"]}, {"stemmer": True}]
)
def test_rouge_params_are_checked(host: PluginHost, params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        host.registries.get("metric", "rouge").params.model_validate(params)


def test_bleu_readme_example(host: PluginHost, sacrebleu: ModuleType) -> None:
    # sacrebleu's README: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
    result = compute(host, "bleu", SYSTEM, PER_EXAMPLE)
    assert result["bleu"] == pytest.approx(48.53, abs=0.005)
    assert result["bleu_signature"] == f"nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:{sacrebleu.__version__}"
    details = result["bleu_details"]
    assert details["precisions"] == pytest.approx([100 * 14 / 17, 50.0, 100 * 5 / 11, 37.5])
    assert details["brevity_penalty"] == pytest.approx(0.943, abs=0.0005)
    assert (details["prediction_length"], details["reference_length"]) == (17, 18)


def test_bleu_with_a_variable_number_of_references(host: PluginHost, sacrebleu: ModuleType) -> None:
    # the first example keeps only the reference it equals: the statistics, hence the score, do not change
    references = [["The dog bit the man."], *PER_EXAMPLE[1:]]
    result = compute(host, "bleu", SYSTEM, references)
    assert result["bleu"] == pytest.approx(48.53, abs=0.005)
    assert result["bleu_signature"].startswith("nrefs:var|")


def test_bleu_tokenize_and_lowercase(host: PluginHost, sacrebleu: ModuleType) -> None:
    # 13a leaves the sentence one token (no match); by characters the n-gram precisions are 5/6, 3/5, 2/4, 1/3
    assert compute(host, "bleu", ["今天天气不好"], ["今天天气很好"])["bleu"] == 0.0
    by_char = compute(host, "bleu", ["今天天气不好"], ["今天天气很好"], tokenize="char")
    assert by_char["bleu"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    assert "|tok:char|" in by_char["bleu_signature"]
    shouted = ["THE DOG BIT THE MAN."], ["the dog bit the man."]
    assert compute(host, "bleu", *shouted)["bleu"] < 10
    lowered = compute(host, "bleu", *shouted, lowercase=True)
    assert lowered["bleu"] == pytest.approx(100.0) and "|case:lc|" in lowered["bleu_signature"]


@pytest.mark.parametrize("params", [{"tokenize": "ja-mecab"}, {"tokenize": "flores200"}, {"smooth": "exp"}])
def test_bleu_params_are_checked(host: PluginHost, params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        host.registries.get("metric", "bleu").params.model_validate(params)


def test_chrf_readme_example(host: PluginHost, sacrebleu: ModuleType) -> None:
    # sacrebleu's README: chrF2 = 59.73
    result = compute(host, "chrf", SYSTEM, PER_EXAMPLE)
    assert result["chrf"] == pytest.approx(59.73, abs=0.005)
    assert result["chrf_signature"] == f"nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:{sacrebleu.__version__}"


def test_chrf_plus_plus_and_lowercase(host: PluginHost, sacrebleu: ModuleType) -> None:
    result = compute(host, "chrf", SYSTEM, PER_EXAMPLE, word_order=2)
    assert set(result) == {"chrfpp", "chrfpp_signature"}
    assert result["chrfpp"] == pytest.approx(59.15, abs=0.005)  # what sacrebleu 2.4 and 2.6 give
    assert "|nw:2|" in result["chrfpp_signature"]
    assert set(compute(host, "chrf", SYSTEM, PER_EXAMPLE, word_order=1)) == {"chrfp", "chrfp_signature"}
    assert compute(host, "chrf", ["THE DOG"], ["the dog"], lowercase=True)["chrf"] == pytest.approx(100.0)
    assert compute(host, "chrf", ["THE DOG"], ["the dog"])["chrf"] < 10


@pytest.mark.parametrize("params", [{"word_order": 3}, {"word_order": -1}, {"tokenize": "13a"}])
def test_chrf_params_are_checked(host: PluginHost, params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        host.registries.get("metric", "chrf").params.model_validate(params)


def test_exact_match_squad_normalisation(host: PluginHost) -> None:
    # SQuAD's normalize_answer: lower-case, drop punctuation, drop a/an/the, collapse whitespace
    predictions = ["The  Eiffel Tower!", "an apple", "Paris", "Rome"]
    references = ["eiffel tower", "Apple.", ["the city of Paris", "paris"], "Milan"]
    assert compute(host, "exact-match", predictions, references) == {"exact_match": 0.75}


@pytest.mark.parametrize("switch", ["lowercase", "remove_punctuation", "remove_articles", "collapse_whitespace"])
def test_exact_match_each_normalisation_can_be_switched_off(host: PluginHost, switch: str) -> None:
    # "The  Eiffel Tower!" becomes "eiffel tower" only with all four steps
    assert compute(host, "exact-match", ["The  Eiffel Tower!"], ["eiffel tower"]) == {"exact_match": 1.0}
    switched_off = compute(host, "exact-match", ["The  Eiffel Tower!"], ["eiffel tower"], **{switch: False})
    assert switched_off == {"exact_match": 0.0}


def test_exact_match_counts_whole_tag_sequences(host: PluginHost) -> None:
    predictions = [["B-PER", "I-PER", "O"], ("O", "O"), ["b-loc"]]
    references = [["B-PER", "I-PER", "O"], ["O", "O"], ["B-LOC"]]
    # tuples and lists alike; tags are compared as they are (no lower-casing)
    assert compute(host, "exact-match", predictions, references) == {"exact_match": pytest.approx(2 / 3)}
    assert compute(host, "exact-match", [["O", "B-PER"]], [["O", "O"]]) == {"exact_match": 0.0}


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [
        (["a"], ["a", "b"], "1 predictions but 2 references"),
        ([], [], "no predictions"),
        ([1], ["1"], "example 0: .* scores generated text, but the prediction is int 1, not str"),
        (["a", "b"], ["a", 2], "example 1: a reference is a text or a list of texts"),
        (["a"], [["a", None]], "example 0: a reference is a text or a list of texts"),
        (["a"], [[]], r"example 0: no reference \(an empty list\)"),
    ],
)
@pytest.mark.parametrize("name", ["rouge", "bleu", "chrf", "exact-match"])
def test_what_cannot_be_scored_is_refused(
    host: PluginHost, name: str, predictions: list[Any], references: list[Any], message: str
) -> None:
    if name != "exact-match":
        module = "rouge_score" if name == "rouge" else "sacrebleu"
        pytest.importorskip(module, reason=f"{module} is not installed ({INSTALL})")
    with pytest.raises(ValueError, match=message):
        compute(host, name, predictions, references)


def test_exact_match_refuses_tag_sequences_mixed_with_text(host: PluginHost) -> None:
    with pytest.raises(ValueError, match="tag sequences mixed with texts"):
        compute(host, "exact-match", [["O"], "text"], [["O"], "text"])
    with pytest.raises(ValueError, match="example 0: the prediction is a tag sequence but the reference is a str"):
        compute(host, "exact-match", [["O"]], ["O"])


@pytest.mark.parametrize(("name", "module"), [("rouge", "rouge_score"), ("bleu", "sacrebleu"), ("chrf", "sacrebleu")])
def test_without_the_extra_the_factory_names_the_install(
    host: PluginHost, monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # importlib.util.find_spec then finds nothing
    with pytest.raises(HoneError, match=rf"the {name} metric needs {module}, which is not installed: "
                                        r"pip install 'hone-ml\[generation\]'"):
        host.build("metric", name)
