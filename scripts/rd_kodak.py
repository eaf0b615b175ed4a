"""`make rd-kodak`: the 24 Kodak images through `kancoin rd` at 0.1, 0.2, 0.3 and 0.5 bpp.

Images come from $KODAK_DIR, then ../shared/data/kodak, else a SHA-256-checked download.
The preset names a protocol with a stated cost (docs/RD.md); the sweep is resumable, so an
interrupted run continues where it stopped when started again. Writes OUT/RUN.md with the
command, the machine and the result table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from kancoin.datasets import kodak_checksums, kodak_dir
from kancoin.errors import KancoinError
from kancoin.rd import SweepConfig, format_summary, run_sweep
from kancoin.rd.sweep import parse_codecs, parse_rates

TARGETS = "0.1,0.2,0.3,0.5"
# preset -> options per kancoin encode; docs/RD.md states what each costs on 2 cores. Step
# budgets (the presets'), not time budgets: results must not depend on the machine's load.
PROTOCOLS = {
    "fast": {"preset": "fast"},  # 1000 steps of 2.5 % batches
    "default": {"preset": "default"},  # 4000 steps
    "best": {"preset": "best"},  # the full protocol: 16000 steps
}
CODECS = "siren,jpeg2000,jpeg"  # kan on request: it doubles the run (docs/RD.md)


def rd_kodak(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=sorted(PROTOCOLS), default="fast")
    parser.add_argument("--out", type=Path, default=Path("results/kodak"))
    parser.add_argument("--bpp", default=TARGETS)
    parser.add_argument("--codecs", default=CODECS, help=f"default: {CODECS}")
    # two single-threaded workers keep 2 cores busier than one worker with 2 threads
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local process pool, or a Ray cluster ($RAY_ADDRESS, else a local one)",
    )
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        directory = kodak_dir()
        images = [directory / name for name in sorted(kodak_checksums())]
        missing = [path.name for path in images if not path.is_file()]
        if missing:
            raise KancoinError(f"{directory} lacks {', '.join(missing)}")
        config = SweepConfig(
            targets=parse_rates(args.bpp),
            codecs=parse_codecs(args.codecs),
            workers=args.workers,
            threads=args.threads,
            engine=args.engine,
            force=args.force,
            **PROTOCOLS[args.preset],
        )
        summary = run_sweep(images, args.out, config)
    except KancoinError as exc:
        print(f"rd-kodak: error: {exc}", file=sys.stderr)
        return exc.exit_code
    table = format_summary(summary)
    print(table)
    run_md = args.out / "RUN.md"
    if summary.get("rows_run") == 0 and run_md.is_file():
        print(f"rd-kodak: nothing recomputed; {run_md} still describes the run that measured it")
        return 0
    command = "python " + shlex.join(["scripts/rd_kodak.py", *(argv or sys.argv[1:])])
    run_md.write_text(
        f"# Kodak rate-distortion run ({args.preset})\n\n"
        f"- command: `{command}` (`make rd-kodak PRESET={args.preset}`)\n"
        f"- finished: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{time.perf_counter() - started:.0f} s for this invocation\n"
        f"- images: {len(images)} from {directory}\n"
        f"- machine: `{json.dumps(summary['machine'])}`\n\n"
        f"```\n{table}\n```\n\n![PSNR against bpp](rd-psnr.png)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(rd_kodak())
