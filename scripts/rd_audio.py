"""`make rd-audio`: the shared audio clips through `kancoin rd --kbps` at 16, 32 and 64 kbps.

Clips come from $AUDIO_DIR, else ../shared/data/audio (every .wav there). kancoin's audio
families beside MP3 and Opus at their best (docs/RD.md, docs/AUDIO.md); the sweep is
resumable. Writes OUT/RUN.md with the command, the machine and the result table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from kancoin.errors import InputError, KancoinError
from kancoin.rd import SweepConfig, format_summary, run_sweep
from kancoin.rd.sweep import parse_codec_steps, parse_codecs, parse_rates

TARGETS = "16,32,64"
CODECS = "siren,grid1d,mp3,opus"
# steps per encode: each SIREN segment 300 (docs/AUDIO.md's protocol), the 1-D grid 600
# full-clip steps (about 2 CPU minutes per clip: the whole run fits in an hour on one core)
CODEC_STEPS = "siren=300,grid1d=600"
DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "audio"


def audio_dir() -> Path:
    return Path(os.environ.get("AUDIO_DIR") or DEFAULT_DIR).resolve()


def rd_audio(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("results/rd-audio"))
    parser.add_argument("--kbps", default=TARGETS)
    parser.add_argument("--codecs", default=CODECS, help=f"default: {CODECS}")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--steps", type=int, default=None, help="steps per encode (all families)")
    parser.add_argument("--codec-steps", default=CODEC_STEPS, help=f"default: {CODEC_STEPS}")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        directory = audio_dir()
        clips = sorted(directory.glob("*.wav")) if directory.is_dir() else []
        if not clips:
            raise InputError(f"no .wav clips in {directory} (set AUDIO_DIR)")
        config = SweepConfig(
            targets=parse_rates(args.kbps, "--kbps"),
            codecs=parse_codecs(args.codecs),
            preset=args.preset,
            steps=args.steps,
            codec_steps=parse_codec_steps(args.codec_steps),
            workers=args.workers,
            threads=args.threads,
            force=args.force,
            audio=True,
        )
        summary = run_sweep(clips, args.out, config)
    except KancoinError as exc:
        print(f"rd-audio: error: {exc}", file=sys.stderr)
        return exc.exit_code
    table = format_summary(summary)
    print(table)
    run_md = args.out / "RUN.md"
    if summary.get("rows_run") == 0 and run_md.is_file():
        print(f"rd-audio: nothing recomputed; {run_md} still describes the run that measured it")
        return 0
    command = "python " + shlex.join(["scripts/rd_audio.py", *(argv or sys.argv[1:])])
    run_md.write_text(
        "# Audio rate-distortion run\n\n"
        f"- command: `{command}` (`make rd-audio`)\n"
        f"- finished: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{time.perf_counter() - started:.0f} s for this invocation\n"
        f"- clips: {', '.join(c.name for c in clips)} from {directory}\n"
        f"- machine: `{json.dumps(summary['machine'])}`\n\n"
        "Means over the clips; per-clip figures in rows.jsonl. PSNR of the waveform in [0, 1], "
        "LSD the log-spectral distance, `bound dB` the error within 5 ms of SIREN's segment "
        "boundaries against the clip's (docs/AUDIO.md).\n\n"
        f"```\n{table}\n```\n\n![PSNR against kbps](rd-psnr.png)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(rd_audio())
