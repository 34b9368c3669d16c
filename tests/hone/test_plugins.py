from __future__ import annotations

import importlib
import importlib.metadata
import itertools
import os
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hone
from hone.plugins import PluginHost, PluginInfo, PluginLoadWarning, load_plugins
from hone.registry import UnknownComponentError

BUILTIN_PLUGINS = {
    "hone.callbacks": {"callback": ["csv-logger"]},
    "hone.compressors": {"compressor": ["magnitude", "structured", "dynamic-int8", "weight-int8", "half"]},
    "hone.distillers": {"distiller": ["logits", "hidden"]},
    "hone.metrics": {"metric": ["accuracy", "precision", "recall", "f1", "entity-f1", "confusion-matrix"]},
    "hone.optimizers": {"optimizer": ["sgd", "adam", "adamw", "adafactor"]},
    "hone.readers": {"reader": ["conll", "tsv", "csv", "jsonl"]},
    "hone.schedulers": {"scheduler": ["constant", "linear", "cosine", "step", "exponential", "reduce-on-plateau"]},
    "hone.searchers": {"searcher": ["grid", "random", "tpe", "nsga2"]},
    "hone.formats": {"model_format": ["safetensors"]},
    "hone.stages": {"stage": ["train", "evaluate", "compress", "distill", "export"]},
    "hone.search": {"command": ["search"], "pruner": ["none", "median", "percentile", "hyperband", "successive-halving"],
               "spec_section": ["search"]},
    "hone.report": {"command": ["report", "compare"]},
    "hone.commands": {"command": ["validate", "run", "predict", "schema"]},
    "hone.runtimes": {"runtime": ["onnxruntime"]},
    "hone.exporters": {"exporter": ["onnx"]},
    "hone.adapters": {"adapter": ["lora", "dora"]},
    "hone.tasks": {"task": ["token-classification", "sequence-classification", "sequence-regression", "causal-lm", "seq2seq"]},
    "hone.lmeval": {"stage": ["lm-eval"]},
    "hone.selection": {"command": ["select"], "spec_section": ["selection"], "report_section": ["selection"]},
    "hone.trackers": {"callback": ["jsonl-logger", "tensorboard", "mlflow"]},
}

TOP_K = '''
from pydantic import BaseModel, ConfigDict
from hone.hookspecs import hookimpl


class TopKParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = 5


class TopK:
    def __init__(self, k):
        self.k = k

    def compute(self, output):
        return {"top_k": 1.0}


def top_k(params):
    """Top-k accuracy."""
    return TopK(params.k)


@hookimpl
def register_metrics(register):
    register("top-k", top_k, TopKParams, aliases=("topk",))
'''

RAISES_ON_IMPORT = '''
raise ImportError("needs the 'fancy-backend' package")
'''

HOOK_RAISES = '''
from hone.hookspecs import hookimpl


def half(params):
    return None


@hookimpl
def register_metrics(register):
    register("half-registered", half)
    raise RuntimeError("metric backend unavailable")
'''

WRONG_SIGNATURE = '''
from hone.hookspecs import hookimpl


@hookimpl
def register_metrics(reg, extra):
    reg("wrong", lambda params: None)
'''

DUPLICATE = '''
from hone.hookspecs import hookimpl


def my_accuracy(params):
    return None


def fresh(params):
    return None


@hookimpl
def register_metrics(register):
    register("fresh-metric", fresh)
    register("accuracy", my_accuracy)
'''

FAILURES = {
    "raises-on-import": (RAISES_ON_IMPORT, "ImportError: needs the 'fancy-backend' package"),
    "hook-raises": (HOOK_RAISES, "RuntimeError: metric backend unavailable"),
    "wrong-signature": (WRONG_SIGNATURE, "register_metrics"),
}

_unique = itertools.count()



