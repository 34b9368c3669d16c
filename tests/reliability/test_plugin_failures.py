"""A plugin that raises at run time: the error names it, the run is marked failed, and resumes after a fix."""

from __future__ import annotations

import importlib
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hone.cli import main
from hone.components import EvalOutput
from hone.errors import ComponentError
from hone.plugins import load_plugins
from hone.run.events import read_events
from hone.run.runner import run
from hone.spec.loading import load_spec
from hone_plugins.stages.evaluation import compute_metrics

from tests.reproducible import reproducible

from .helpers import ner_spec, read_json, write_plugin, write_spec

FLAKY_METRIC = '''
from hone.hookspecs import hookimpl

BROKEN = {broken}


class Flaky:
    def compute(self, output):
        if BROKEN:
            return {{"flaky": 1 / 0}}
        return {{"flaky": float(len(output.predictions))}}


def flaky(params):
    """A metric that divides by zero until it is fixed."""
    return Flaky()


@hookimpl
def register_metrics(register):
    register("flaky", flaky)
'''

FLAKY_CALLBACK = '''
from hone.hookspecs import hookimpl

BROKEN = {broken}


class Flaky:
    def on_epoch_end(self, event, data):
        if BROKEN:
            raise KeyError("samples_per_second")


def flaky_log(params, run_dir):
    """A callback that fails at the end of each epoch until it is fixed."""
    return Flaky()


@hookimpl
def register_callbacks(register):
    register("flaky-log", flaky_log)
'''

GRUMPY_SCHEDULER = '''
from hone.hookspecs import hookimpl


class Grumpy:
    interval = "step"

    def __init__(self):
        self.steps = 0

    def step(self, metrics=None):
        self.steps += 1
        if self.steps == 3:
            raise RuntimeError("learning rate table exhausted")

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


def grumpy(params, optimizer, total_steps):
    """A scheduler that raises on its third step."""
    return Grumpy()


@hookimpl
def register_schedulers(register):
    register("grumpy", grumpy)
'''

CASES = {
    "metric": ("flaky_metric", FLAKY_METRIC, {"metrics": ["entity-f1", "flaky"]}, {},
               "metric 'flaky' from plugin 'flaky_metric' (no distribution) in {file} failed: ZeroDivisionError: division by zero"),
    "callback": ("flaky_callback", FLAKY_CALLBACK, {}, {"callbacks": ["flaky-log"]},
                 "callback 'flaky-log' from plugin 'flaky_callback' (no distribution) in {file} failed on epoch_end: KeyError"),
}


def flaky_spec(tmp_path: Path, tiny_bert: Path, case: str, broken: bool) -> Path:
    module, source, stage_fields, spec_fields, _ = CASES[case]
    write_plugin(tmp_path / "plugins", module, source.format(broken=broken))
    spec = ner_spec(tiny_bert, plugins_dir=["plugins"], **spec_fields)
    spec["stages"][0].update(checkpoint_steps=4, **stage_fields)
    return write_spec(tmp_path, spec)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_plugin_raising_during_a_run_is_named_recorded_and_resumable_after_a_fix(tmp_path: Path, tiny_bert: Path, case: str) -> None:
    expected = read_json(run(*load_spec(flaky_spec(tmp_path / "fixed", tiny_bert, case, broken=False)), out=tmp_path / "fixed" / "run")
                         / "metrics.json")
    spec_file = flaky_spec(tmp_path, tiny_bert, case, broken=True)
    message = CASES[case][4].format(file=tmp_path / "plugins" / f"{CASES[case][0]}.py")
    spec, host = load_spec(spec_file)
    with pytest.raises(ComponentError) as info:
        run(spec, host, out=tmp_path / "run")
    assert str(info.value).startswith(message)
    state = read_json(tmp_path / "run" / "state.json")
    assert state["status"] == "failed" and state["error"].startswith(message)
    last = read_events(tmp_path / "run" / "events.jsonl")[-1]
    assert (last["event"], last["status"]) == ("run_failed", "failed") and last["error"].startswith(message)

    flaky_spec(tmp_path, tiny_bert, case, broken=False)  # the fix
    before = len(read_events(tmp_path / "run" / "events.jsonl"))
    assert main(["run", str(spec_file), "--out", str(tmp_path / "run"), "--resume", "-q"]) == 0
    resumed = [e for e in read_events(tmp_path / "run" / "events.jsonl")[before:] if e["event"] == "stage_start"]
    assert resumed[0]["resumed_at_step"] == 8  # continued from the checkpoint, not from scratch
    assert reproducible(read_json(tmp_path / "run" / "metrics.json")) == reproducible(expected)
    assert read_json(tmp_path / "run" / "state.json")["status"] == "completed"


def test_any_exception_from_plugin_code_names_the_plugin_file_and_line(tmp_path: Path, tiny_bert: Path) -> None:
    path = write_plugin(tmp_path / "plugins", "grumpy_scheduler", GRUMPY_SCHEDULER)
    spec = ner_spec(tiny_bert, plugins_dir=["plugins"])
    spec["stages"][0]["scheduler"] = "grumpy"
    spec, host = load_spec(write_spec(tmp_path, spec))
    with pytest.raises(ComponentError, match=rf"RuntimeError: learning rate table exhausted \(raised by plugin 'grumpy_scheduler' "
                                             rf"\({path}\), {path}:\d+ in step\)") as info:
        run(spec, host, out=tmp_path / "run")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "grumpy_scheduler" in read_json(tmp_path / "run" / "state.json")["error"]


