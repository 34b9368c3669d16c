"""Peak resident memory (RSS) per stage.

``getrusage``'s ``ru_maxrss`` is the process's peak since it started. On Linux, writing ``5`` to
``/proc/self/clear_refs`` resets that peak to the current RSS, so a stage that resets it when it starts
reads its own peak when it ends (``peak_rss_mb``). Where the reset is refused or unknown (macOS, Windows,
a locked-down /proc), only the process's peak so far is known: it is reported as ``process_peak_rss_mb``.
The reset also changes what ``ru_maxrss`` reads afterwards: :func:`process_peak_rss_mb` keeps the whole
process's peak across resets.
"""

from __future__ import annotations

import sys
from pathlib import Path

CLEAR_REFS = Path("/proc/self/clear_refs")
MEASURED = ("peak_rss_mb", "process_peak_rss_mb")
"""The keys a stage's results get from this module: measurements, which a resumed run does not reproduce."""
_before_resets = [0.0]  # the process's peak (MB) as it stood before the last reset


def reset_peak_rss(clear_refs: Path = CLEAR_REFS) -> bool:
    """Reset the process's peak RSS to its current RSS (Linux); False where it cannot be reset."""
    before = peak_rss_mb() or 0.0
    try:
        with clear_refs.open("w") as handle:
            handle.write("5")
    except OSError:
        return False
    _before_resets[0] = max(_before_resets[0], before)
    return True


def peak_rss_mb() -> float | None:
    """The process's peak RSS in MB (10^6 bytes) since it started or the last reset; None without ``resource``."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6  # bytes on macOS, KiB on Linux


def process_peak_rss_mb() -> float | None:
    """The process's peak RSS in MB since it started, resets or not, rounded as a stage's peak is."""
    current = peak_rss_mb()
    return None if current is None else round(max(current, _before_resets[0]), 1)


def stage_memory(reset: bool) -> dict[str, float]:
    """What a stage's results record of its memory: its own peak where ``reset`` succeeded at its start."""
    peak = peak_rss_mb()
    if peak is None:
        return {}
    return {"peak_rss_mb": round(peak, 1)} if reset else {"process_peak_rss_mb": round(peak, 1)}
