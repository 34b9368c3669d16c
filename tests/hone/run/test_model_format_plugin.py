"""A model format from a plugins directory: every checkpoint, the best weights and the final model go through it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from hone.errors import Interrupted
from hone.run.runner import run
from hone.spec.loading import load_spec

from tests.runs import ner_spec, write_spec
from tests.runs import InterruptAt

HALF_STORE = '''
"""Checkpoints in float16 (half the disk), a note of the dtype beside them; the final model as hone's own."""
from hone import NoParams, hookimpl


class HalfStore:
    def __init__(self, host):
        self.inner = host.build("model_format", "safetensors", host)

    def tensors(self, model):
        return {k: v.half() if v.is_floating_point() else v for k, v in self.inner.tensors(model).items()}

    def fit(self, template, tensors):
        return self.inner.fit(template, {k: v.to(template[k].dtype) if k in template else v for k, v in tensors.items()})

    def write_structure(self, model, folder):
        (folder / "half.json").write_text('{"dtype": "float16"}')
        return ["half.json", *self.inner.write_structure(model, folder)]

    def rebuild(self, model, folder):
        with open(folder.parents[1] / "rebuilt.txt", "a") as log:
            log.write(folder.name + "\\n")
        return self.inner.rebuild(model, folder)

    def save(self, model, folder):
        self.inner.save(model, folder)


@hookimpl
def register_model_formats(register):
    register("half-store", lambda params, host: HalfStore(host), params=NoParams)
'''


def half_store_spec(tmp_path: Path, model: Path) -> Path:
    (tmp_path / "plugins").mkdir(exist_ok=True)
    (tmp_path / "plugins" / "half_store.py").write_text(textwrap.dedent(HALF_STORE))
    spec = ner_spec(model, plugins_dir=["plugins"], model_format="half-store")
    spec["data"]["limit"] = 24
    spec["checkpoints"] = {"keep": 2, "after_run": "all"}
    return write_spec(tmp_path, spec)


def test_a_plugin_model_format_saves_every_checkpoint_and_rebuilds_on_resume(tmp_path: Path, tiny_bert: Path) -> None:
    from safetensors.torch import load_file

    spec, host = load_spec(half_store_spec(tmp_path, tiny_bert))
    with pytest.raises(Interrupted):
        run(spec, host, out=tmp_path / "run", callbacks=[("interrupt", InterruptAt("all", 2))])
    resumed = run(spec, host, out=tmp_path / "run", resume=True)
    checkpoints = [p for p in (resumed / "checkpoints").iterdir() if p.is_dir()]
    assert checkpoints and all("half.json" in json.loads((p / "manifest.json").read_text()) for p in checkpoints)
    weights = load_file(str(checkpoints[0] / "model.safetensors"))
    assert {str(t.dtype) for t in weights.values() if t.is_floating_point()} == {"torch.float16"}
    rebuilt = (resumed / "rebuilt.txt").read_text().splitlines()
    assert len(rebuilt) == 1 and rebuilt[0].startswith("stage1-step")  # the one resume, from inside stage 'all'
    assert json.loads((resumed / "state.json").read_text())["status"] == "completed"
    assert "model_format:\n  name: half-store" in (resumed / "spec.yaml").read_text()
