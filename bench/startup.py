"""Start-up time of the `kancoin` command, and what `encode` spends before its first step.

    .venv/bin/python bench/startup.py [--repeats 5]

Prints the best of the repeats (noise only slows a start) for `kancoin --version`,
`kancoin --help` (both answered by kancoin.launch without torch), `kancoin encode --help`
(imports the codec, hence torch), and `import kancoin.cli` split into torch and the rest.
Quote it with the load average it prints: on a shared machine starts are slower.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def best_of(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    launcher = [python, "-m", "kancoin.launch"]
    entry = Path(python).with_name("kancoin")
    rows = [
        (
            "kancoin --version",
            [str(entry), "--version"] if entry.exists() else [*launcher, "--version"],
        ),
        ("kancoin --help", [*launcher, "--help"]),
        ("kancoin encode --help", [*launcher, "encode", "--help"]),
        ("python -c 'import torch'", [python, "-c", "import torch"]),
        ("python -c 'import kancoin.cli'", [python, "-c", "import kancoin.cli"]),
        ("python -c pass", [python, "-c", "pass"]),
    ]
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    for name, command in rows:
        print(f"{name:<34} {best_of(command, args.repeats):6.3f} s (best of {args.repeats})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
