from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from hone.components import EvalOutput

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "hone-example-plugin"
BROKEN = REPO / "examples" / "hone-broken-plugin"

TOKEN_F1_SPEC = """\
model: any-model-name
task: token-classification
data: {reader: conll, train: train.txt, test: test.txt}
stages:
  - type: evaluate
    metrics: [entity-f1, example-token-f1, exact-match, {name: example-token-f1, ignore_prefix: true}]
"""


@dataclass(frozen=True)
class Installed:
    root: Path
    site: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HONE_") and k != "PYTHONPATH"}
        return {**env, "PYTHONPATH": str(self.site), "XDG_CACHE_HOME": str(self.root / "cache"), **extra}

    def hone(self, *args: str, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "import sys; from hone.cli import main; sys.exit(main())", *args]
        return subprocess.run(command, capture_output=True, text=True, env=self.env(**extra), cwd=cwd or self.root, timeout=300)

    def plugins(self, **extra: str) -> dict[str, dict[str, Any]]:
        result = self.hone("plugins", "--json", **extra)
        assert result.returncode == 0, result.stderr
        return {row["name"]: row for row in json.loads(result.stdout)}


def pip_install(package: Path, root: Path, site: Path) -> None:
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = root / "src" / package.name
    shutil.copytree(package, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    command = [
        sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
        "--no-cache-dir", "--disable-pip-version-check", "--quiet", "--target", str(site), str(source),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("example-plugins")
    site = root / "site"
    for package in (EXAMPLE, BROKEN):
        pip_install(package, root, site)
    return Installed(root, site)


@pytest.fixture(scope="module")
def example() -> ModuleType:
    sys.path.insert(0, str(EXAMPLE / "src"))
    try:
        return importlib.import_module("hone_example_plugin")
    finally:
        sys.path.remove(str(EXAMPLE / "src"))


def registered(module: ModuleType, hook: str, info: bool = False) -> dict[str, Any]:
    """What a hook registers, by name: (factory, params model), or with ``info`` its declarations."""
    found: dict[str, Any] = {}

    def register(name: str, factory: Callable[..., Any], params: Any = None, *, aliases: Any = (), doc: Any = None,
                 **declared: Any) -> None:
        found[name] = declared if info else (factory, params)

    getattr(module, hook)(register=register)
    return found


def token_f1(example: ModuleType, **params: Any) -> Any:
    factory, model = registered(example, "register_metrics")["example-token-f1"]
    return factory(model(**params))


def prune_small(example: ModuleType, **params: Any) -> Any:
    factory, model = registered(example, "register_compressors")["prune-small"]
    return factory(model(**params))


def tiny_model() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Embedding(10, 8),
        torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU()),
        torch.nn.Linear(16, 4),
    )


