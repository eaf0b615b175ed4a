"""Result files from the rows: one CompressAI JSON per codec, a summary with BD deltas, a plot."""

from __future__ import annotations

import dataclasses
import os
import platform
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, features

import kancoin
from kancoin.rd.bd import bd_psnr, bd_rate
from kancoin.rd.codecs import Codec
from kancoin.rd.plot import plot_rd
from kancoin.rd.results import curve, write_json

ANCHOR = "jpeg2000"
AUDIO_ANCHOR = "mp3"
PLOT_FILE = "rd-psnr.png"
SUMMARY_FILE = "summary.json"


def codec_document(
    codec: Codec, rows: list[dict], targets: Sequence[float], images: int, *, audio=False
):
    """(CompressAI-schema document, targets left out because some image has no result)."""
    results, skipped = curve(rows, targets, images, audio=audio)
    description = codec.description
    tally = _choice_tally(rows)
    if tally:
        description += f"; chosen: {tally}"
    document = {
        "name": codec.name,
        "description": description,
        "results": results,
        "targets": [t for t in sorted(targets) if t not in skipped],
        "images": images,
        "settings": codec.settings(),
    }
    return document, skipped


def write_reports(
    out_dir: Path,
    *,
    codecs: Sequence[Codec],
    rows: dict[str, list[dict]],
    targets: Sequence[float],
    images: list[str],
    config,
    seconds: float,
    load_at_start: list[float] | None,
    log: Callable[[str], None],
    audio: bool = False,
) -> dict:
    """Write OUT/<codec>.json, OUT/summary.json and OUT/rd-psnr.png; return the summary.
    Audio (`audio`): kbps and waveform PSNR, BD deltas against MP3."""
    documents, curves, skipped, failed = {}, {}, {}, []
    rate, quality = ("kbps", "psnr") if audio else ("bpp", "psnr-rgb")
    name_field, target_field = ("clip", "target_kbps") if audio else ("image", "target_bpp")
    for codec in codecs:
        document, missing = codec_document(
            codec, rows[codec.name], targets, len(images), audio=audio
        )
        write_json(out_dir / f"{codec.name}.json", document)
        documents[codec.name] = document
        curves[codec.name] = (document["results"][rate], document["results"][quality])
        if missing:
            skipped[codec.name] = missing
        failed += [
            {k: row[k] for k in (name_field, "codec", target_field, "error")}
            for row in rows[codec.name]
            if "error" in row
        ]
    anchor = AUDIO_ANCHOR if audio else ANCHOR
    deltas = bd_against_anchor(curves, anchor)
    summary = {
        "clips" if audio else "images": images,
        "unit": rate,
        "targets": sorted(targets),
        "results": {name: doc["results"] for name, doc in documents.items()},
        "descriptions": {name: doc["description"] for name, doc in documents.items()},
        f"bd_vs_{anchor}": deltas,
        "skipped_targets": skipped,
        "failed_rows": failed,
        "config": {k: v for k, v in dataclasses.asdict(config).items()},
        "machine": {**machine(audio=audio), "load_average_at_start": load_at_start},
        "seconds": round(seconds, 1),
    }
    write_json(out_dir / SUMMARY_FILE, summary)
    what = "clips" if audio else "images"
    title = ", ".join(images) if len(images) <= 3 else f"{len(images)} {what}"
    plot_rd(curves, out_dir / PLOT_FILE, title=f"PSNR vs rate: {title}", audio=audio)
    for name, missing in skipped.items():
        log(f"rd: {name}: no mean at {', '.join(map(str, missing))} {rate} (some input failed)")
    return summary


