from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import hone
from hone.cli import main

BUILTINS = {
    "metric": ["accuracy", "precision", "recall", "f1", "entity-f1", "confusion-matrix"],
    "optimizer": ["sgd", "adam", "adamw", "adafactor"],
    "scheduler": ["constant", "linear", "cosine", "step", "exponential", "reduce-on-plateau"],
    "reader": ["conll", "tsv", "csv", "jsonl"],
}
ROW_KEYS = {"name", "kind", "components", "distribution", "version", "module", "source", "status", "error"}
HEAVY = ("torch", "transformers")

VALID = """\
model: any-model-name
task: token-classification
data: {reader: conll, train: train.txt, test: test.txt}
stages:
  - {type: train, optimizer: {name: adamw, lr: 5.0e-5}}
  - {type: evaluate, metrics: [entity-f1, accuracy]}
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HONE_DISABLE_PLUGINS", "HONE_ALLOW_PLUGINS", "HONE_PLUGINS_DIR"):
        monkeypatch.delenv(name, raising=False)


def hone_command() -> list[str]:
    script = Path(sys.executable).parent / "hone"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hone"]


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONE_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def run_hone(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*hone_command(), *args], capture_output=True, text=True, env=subprocess_env(tmp_path), cwd=tmp_path, timeout=120)


def plugins_json(capsys: pytest.CaptureFixture[str], *options: str) -> list[dict[str, Any]]:
    assert main([*options, "plugins", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def write_spec(tmp_path: Path, text: str = VALID) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    for name in ("train.txt", "test.txt"):  # hone validate checks that the data files exist
        (tmp_path / name).touch()
    return path


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for command in ("plugins", "validate", "schema", "run", "predict"):
        assert command in out
    assert "--plugins-dir" in out


def test_version_prints_hones_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"hone {hone.__version__}"


def test_plugins_json_lists_every_builtin_component(capsys: pytest.CaptureFixture[str]) -> None:
    rows = plugins_json(capsys)
    registered = {kind: set() for kind in BUILTINS}
    for row in rows:
        assert set(row) == ROW_KEYS
        if row["distribution"] == "hone-ml":
            assert row["status"] == "ok", row
            assert row["version"] == hone.__version__
            assert row["module"] == f"hone_plugins.{row['name'].removeprefix('hone.')}"
            assert row["kind"] == sorted(row["components"])
            for kind in set(row["components"]) & set(registered):
                registered[kind] |= set(row["components"][kind])
    for kind, names in BUILTINS.items():
        assert set(names) <= registered[kind], kind


def test_plugins_json_rows_say_where_each_component_comes_from(capsys: pytest.CaptureFixture[str]) -> None:
    optimizers = next(row for row in plugins_json(capsys) if row["name"] == "hone.optimizers")
    assert optimizers == {
        "name": "hone.optimizers",
        "kind": ["optimizer"],
        "components": {"optimizer": BUILTINS["optimizer"]},
        "distribution": "hone-ml",
        "version": hone.__version__,
        "module": "hone_plugins.optimizers",
        "source": "entry-point",
        "status": "ok",
        "error": None,
    }


def test_plugins_human_output_shows_status_origin_and_components(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert f"optimizers  [ok]  hone-ml {hone.__version__}  (hone_plugins.optimizers)" in out
    assert "    optimizer: sgd, adam, adamw, adafactor" in out


def test_plugins_dir_option_adds_plain_py_plugins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "top_k.py").write_text(
        "from hone.hookspecs import hookimpl\n\n\n@hookimpl\ndef register_metrics(register):\n    register('top-k', lambda params: None)\n"
    )
    row = next(row for row in plugins_json(capsys, "--plugins-dir", str(tmp_path)) if row["name"] == "top_k")
    assert (row["status"], row["components"], row["distribution"]) == ("ok", {"metric": ["top-k"]}, None)


def test_plugins_lists_a_failed_plugin_with_its_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "fragile.py").write_text("raise ImportError('needs fancy-backend')\n")
    rows = plugins_json(capsys, "--plugins-dir", str(tmp_path))
    fragile = next(row for row in rows if row["name"] == "fragile")
    assert (fragile["status"], fragile["error"]) == ("failed", "ImportError: needs fancy-backend")
    assert all(row["status"] == "ok" for row in rows if row["distribution"] == "hone-ml")


def test_validate_exits_0_for_a_valid_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(tmp_path)
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{path}: valid (2 stages: 0-train, 1-evaluate)"
    assert captured.err == ""


def test_validate_exits_2_with_the_problems_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(tmp_path, VALID.replace("lr: 5.0e-5", "lr: -1").replace("accuracy]", "acuracy]"))
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {path}: 2 problems")
    assert f"{path}:5: stages[0].optimizer.lr:" in captured.err
    assert "Did you mean 'accuracy'?" in captured.err


def test_validate_missing_file_is_a_short_error(tmp_path: Path) -> None:
    result = run_hone(tmp_path, "validate", "absent.yaml")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "absent.yaml" in result.stderr and "file not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_unknown_command_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_hone(tmp_path, "frobnicate")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("hone: error:")]
    assert len(errors) == 1 and "invalid choice: 'frobnicate'" in errors[0]


def test_missing_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code != 0
    assert "hone: error:" in capsys.readouterr().err


def test_failed_plugin_is_a_warning_on_stderr_for_validate(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fragile.py").write_text("raise ImportError('needs fancy-backend')\n")
    write_spec(tmp_path)
    result = run_hone(tmp_path, "--plugins-dir", str(plugins), "plugins")
    assert result.returncode == 0 and "fragile  [failed]" in result.stdout
    env_result = subprocess.run(
        [*hone_command(), "validate", "spec.yaml"],
        capture_output=True,
        text=True,
        env={**subprocess_env(tmp_path), "HONE_PLUGINS_DIR": str(plugins)},
        cwd=tmp_path,
        timeout=120,
    )
    assert env_result.returncode == 0, env_result.stderr
    assert "warning: hone plugin 'fragile'" in env_result.stderr
    assert "ImportError: needs fancy-backend" in env_result.stderr


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["plugins"], ["plugins", "--json"], ["schema"], ["validate", "spec.yaml"]],
    ids=["help", "plugins", "plugins-json", "schema", "validate"],
)
def test_light_commands_do_not_import_torch_or_transformers(argv: list[str], tmp_path: Path) -> None:
    write_spec(tmp_path)
    code = textwrap.dedent(
        f"""
        import sys
        from hone.cli import main
        try:
            main({argv!r})
        except SystemExit:
            pass
        heavy = [name for name in {HEAVY!r} if name in sys.modules]
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(tmp_path), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr


def test_console_script_runs(tmp_path: Path) -> None:
    result = run_hone(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"hone {hone.__version__}"


def test_plugins_dir_option_applies_to_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "top_k.py").write_text(
        "from hone.hookspecs import hookimpl\n\n\n@hookimpl\ndef register_metrics(register):\n    register('top-k', lambda params: None)\n"
    )
    path = write_spec(tmp_path, VALID.replace("[entity-f1, accuracy]", "[top-k]"))
    assert main(["--plugins-dir", str(plugins), "validate", str(path)]) == 0, capsys.readouterr().err


THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")
HUGE_PAGE_FLAGS = """\
import contextlib, io, sys
from hone.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["plugins"])
import torch
tensor = torch.empty(4 * 2**20, dtype=torch.uint8)
address, inside = tensor.data_ptr(), False
for line in open("/proc/self/smaps"):
    head = line.split()[0]
    if "-" in head and not head.endswith(":"):
        start, end = (int(part, 16) for part in head.split("-"))
        inside = start <= address < end
    elif inside and line.startswith("VmFlags:"):
        print(line.split()[1:])
"""


def test_the_command_sets_torchs_huge_page_switch_unless_the_user_has(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    plugins_json(capsys)
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    plugins_json(capsys)
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"


@pytest.mark.skipif(not THP_SETTING.exists() or "[never]" in (THP_SETTING.read_text() if THP_SETTING.exists() else ""),
                    reason="needs Linux with transparent huge pages")
@pytest.mark.parametrize(("user_value", "advised"), [(None, True), ("0", False)])
def test_torch_advises_huge_pages_for_large_tensors_after_the_command_ran(
        tmp_path: Path, user_value: str | None, advised: bool) -> None:
    env = {k: v for k, v in subprocess_env(tmp_path).items() if k != "THP_MEM_ALLOC_ENABLE"}
    env |= {"THP_MEM_ALLOC_ENABLE": user_value} if user_value else {}
    done = subprocess.run([sys.executable, "-c", HUGE_PAGE_FLAGS], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert ("'hg'" in done.stdout) is advised, done.stdout  # hg: madvise(MADV_HUGEPAGE) on the tensor's mapping