def write_plugin(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


DistributionInstaller = Callable[..., str]


@pytest.fixture
def install_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DistributionInstaller]:
    """Install a plugin module as a real (metadata-only) distribution on sys.path; returns its module name."""
    site = tmp_path / "site"
    site.mkdir()
    modules: list[str] = []

    def install(distribution: str, source: str, *, entry_point: str, version: str = "1.2.3") -> str:
        module = f"hone_test_plugin_{next(_unique)}"  # unique: sys.modules outlives a test
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[hone.plugins]\n{entry_point} = {module}\n")
        modules.append(module)
        return module

    monkeypatch.syspath_prepend(str(site))
    yield install
    for module in modules:
        sys.modules.pop(module, None)


def plugin(host: PluginHost, name: str) -> PluginInfo:
    found = [info for info in host.plugins if info.name == name]
    assert len(found) == 1, [info.name for info in host.plugins]
    return found[0]


def load_quietly(*args: object, **kwargs: object) -> PluginHost:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginLoadWarning)
        return load_plugins(*args, **kwargs)  # type: ignore[arg-type]


def assert_builtins_work(host: PluginHost) -> None:
    for name, components in BUILTIN_PLUGINS.items():
        assert plugin(host, name).status == "ok", plugin(host, name).error
        for kind, names in components.items():
            for component in names:
                assert host.registries.get(kind, component).origin.distribution == "hone-ml"


def test_builtins_are_declared_as_hone_plugins_entry_points_of_hone_ml() -> None:
    entry_points = importlib.metadata.distribution("hone-ml").entry_points.select(group="hone.plugins")
    assert {ep.name: ep.value for ep in entry_points} == {name: f"hone_plugins.{name.removeprefix('hone.')}" for name in BUILTIN_PLUGINS}


def test_builtins_are_discovered_through_entry_points() -> None:
    host = load_quietly()
    for name in BUILTIN_PLUGINS:
        info = plugin(host, name)
        assert (info.source, info.distribution, info.version) == ("entry-point", "hone-ml", hone.__version__)
        assert (info.module, info.status, info.error) == (f"hone_plugins.{name.removeprefix('hone.')}", "ok", None)


def test_builtin_components_are_registered_with_their_origin() -> None:
    host = load_quietly()
    assert_builtins_work(host)
    adamw = host.registries.get("optimizer", "adamw")
    assert (adamw.origin.plugin, adamw.origin.module) == ("hone.optimizers", "hone_plugins.optimizers")
    for name, components in BUILTIN_PLUGINS.items():
        for kind, names in components.items():
            assert set(names) <= set(plugin(host, name).components[kind])


def test_entry_points_can_be_skipped() -> None:
    host = load_quietly(entry_points=False)
    assert host.plugins == []
    assert len(host.registries["metric"]) == 0


def test_plugins_dir_argument_loads_plain_py_files(tmp_path: Path) -> None:
    write_plugin(tmp_path / "plugins", "top_k", TOP_K)
    host = load_quietly([tmp_path / "plugins"])
    info = plugin(host, "top_k")
    assert (info.status, info.source, info.distribution) == ("ok", f"plugins-dir:{tmp_path / 'plugins'}", None)
    assert info.module == str(tmp_path / "plugins" / "top_k.py")
    assert info.components == {"metric": ["top-k"]}
    metric = host.registries.get("metric", "topk").build({"k": 3})
    assert metric.k == 3 and metric.compute(None) == {"top_k": 1.0}
    assert host.registries.get("metric", "top-k").doc == "Top-k accuracy."
    assert_builtins_work(host)


def test_explicit_doc_overrides_the_factory_docstring(tmp_path: Path) -> None:
    write_plugin(tmp_path, "top_k", TOP_K.replace('aliases=("topk",)', 'aliases=("topk",), doc="Share of hits in the top k.\\nDetails."'))
    host = load_quietly([tmp_path], entry_points=False)
    assert host.registries.get("metric", "top-k").doc == "Share of hits in the top k."


