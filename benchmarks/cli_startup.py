"""Start-up time of `hone --help` and `hone plugins` (must not import torch), as a table.

    .venv/bin/python benchmarks/cli_startup.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "hone --help": ["-m", "hone", "--help"],
    "hone plugins": ["-m", "hone", "plugins"],
    "hone plugins --json": ["-m", "hone", "plugins", "--json"],
    "python -c pass (baseline)": ["-c", "pass"],
    "python -c 'import torch' (for scale)": ["-c", "import torch"],
}
CHECK = (
    "import sys\nfrom hone.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "print('torch' in sys.modules or 'transformers' in sys.modules)"
)


def median_seconds(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def imports_heavy(command: list[str]) -> str:
    out = subprocess.run([sys.executable, "-c", CHECK, *command], capture_output=True, text=True).stdout.strip().splitlines()
    return {"True": "yes", "False": "no"}.get(out[-1] if out else "", "?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    print(f"| command | median wall time (s), {args.repeat} runs | imports torch/transformers |")
    print("|---|---|---|")
    for label, command in COMMANDS.items():
        heavy = imports_heavy(command[2:]) if command[:2] == ["-m", "hone"] else "-"
        print(f"| {label} | {median_seconds(command, args.repeat):.3f} | {heavy} |")


if __name__ == "__main__":
    main()