def linear_weights(model: Any) -> dict[str, Any]:
    import torch

    return {name: m.weight for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def test_example_plugin_registers_a_metric_and_a_compressor(example: ModuleType) -> None:
    assert set(registered(example, "register_metrics")) == {"example-token-f1"}
    assert set(registered(example, "register_compressors")) == {"prune-small", "prune-unseen-embeddings"}


def test_example_plugin_module_does_not_import_torch() -> None:
    code = f"import sys; sys.path.insert(0, {str(EXAMPLE / 'src')!r}); import hone_example_plugin; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_token_f1_hand_computed(example: ModuleType) -> None:
    output = EvalOutput(
        predictions=[["B-PER", "I-PER", "O"], ["O", "B-LOC"], ["B-ORG"]],
        references=[["B-PER", "B-PER", "O"], ["O", "B-LOC"], ["O"]],
    )
    # entity tokens: predicted B-PER I-PER B-LOC B-ORG (4), gold B-PER B-PER B-LOC (3); right: B-PER, B-LOC
    assert token_f1(example).compute(output) == {
        "token_precision": 0.5, "token_recall": pytest.approx(2 / 3), "token_f1": pytest.approx(4 / 7)
    }
    # entity types only: I-PER now matches B-PER
    assert token_f1(example, ignore_prefix=True).compute(output) == {
        "token_precision": 0.75, "token_recall": 1.0, "token_f1": pytest.approx(6 / 7)
    }


def test_token_f1_outside_tag_and_tuples(example: ModuleType) -> None:
    output = EvalOutput(predictions=[("NONE", "PER")], references=[["NONE", "LOC"]])
    assert token_f1(example, outside="NONE").compute(output)["token_f1"] == 0.0
    assert token_f1(example).compute(output)["token_f1"] == 0.5  # NONE is an entity tag here, and right
    nothing = EvalOutput(predictions=[["O", "O"]], references=[["O", "O"]])
    assert token_f1(example).compute(nothing) == {"token_precision": 0.0, "token_recall": 0.0, "token_f1": 0.0}


def test_token_f1_declares_the_results_it_returns(example: ModuleType) -> None:
    info = registered(example, "register_metrics", info=True)["example-token-f1"]
    assert info == {"results": {"token_precision": "max", "token_recall": "max", "token_f1": "max"}}
    output = EvalOutput(predictions=[["B-PER"]], references=[["B-PER"]])
    assert set(token_f1(example).compute(output)) == set(info["results"])


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [
        ([["O"]], [["O"], ["O"]], "1 predictions but 2 references"),
        ([], [], "no predictions"),
        (["pos"], ["pos"], "example 0: example-token-f1 scores tag sequences, got str"),
        ([["O"], ["O"]], [["O"], ["O", "B-PER"]], "example 1: 1 predicted tags but 2 reference tags"),
    ],
)
def test_token_f1_refuses_what_it_cannot_score(example: ModuleType, predictions: list[Any], references: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        token_f1(example).compute(EvalOutput(predictions=predictions, references=references))


@pytest.mark.parametrize("params", [{}, {"threshold": 0.1, "fraction": 0.5}, {"fraction": 1.5}, {"threshold": -1}, {"fraction": 0.5, "amount": 1}])
def test_prune_small_params_are_validated(example: ModuleType, params: dict[str, Any]) -> None:
    _, model = registered(example, "register_compressors")["prune-small"]
    with pytest.raises(ValidationError):
        model(**params)


def test_prune_small_threshold_zeroes_small_linear_weights_only(example: ModuleType) -> None:
    model = tiny_model()
    before = {name: w.detach().clone() for name, w in model.state_dict().items()}
    pruned, report = prune_small(example, threshold=0.1).compress(model, None)
    assert pruned is model
    after = model.state_dict()
    assert {name: w.shape for name, w in after.items()} == {name: w.shape for name, w in before.items()}
    for name in ("1.0.weight", "2.weight"):
        small = before[name].abs() < 0.1
        assert bool((after[name][small] == 0).all()) and bool((after[name][~small] == before[name][~small]).all())
    for name in ("0.weight", "1.0.bias", "2.bias"):
        assert bool((after[name] == before[name]).all()), name
    expected = sum(int((before[n].abs() < 0.1).sum()) for n in ("1.0.weight", "2.weight")) / (8 * 16 + 16 * 4)
    assert report["sparsity"] == pytest.approx(expected) and report["sparsity"] > 0


def test_prune_small_fraction_reaches_the_sparsity_asked_for(example: ModuleType) -> None:
    import torch

    model = tiny_model()
    before = torch.cat([w.detach().abs().flatten() for w in linear_weights(model).values()])
    _, report = prune_small(example, fraction=0.5).compress(model, None)
    after = torch.cat([w.detach().flatten() for w in linear_weights(model).values()])
    assert report["parameters"] == 8 * 16 + 16 * 4 == after.numel()
    assert report["nonzero"] == int(torch.count_nonzero(after)) == 96
    assert report["sparsity"] == 0.5
    assert float(before[after == 0].max()) <= float(before[after != 0].min())


def test_prune_small_reports_sparsity_per_layer(example: ModuleType) -> None:
    import torch

    model = tiny_model()
    _, report = prune_small(example, fraction=0.3).compress(model, None)
    layers = linear_weights(model)
    assert set(report["layers"]) == {"1.0", "2"}
    for name, weight in layers.items():
        assert report["layers"][name] == pytest.approx(1 - int(torch.count_nonzero(weight)) / weight.numel())
    assert report["rule"] == {"fraction": 0.3}


def test_prune_small_fraction_does_not_overshoot_on_ties(example: ModuleType) -> None:
    import torch

    model = torch.nn.Linear(10, 10)
    with torch.no_grad():
        model.weight.fill_(0.5)
    _, report = prune_small(example, fraction=0.25).compress(model, None)
    assert report["nonzero"] == 75 and int(torch.count_nonzero(model.weight)) == 75


@pytest.mark.parametrize(("fraction", "sparsity"), [(0.0, 0.0), (1.0, 1.0)])
def test_prune_small_fraction_bounds(example: ModuleType, fraction: float, sparsity: float) -> None:
    _, report = prune_small(example, fraction=fraction).compress(tiny_model(), None)
    assert report["sparsity"] == sparsity


@pytest.mark.slow
def test_installed_example_plugin_is_listed_with_its_distribution(installed: Installed) -> None:
    row = installed.plugins()["example"]
    assert (row["status"], row["error"]) == ("ok", None)
    assert (row["distribution"], row["version"]) == ("hone-example-plugin", "0.1.0")
    assert (row["module"], row["source"]) == ("hone_example_plugin", "entry-point")
    assert row["components"] == {"compressor": ["prune-small", "prune-unseen-embeddings"], "metric": ["example-token-f1"]}
    assert row["kind"] == ["compressor", "metric"]


@pytest.mark.slow
def test_broken_plugin_is_listed_as_failed_and_builtins_still_work(installed: Installed) -> None:
    rows = installed.plugins()
    broken = rows["broken"]
    assert (broken["status"], broken["distribution"], broken["version"]) == ("failed", "hone-broken-plugin", "0.1.0")
    assert broken["error"] == "ModuleNotFoundError: No module named 'hone_missing_backend'"
    assert broken["components"] == {}
    builtins = [row for row in rows.values() if row["distribution"] == "hone-ml"]
    assert len(builtins) >= 6 and all(row["status"] == "ok" for row in builtins)
    assert rows["example"]["status"] == "ok"


@pytest.mark.slow
def test_validate_accepts_the_plugin_metric_beside_builtins_and_warns_about_the_broken_plugin(installed: Installed, tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(TOKEN_F1_SPEC)
    for name in ("train.txt", "test.txt"):  # hone validate checks that the data files exist
        (tmp_path / name).touch()
    result = installed.hone("validate", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "spec.yaml: valid (1 stage: 0-evaluate)" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: hone plugin 'broken'")]
    assert len(warnings) == 1
    assert "hone-broken-plugin 0.1.0" in warnings[0] and "No module named 'hone_missing_backend'" in warnings[0]


@pytest.mark.slow
def test_validate_rejects_a_misspelt_plugin_metric_with_a_suggestion(installed: Installed, tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(TOKEN_F1_SPEC.replace("[entity-f1, example-token-f1,", "[entity-f1, example-token-f,"))
    result = installed.hone("validate", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert ("spec.yaml:6: stages[0].metrics[1].name: Unknown metric 'example-token-f'. "
            "Did you mean 'example-token-f1'?") in result.stderr


@pytest.mark.slow
def test_validate_checks_the_plugins_params(installed: Installed, tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(TOKEN_F1_SPEC.replace("ignore_prefix: true", "ignore_prefx: true"))
    result = installed.hone("validate", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown field 'ignore_prefx'. Did you mean 'ignore_prefix'?" in result.stderr


@pytest.mark.slow
def test_disabling_the_broken_plugin_silences_it(installed: Installed, tmp_path: Path) -> None:
    assert installed.plugins(HONE_DISABLE_PLUGINS="broken")["broken"]["status"] == "disabled"
    (tmp_path / "spec.yaml").write_text(TOKEN_F1_SPEC)
    for name in ("train.txt", "test.txt"):  # hone validate checks that the data files exist
        (tmp_path / name).touch()
    result = installed.hone("validate", "spec.yaml", cwd=tmp_path, HONE_DISABLE_PLUGINS="hone-broken-plugin")
    assert result.returncode == 0 and "warning" not in result.stderr


@pytest.mark.slow
def test_installed_prune_small_is_built_from_the_registry(installed: Installed) -> None:
    code = textwrap.dedent(
        """
        import json, torch
        from hone.plugins import load_plugins
        compressor = load_plugins(warn=False).registries.get("compressor", "prune-small").build({"fraction": 0.75})
        model, report = compressor.compress(torch.nn.Linear(8, 8), None)
        print(json.dumps({"sparsity": report["sparsity"], "shape": list(model.weight.shape)}))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=installed.env(), timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"sparsity": 0.75, "shape": [8, 8]}


@pytest.mark.slow
def test_install_leaves_nothing_in_the_environment_or_the_sources(installed: Installed) -> None:
    for distribution in ("hone-example-plugin", "hone-broken-plugin"):
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.distribution(distribution)
    without = subprocess.run(
        [sys.executable, "-m", "hone", "plugins", "--json"],
        capture_output=True,
        text=True,
        env={**installed.env(), "PYTHONPATH": ""},
        timeout=300,
    )
    assert without.returncode == 0, without.stderr
    assert {row["name"] for row in json.loads(without.stdout)}.isdisjoint({"example", "broken"})
    for package in (EXAMPLE, BROKEN):
        assert not (package / "build").exists()
        assert not list(package.rglob("*.egg-info"))