def test_plugins_dir_environment_variable_loads_every_listed_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin(tmp_path / "one", "top_k", TOP_K)
    write_plugin(tmp_path / "two", "fresh", DUPLICATE.replace('register("accuracy", my_accuracy)', ""))
    monkeypatch.setenv("HONE_PLUGINS_DIR", os.pathsep.join([str(tmp_path / "one"), str(tmp_path / "two")]))
    host = load_quietly()
    assert "top-k" in host.registries["metric"]
    assert "fresh-metric" in host.registries["metric"]


def test_one_folder_named_twice_is_loaded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin(tmp_path / "plugins", "top_k", TOP_K)
    monkeypatch.setenv("HONE_PLUGINS_DIR", str(tmp_path / "plugins"))
    monkeypatch.chdir(tmp_path)
    host = load_quietly([Path("plugins")])
    assert [info.name for info in host.plugins if info.source.startswith("plugins-dir")] == ["top_k"]


def test_files_starting_with_underscore_are_not_plugins(tmp_path: Path) -> None:
    write_plugin(tmp_path, "_helpers", RAISES_ON_IMPORT)
    write_plugin(tmp_path, "top_k", TOP_K)
    host = load_quietly([tmp_path], entry_points=False)
    assert [info.name for info in host.plugins] == ["top_k"]


def test_missing_plugins_dir_is_reported_not_raised(tmp_path: Path) -> None:
    with pytest.warns(PluginLoadWarning, match="plugins directory not found"):
        host = load_plugins([tmp_path / "nowhere"])
    assert host.failures()[0].status == "failed"
    assert_builtins_work(host)


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_failing_plugin_from_a_distribution_is_isolated(case: str, install_distribution: DistributionInstaller, tmp_path: Path) -> None:
    source, error = FAILURES[case]
    module = install_distribution("hone-fragile", source, entry_point="fragile")
    write_plugin(tmp_path / "plugins", "top_k", TOP_K)
    with pytest.warns(PluginLoadWarning) as caught:
        host = load_plugins([tmp_path / "plugins"])
    info = plugin(host, "fragile")
    assert (info.status, info.distribution, info.version, info.module) == ("failed", "hone-fragile", "1.2.3", module)
    assert error in (info.error or "")
    assert info.components == {}
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert len(messages) == 1
    assert "'fragile'" in messages[0] and "hone-fragile 1.2.3" in messages[0] and error in messages[0]
    assert "half-registered" not in host.registries["metric"] and "wrong" not in host.registries["metric"]
    assert "top-k" in host.registries["metric"]
    assert_builtins_work(host)


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_failing_plugins_dir_module_is_isolated(case: str, tmp_path: Path) -> None:
    source, error = FAILURES[case]
    path = write_plugin(tmp_path, "fragile", source)
    write_plugin(tmp_path, "top_k", TOP_K)
    with pytest.warns(PluginLoadWarning, match=r"hone plugin 'fragile' \(plugins-dir:.*\) was not loaded") as caught:
        host = load_plugins([tmp_path])
    assert str(path) in str(caught[0].message)
    info = plugin(host, "fragile")
    assert info.status == "failed" and error in (info.error or "")
    assert plugin(host, "top_k").status == "ok"
    assert_builtins_work(host)


def test_failures_lists_only_failed_plugins(tmp_path: Path) -> None:
    write_plugin(tmp_path, "fragile", RAISES_ON_IMPORT)
    write_plugin(tmp_path, "top_k", TOP_K)
    host = load_plugins([tmp_path], warn=False)
    assert [info.name for info in host.failures()] == ["fragile"]


