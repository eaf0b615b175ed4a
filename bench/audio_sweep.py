"""Audio measurements behind docs/AUDIO.md, on the shared clips (../shared/data/audio).

  rates: PSNR and SNR of whole clips at several kbps (the codec as users run it).
  w0:    first-layer w0 and segment length, on a few seconds of each clip at one rate.

Prints a markdown table and writes one JSON file per run (CompressAI's layout, one row per
clip and setting). Bounded: every encode is capped by --steps; use --threads 1 on a shared
machine so runs do not fight over cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import kancoin
from kancoin import audio

AUDIO_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "audio"


def clips(directory: Path, names: list[str] | None) -> list[Path]:
    found = sorted(directory.glob("*.wav"))
    if names:
        found = [p for p in found if any(n in p.name for n in names)]
    if not found:
        raise SystemExit(f"no shared audio clips in {directory}")
    return found


def measure(source, *, sample_rate=None, **options) -> dict:
    result = kancoin.encode(source, sample_rate=sample_rate, **options)
    started = time.perf_counter()
    kancoin.decode(result.data, device=options.get("device", "auto"))
    return {
        "kbps": round(result.rate, 3),
        "psnr": round(result.psnr, 2),
        "snr": round(result.snr, 2),
        "psnr_float": round(result.psnr_float, 2),
        "model": result.header.spec.describe(),
        "networks": result.header.networks,
        "encoding_time": round(result.seconds, 1),
        "decoding_time": round(time.perf_counter() - started, 2),
    }


def sweep_rates(args) -> list[dict]:
    rows = []
    for path in clips(args.audio, args.clips):
        for kbps in args.kbps:
            options = {"kbps": kbps, "steps": args.steps, "threads": args.threads}
            if args.at_segment is not None:
                options["segment_seconds"] = args.at_segment
            row = measure(path, **options)
            rows.append({"clip": path.stem, "target_kbps": kbps, **row})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def sweep_w0(args) -> list[dict]:
    """Each clip's excerpt from 30 % in; w0 values at one segment length (--at-segment, or
    the default), then segment lengths at the default w0 rule."""
    at = {} if args.at_segment is None else {"segment_seconds": args.at_segment}
    settings = [{**at, "w0_first": w0} for w0 in args.w0]
    settings += [{"segment_seconds": s} for s in args.segments]
    rows = []
    for path in clips(args.audio, args.clips):
        samples, rate = audio.load_audio(path)
        start = int(0.3 * len(samples))
        excerpt = samples[start : start + round(args.seconds * rate)]
        for setting in settings:
            row = measure(
                excerpt,
                sample_rate=rate,
                kbps=args.kbps[0],
                steps=args.steps,
                threads=args.threads,
                **setting,
            )
            rows.append({"clip": path.stem, "segment_seconds": None, "w0_first": None})
            rows[-1].update({**setting, **row})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    keys = [k for k in rows[0] if k not in ("decoding_time",)]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["rates", "w0"])
    parser.add_argument("--audio", type=Path, default=AUDIO_DIR)
    parser.add_argument("--clips", nargs="*", help="substrings of clip names (default: all)")
    parser.add_argument("--kbps", type=float, nargs="+", default=[16.0, 32.0, 64.0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0, help="w0: excerpt length")
    parser.add_argument("--w0", type=float, nargs="*", default=[118, 235, 470, 940, 1880])
    parser.add_argument("--segments", type=float, nargs="*", default=[0.25, 1.0, 2.0])
    parser.add_argument("--at-segment", type=float, help="segment seconds (default: codec's)")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = sweep_rates(args) if args.what == "rates" else sweep_w0(args)
    print(table(rows))
    if args.out:
        results = {key: [row[key] for row in rows] for key in rows[0]}
        record = {"name": f"kancoin-audio-{args.what}", "description": " ".join(sys.argv)}
        args.out.write_text(json.dumps({**record, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
