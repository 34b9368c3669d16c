"""Reports of short runs: a point logged per epoch even when logging_steps is longer than the run, sparse series
drawn with markers (one logged point is visible), and the page as headless Chromium renders it."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from hone.run.events import read_events
from hone_plugins.report import plots
from hone_plugins.report.write import write_report
from .conftest import tiny_spec

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _pixels_like(png: bytes, colour: str, box: tuple[float, float, float, float] = (0, 0, 1, 1)) -> int:
    """How many pixels of the part ``box`` (fractions: left, top, right, bottom) of the image are within 40 of ``colour``."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    part = image.crop((int(box[0] * width), int(box[1] * height), int(box[2] * width), int(box[3] * height)))
    target = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return sum(count for count, rgb in part.getcolors(1 << 20) if max(abs(a - b) for a, b in zip(rgb, target)) <= 40)


def test_a_single_logged_point_is_drawn() -> None:
    png = plots.training_curves({"loss": [(1, 0.7)], "lr": [(1, 1e-3)]}, {}, [])
    assert png is not None
    assert _pixels_like(png, plots.COLORS[2], (0.5, 0, 1, 1)) >= 15  # the learning-rate panel (no legend): the dot


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """Two epochs of two steps with logging_steps 20, as the default would be for a short run."""
    from hone.run.runner import run
    from hone.spec.loading import load_spec

    import yaml

    base = tmp_path_factory.mktemp("short-run")
    spec = tiny_spec(tiny_bert, "short", 5e-3, 2)
    spec["stages"][0]["logging_steps"] = 20
    (base / "spec.yaml").write_text(yaml.safe_dump(spec))
    parsed, host = load_spec(base / "spec.yaml")
    return run(parsed, host, out=base / "run")


def test_each_epoch_logs_at_least_once(short_run: Path) -> None:
    logged = [(e["epoch"], e["step"]) for e in read_events(short_run / "events.jsonl") if e["event"] == "step_end"]
    assert logged == [(0, 2), (1, 4)]  # the last step of each epoch, though logging_steps is 20
    assert all("lr" in e["metrics"] and "loss" in e["metrics"] for e in read_events(short_run / "events.jsonl")
               if e["event"] == "step_end")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package: chromium)")
def test_the_short_run_report_renders_with_its_curves(short_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    page = write_report(short_run)[0]
    shot = Path(str(page.with_suffix("")) + "-chromium.png")  # kept beside the report, to look at
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
               "--window-size=1100,3000", f"--screenshot={shot}", page.resolve().as_uri()]
    subprocess.run(command, capture_output=True, timeout=180, check=False)
    assert shot.exists(), "Chromium wrote no screenshot"
    image = Image.open(shot).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    # the learning-rate line's green and the train loss's blue are on the rendered page, not only in the PNG files
    assert _pixels_like(buffer.getvalue(), plots.COLORS[2]) >= 30
    assert _pixels_like(buffer.getvalue(), plots.COLORS[0]) >= 30
