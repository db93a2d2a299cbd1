"""How long the commands take to start, beside a bare Python start, in one run.

    python benchmarks/startup.py --repeats 5

Each command runs in a fresh process, the commands interleaved in rounds so that a slow moment
of the machine hits all of them; prints the median wall time of each and its excess over
``python -c pass``. The table of docs/performance.md ("Start-up") comes from here.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

BIN = os.path.dirname(sys.executable)
TCONV = os.path.join(BIN, "tconv")

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import tconv'": [sys.executable, "-c", "import tconv"],
    "tconv --version": [TCONV, "--version"],
    "tconv shape": [TCONV, "shape", "--input", "1,1,4,4", "--kernel", "3", "--stride", "2",
                    "--padding", "1"],
    "tconv verify --backends none": [TCONV, "verify", "--backends", "none"],
    "tconv verify --backends torch": [TCONV, "verify", "--backends", "torch"],
    "tconv convert --from torch --to onnx": [
        TCONV, "convert", "--from", "torch", "--to", "onnx", "--layer-input", "8x8", "--kernel",
        "3", "--stride", "2", "--padding", "1"],
    "tconv convert --from torch --to onnx --check": [
        TCONV, "convert", "--from", "torch", "--to", "onnx", "--layer-input", "8x8", "--kernel",
        "3", "--stride", "2", "--padding", "1", "--check"],
    "tconv verify": [TCONV, "verify"],
}


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for name, command in COMMANDS.items():       # one warm-up each: the page cache, .pyc files
        wall(command)
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(wall(command))
    bare = statistics.median(times["python -c pass"])
    print("| command | median s | over a bare start |\n|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.2f} | {median - bare:+.2f} |")


if __name__ == "__main__":
    main()