def test_no_warning_when_warn_is_false(tmp_path: Path) -> None:
    write_plugin(tmp_path, "fragile", RAISES_ON_IMPORT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        host = load_plugins([tmp_path], warn=False)
    assert plugin(host, "fragile").status == "failed"


def test_plugin_taking_a_registered_name_fails_and_the_first_keeps_it(tmp_path: Path) -> None:
    write_plugin(tmp_path, "dup", DUPLICATE)
    with pytest.warns(PluginLoadWarning, match="'dup'"):
        host = load_plugins([tmp_path])
    info = plugin(host, "dup")
    assert info.status == "failed"
    assert "Duplicate metric 'accuracy'" in (info.error or "")
    assert "plugin 'hone.metrics' (hone-ml 0.1.0)" in (info.error or "")
    assert "plugin 'dup' (no distribution)" in (info.error or "")
    assert host.registries.get("metric", "accuracy").origin.distribution == "hone-ml"
    assert "fresh-metric" not in host.registries["metric"]
    assert_builtins_work(host)


def test_duplicate_between_two_distributions_names_both(install_distribution: DistributionInstaller) -> None:
    install_distribution("hone-topk-a", TOP_K, entry_point="topk-a", version="1.0")
    install_distribution("hone-topk-b", TOP_K, entry_point="topk-b", version="2.0")
    with pytest.warns(PluginLoadWarning, match=r"'topk-b' \(hone-topk-b 2\.0"):
        host = load_plugins()
    error = plugin(host, "topk-b").error or ""
    assert "Duplicate metric 'top-k'" in error
    assert "plugin 'topk-a' (hone-topk-a 1.0)" in error and "plugin 'topk-b' (hone-topk-b 2.0)" in error
    assert plugin(host, "topk-a").status == "ok"
    assert host.registries.get("metric", "topk").origin.distribution == "hone-topk-a"


def test_invalid_component_name_fails_the_plugin(tmp_path: Path) -> None:
    write_plugin(tmp_path, "shouty", TOP_K.replace('"top-k"', '"Top K"'))
    with pytest.warns(PluginLoadWarning, match="invalid metric name 'Top K'"):
        host = load_plugins([tmp_path])
    assert plugin(host, "shouty").status == "failed"


def test_disabled_plugins_dir_module_is_not_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin(tmp_path, "fragile", RAISES_ON_IMPORT)
    write_plugin(tmp_path, "top_k", TOP_K)
    monkeypatch.setenv("HONE_DISABLE_PLUGINS", "fragile")
    host = load_quietly([tmp_path])
    assert (plugin(host, "fragile").status, plugin(host, "fragile").error) == ("disabled", None)
    assert "hone_local_plugins.fragile" not in sys.modules
    assert plugin(host, "top_k").status == "ok"


def test_disabled_distribution_plugin_is_not_imported(install_distribution: DistributionInstaller, monkeypatch: pytest.MonkeyPatch) -> None:
    module = install_distribution("hone-fragile", RAISES_ON_IMPORT, entry_point="fragile")
    monkeypatch.setenv("HONE_DISABLE_PLUGINS", " fragile , someone-else")
    host = load_quietly()
    assert plugin(host, "fragile").status == "disabled"
    assert module not in sys.modules
    assert_builtins_work(host)


def test_a_whole_distribution_can_be_disabled(install_distribution: DistributionInstaller, monkeypatch: pytest.MonkeyPatch) -> None:
    module = install_distribution("hone-fragile", RAISES_ON_IMPORT, entry_point="fragile")
    monkeypatch.setenv("HONE_DISABLE_PLUGINS", "hone-fragile")
    host = load_quietly()
    assert plugin(host, "fragile").status == "disabled" and module not in sys.modules


def test_disabling_a_builtin_removes_its_components(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HONE_DISABLE_PLUGINS", "hone.optimizers")
    host = load_quietly()
    assert plugin(host, "hone.optimizers").status == "disabled"
    with pytest.raises(UnknownComponentError, match="Unknown optimizer 'adamw'. Available: none installed"):
        host.registries.get("optimizer", "adamw")
    assert "accuracy" in host.registries["metric"]


def test_disabled_argument_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HONE_DISABLE_PLUGINS", "hone.optimizers")
    host = load_quietly(disabled=["hone.metrics"])
    assert plugin(host, "hone.optimizers").status == "ok"
    assert plugin(host, "hone.metrics").status == "disabled"


def test_allow_list_loads_only_the_named_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HONE_ALLOW_PLUGINS", "hone.metrics,hone.readers")
    host = load_quietly()
    assert {info.name for info in host.plugins if info.status == "ok"} == {"hone.metrics", "hone.readers"}
    optimizers = plugin(host, "hone.optimizers")
    assert (optimizers.status, optimizers.error) == ("disabled", "not in HONE_ALLOW_PLUGINS")
    assert len(host.registries["optimizer"]) == 0 and "conll" in host.registries["reader"]


def test_allow_list_accepts_a_distribution_name(install_distribution: DistributionInstaller, monkeypatch: pytest.MonkeyPatch) -> None:
    module = install_distribution("hone-fragile", RAISES_ON_IMPORT, entry_point="fragile")
    monkeypatch.setenv("HONE_ALLOW_PLUGINS", "hone-ml")
    host = load_quietly()
    assert_builtins_work(host)
    assert plugin(host, "fragile").status == "disabled" and module not in sys.modules


def test_allow_list_applies_to_plugins_dir_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin(tmp_path, "fragile", RAISES_ON_IMPORT)
    write_plugin(tmp_path, "top_k", TOP_K)
    monkeypatch.setenv("HONE_ALLOW_PLUGINS", "hone-ml,top_k")
    host = load_quietly([tmp_path])
    assert plugin(host, "fragile").status == "disabled"
    assert "hone_local_plugins.fragile" not in sys.modules
    assert plugin(host, "top_k").status == "ok"
    assert_builtins_work(host)


def test_plugin_info_as_dict_has_what_hone_plugins_reports(tmp_path: Path) -> None:
    write_plugin(tmp_path, "top_k", TOP_K)
    row = plugin(load_quietly([tmp_path], entry_points=False), "top_k").as_dict()
    assert row == {
        "name": "top_k",
        "kind": ["metric"],
        "components": {"metric": ["top-k"]},
        "distribution": None,
        "version": None,
        "module": str(tmp_path / "top_k.py"),
        "source": f"plugins-dir:{tmp_path}",
        "status": "ok",
        "error": None,
    }


def test_an_entry_point_name_clash_fails_the_later_plugin_and_disabling_it_lists_it_disabled(
        install_distribution: DistributionInstaller, monkeypatch: pytest.MonkeyPatch) -> None:
    first = install_distribution("hone-aaa", TOP_K, entry_point="acme")
    second = install_distribution("hone-bbb", TOP_K.replace('"top-k"', '"top-k-bis"'), entry_point="acme")
    with pytest.warns(PluginLoadWarning, match="entry point name 'acme' is also used by hone-"):
        host = load_plugins()
    statuses = {info.distribution: info.status for info in host.plugins if info.name == "acme"}
    assert sorted(statuses.values()) == ["failed", "ok"]  # the first found keeps the name, the other fails
    metrics = {"hone-aaa": "top-k", "hone-bbb": "top-k-bis"}
    assert {name for dist, name in metrics.items() if name in host.registries["metric"]} == {
        metrics[dist] for dist, status in statuses.items() if status == "ok"}
    sys.modules.pop(first, None), sys.modules.pop(second, None)
    monkeypatch.setenv("HONE_DISABLE_PLUGINS", "hone-bbb")  # the clashing distribution switched off by name
    host = load_quietly()
    statuses = {(info.distribution, info.status, info.error) for info in host.plugins if info.name == "acme"}
    assert statuses == {("hone-aaa", "ok", None), ("hone-bbb", "disabled", None)}
    assert second not in sys.modules and first in sys.modules
    monkeypatch.setenv("HONE_DISABLE_PLUGINS", "hone-aaa")  # or the other one: the later then loads
    host = load_quietly()
    assert "top-k-bis" in host.registries["metric"] and "top-k" not in host.registries["metric"]
    assert_builtins_work(host)