def bd_against_anchor(curves: dict[str, tuple[list, list]], anchor: str = ANCHOR) -> dict:
    """BD-rate (%) and BD-PSNR (dB) of every codec against the anchor's mean curve
    (JPEG2000 for images, MP3 for audio)."""
    if anchor not in curves:
        return {}
    anchor_bpp, anchor_psnr = curves[anchor]
    deltas = {}
    for name, (bpp, psnr) in curves.items():
        if name == anchor:
            continue
        rate = psnr_gap = None
        if len(bpp) >= 2 and len(anchor_bpp) >= 2:
            rate = bd_rate(anchor_bpp, anchor_psnr, bpp, psnr)
            psnr_gap = bd_psnr(anchor_bpp, anchor_psnr, bpp, psnr)
        deltas[name] = {
            "bd_rate_percent": None if rate is None else round(rate, 2),
            "bd_psnr_db": None if psnr_gap is None else round(psnr_gap, 3),
            "points": min(len(bpp), len(anchor_bpp)),
        }
    return deltas


def format_summary(summary: dict) -> str:
    """A plain table: mean rate, PSNR and MS-SSIM per codec and target, then BD deltas."""
    if summary.get("unit") == "kbps":
        return _format_audio(summary)
    lines = [f"{'codec':<10} {'bpp':>7} {'PSNR dB':>8} {'MS-SSIM':>8} {'enc s':>8} {'dec s':>7}"]
    for name, results in summary["results"].items():
        for i, bpp in enumerate(results["bpp"]):
            ms = results["ms-ssim-rgb"][i]
            lines.append(
                f"{name:<10} {bpp:>7.4f} {results['psnr-rgb'][i]:>8.2f} "
                f"{'-' if ms is None else f'{ms:.4f}':>8} {results['encoding_time'][i]:>8.2f} "
                f"{results['decoding_time'][i]:>7.3f}"
            )
    lines += _bd_lines(summary, ANCHOR)
    return "\n".join(lines)


def _format_audio(summary: dict) -> str:
    """The audio table: kbps, PSNR, SNR, LSD, boundary excess, times; BD deltas vs MP3."""
    lines = [
        f"{'codec':<8} {'kbps':>7} {'PSNR dB':>8} {'SNR dB':>7} {'LSD dB':>7} "
        f"{'bound dB':>8} {'enc s':>8} {'dec s':>7}"
    ]
    for name, results in summary["results"].items():
        for i, kbps in enumerate(results["kbps"]):
            excess = results["boundary_excess_db"][i]
            lines.append(
                f"{name:<8} {kbps:>7.2f} {results['psnr'][i]:>8.2f} {results['snr'][i]:>7.2f} "
                f"{results['lsd'][i]:>7.2f} {'-' if excess is None else f'{excess:+.2f}':>8} "
                f"{results['encoding_time'][i]:>8.2f} {results['decoding_time'][i]:>7.3f}"
            )
    lines += _bd_lines(summary, AUDIO_ANCHOR)
    return "\n".join(lines)


def _bd_lines(summary: dict, anchor: str) -> list[str]:
    lines = []
    for name, delta in summary[f"bd_vs_{anchor}"].items():
        rate, gap = delta["bd_rate_percent"], delta["bd_psnr_db"]
        lines.append(
            f"{name} vs {anchor}: BD-rate "
            f"{'n/a' if rate is None else f'{rate:+.1f} %'}, BD-PSNR "
            f"{'n/a' if gap is None else f'{gap:+.2f} dB'} ({delta['points']} points)"
        )
    return lines


def machine(*, audio: bool = False) -> dict:
    """Where the numbers were measured (timings mean little without it)."""
    found = {}
    if audio:
        import soundfile

        found = {"soundfile": soundfile.__version__, "libsndfile": soundfile.__libsndfile_version__}
    return found | {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "kancoin": kancoin.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "pillow": Image.__version__,
        "openjpeg": features.version("jpg_2000"),
        "libjpeg": features.version("jpg"),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load: on a shared machine, timings need it to be read."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(x, 2) for x in os.getloadavg()]


def _choice_tally(rows: list[dict]) -> str:
    """e.g. '9/7 irreversible on 7 of 8 rows' for the baselines' per-image picks."""
    for field in ("wavelet", "subsampling"):
        picks = Counter(row["choice"][field] for row in rows if field in row.get("choice", {}))
        if picks:
            total = sum(picks.values())
            return ", ".join(f"{value} on {n} of {total} rows" for value, n in picks.most_common())
    return ""
