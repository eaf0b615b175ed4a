"""Segment-boundary error of an audio rd run, from its bitstreams (docs/AUDIO.md).

For each row of OUT/rows.jsonl (kancoin rows: the .inr decoded again; MP3/Opus rows: the
file decoded as the sweep did) and each window half-width, the error within the window of
SIREN's segment boundaries at that rate against the whole clip's (`boundary_excess_db`,
as `kancoin rd` reports at 5 ms), and the error's jump across the boundary:
`step_db = 10 log10(mean_b (e[b] - e[b-1])^2 / mean_k (e[k] - e[k-1])^2)`, e the error
signal: a click is a step in the error, which a window's mean can dilute.

  python bench/audio_boundaries.py results/rd-audio
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

import kancoin
from kancoin.audio import INT16_SCALE, load_audio, to_int16
from kancoin.rd.audio_baselines import Mp3Codec, OpusCodec
from kancoin.rd.audio_metrics import boundary_error
from kancoin.rd.sweep import segment_boundaries

AUDIO = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "audio"
BASELINES = {"mp3": Mp3Codec(), "opus": OpusCodec()}


def decoded(row: dict, out: Path, samples: np.ndarray, rate: int) -> np.ndarray:
    data = (out / row["stream"]).read_bytes()
    if row["codec"] in BASELINES:
        return BASELINES[row["codec"]]._decode(data, samples, rate)
    return to_int16(kancoin.decode(data)).astype(np.float32) / INT16_SCALE


def step_db(error: np.ndarray, boundaries: list[int]) -> float | None:
    if not boundaries:
        return None
    jumps = np.diff(error, axis=0) ** 2
    at = np.mean([jumps[b - 1] for b in boundaries])
    return 10 * math.log10(max(float(at), 1e-30) / max(float(jumps.mean()), 1e-30))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--ms", default="1,5")
    args = parser.parse_args()
    widths = [float(w) for w in args.ms.split(",")]
    clips: dict[str, tuple[np.ndarray, int]] = {}
    for line in (args.out / "rows.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "error" in row:
            continue
        name = row["clip"]
        if name not in clips:
            clips[name] = load_audio(AUDIO / name)
        samples, rate = clips[name]
        reconstruction = decoded(row, args.out, samples, rate)
        bounds = segment_boundaries(len(samples), rate, row["target_kbps"])
        result = {"clip": name.split("_")[0], "codec": row["codec"], "kbps": row["target_kbps"]}
        for ms in widths:
            measured = boundary_error(
                original=samples,
                reconstruction=reconstruction,
                boundaries=bounds,
                half_width=max(1, round(ms / 1000 * rate)),
            )
            excess = measured["boundary_excess_db"]
            result[f"excess_{ms:g}ms_db"] = None if excess is None else round(excess, 2)
        step = step_db(samples.astype(np.float64) - reconstruction, bounds)
        result["step_db"] = None if step is None else round(step, 2)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
