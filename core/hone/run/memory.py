"""Peak resident memory (RSS) per stage.

``getrusage``'s ``ru_maxrss`` is the process's peak since it started. On Linux, writing ``5`` to
``/proc/self/clear_refs`` resets that peak to the current RSS, so a stage that resets it when it starts
reads its own peak when it ends (``peak_rss_mb``). Where the reset is refused or unknown (macOS, Windows,
a locked-down /proc), only the process's peak so far is known: it is reported as ``process_peak_rss_mb``.
"""

from __future__ import annotations

import sys
from pathlib import Path

CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_rss(clear_refs: Path = CLEAR_REFS) -> bool:
    """Reset the process's peak RSS to its current RSS (Linux); False where it cannot be reset."""
    try:
        with clear_refs.open("w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float | None:
    """The process's peak RSS in MB (10^6 bytes) since it started or the last reset; None without ``resource``."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6  # bytes on macOS, KiB on Linux


def stage_memory(reset: bool) -> dict[str, float]:
    """What a stage's results record of its memory: its own peak where ``reset`` succeeded at its start."""
    peak = peak_rss_mb()
    if peak is None:
        return {}
    return {"peak_rss_mb": round(peak, 1)} if reset else {"process_peak_rss_mb": round(peak, 1)}