@pytest.fixture
def flaky_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """FLAKY_METRIC installed as the distribution hone-flaky 2.0.1 (metadata on sys.path, no pip)."""
    site = tmp_path / "site"
    module = "hone_flaky_metric_dist"
    (site / "hone_flaky-2.0.1.dist-info").mkdir(parents=True)
    (site / f"{module}.py").write_text(textwrap.dedent(FLAKY_METRIC.format(broken=True)))
    (site / "hone_flaky-2.0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: hone-flaky\nVersion: 2.0.1\n")
    (site / "hone_flaky-2.0.1.dist-info" / "entry_points.txt").write_text(f"[hone.plugins]\nflaky-dist = {module}\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield module
    sys.modules.pop(module, None)


def test_errors_from_an_installed_plugin_name_its_distribution_and_version(flaky_distribution: str) -> None:
    host = load_plugins()
    assert host.describe("metric", "flaky") == "plugin 'flaky-dist' (hone-flaky 2.0.1)"
    metric = host.build("metric", "flaky")
    output = EvalOutput(predictions=[["O"]], references=[["O"]], label_names=["O"], loss=0.0, scores=[None])
    with pytest.raises(ComponentError, match=r"metric 'flaky' from plugin 'flaky-dist' \(hone-flaky 2.0.1\) failed: ZeroDivisionError"):
        compute_metrics([("flaky", metric)], output, {"flaky": host.describe("metric", "flaky")})
    try:
        raise_inside(metric, output)
    except ZeroDivisionError as error:
        assert host.blame(error) is not None and host.blame(error).startswith("plugin 'flaky-dist' (hone-flaky 2.0.1), ")


def raise_inside(metric: object, output: EvalOutput) -> None:
    metric.compute(output)  # type: ignore[attr-defined]


def test_a_factory_that_raises_is_named_with_its_distribution(tmp_path: Path) -> None:
    write_plugin(tmp_path, "needy", '''
        from hone.hookspecs import hookimpl

        def needy(params):
            """Needs a backend that is not there."""
            raise ImportError("needs the 'fancy' package")

        @hookimpl
        def register_metrics(register):
            register("needy", needy)
    ''')
    host = load_plugins([tmp_path])
    with pytest.raises(ComponentError, match=rf"metric 'needy' from plugin 'needy' \(no distribution\) in {tmp_path / 'needy.py'} "
                                             r"failed: ImportError: needs the 'fancy' package"):
        host.build("metric", "needy")


SCALAR_METRICS = '''
from hone.hookspecs import hookimpl


class Scalars:
    def compute(self, output):
        import numpy, torch

        return {"np_acc": numpy.float32(0.5), "torch_acc": torch.tensor(0.25), "count": numpy.int64(3),
                "per_type": {"PER": torch.tensor(1.0, dtype=torch.float64)}, "steps": [numpy.float64(0.5)]}


class Tensor:
    def compute(self, output):
        import torch

        return {"scores": torch.tensor([0.5, 0.25])}


@hookimpl
def register_metrics(register):
    register("scalars", lambda params: Scalars())
    register("tensor", lambda params: Tensor())
'''


def test_numpy_and_torch_scalars_from_a_metric_are_numbers_and_a_tensor_is_refused_naming_its_plugin(tmp_path: Path) -> None:
    import json

    write_plugin(tmp_path, "scalar_metrics", SCALAR_METRICS)
    host = load_plugins([tmp_path])
    output = EvalOutput(predictions=[["O"]], references=[["O"]], label_names=["O"], loss=0.0, scores=[None])
    results = compute_metrics([("scalars", host.build("metric", "scalars"))], output)
    assert json.loads(json.dumps(results)) == {"loss": 0.0, "np_acc": 0.5, "torch_acc": 0.25, "count": 3,
                                               "per_type": {"PER": 1.0}, "steps": [0.5]}
    assert type(results["np_acc"]) is float and type(results["count"]) is int
    with pytest.raises(ComponentError, match=r"metric 'tensor' from plugin 'scalar_metrics' .*returned torch\.Tensor "
                                             r"of shape \(2,\) .*for 'scores'"):
        compute_metrics([("tensor", host.build("metric", "tensor"))], output, {"tensor": host.describe("metric", "tensor")})


def test_a_hook_raising_at_registration_is_reported_with_the_hook_and_the_plugins_line(tmp_path: Path) -> None:
    path = write_plugin(tmp_path, "early", '''
        from hone.hookspecs import hookimpl

        @hookimpl
        def register_metrics(register):
            settings = {}
            register("early", lambda params: None, threshold=settings["threshold"])
    ''')
    bad_name = write_plugin(tmp_path, "badname", '''
        from hone.hookspecs import hookimpl

        @hookimpl
        def register_callbacks(register):
            register("Bad Name", lambda params, run_dir: None)
    ''')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        host = load_plugins([tmp_path])
    assert any("'early'" in str(w.message) and f"register_metrics failed at {path}:7: KeyError" in str(w.message)
               for w in caught)
    infos = {info.name: info for info in host.failures()}
    assert infos["early"].error == f"register_metrics failed at {path}:7: KeyError: 'threshold'"
    assert infos["badname"].error.startswith(f"register_callbacks failed at {bad_name}:6: RegistryError: invalid callback name")
