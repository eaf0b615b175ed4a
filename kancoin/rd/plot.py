"""PSNR against bpp as a PNG: measured curves, and COIN's published Kodak curve for reference."""

from __future__ import annotations

from pathlib import Path

from kancoin.errors import UsageError
from kancoin.fileio import write_atomic

# Dupont et al. (2021), Kodak average RGB PSNR at the rates of their five architectures.
COIN_PUBLISHED = ((0.07, 23.2), (0.16, 24.6), (0.31, 26.4), (0.61, 28.4), (1.21, 30.6))
COIN_LABEL = "COIN (published)"
STYLES = {  # codec -> (colour, marker); kancoin codecs solid and first, baselines after
    "siren": ("tab:red", "o"),
    "kan": ("tab:purple", "D"),
    "jpeg2000": ("tab:blue", "s"),
    "jpeg": ("tab:green", "^"),
    "grid1d": ("tab:orange", "P"),
    "mp3": ("tab:blue", "s"),
    "opus": ("tab:green", "^"),
}


def plot_rd(
    curves: dict[str, tuple[list[float], list[float]]],
    path: Path,
    *,
    title: str,
    audio: bool = False,
) -> None:
    """Write the PSNR-bpp plot of `curves` (name -> (bpp, psnr)) to `path`; `audio`: PSNR
    (waveform in [0, 1]) against kbps, without COIN's image curve."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("plots need matplotlib: pip install 'kancoin[rd]'") from None
    figure = Figure(figsize=(7, 5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    highest = 0.0
    for index, (name, (bpp, psnr)) in enumerate(curves.items()):
        if not bpp:
            continue
        colour, marker = STYLES.get(name, (f"C{index % 10}", "x"))
        axes.plot(bpp, psnr, marker=marker, color=colour, linewidth=1.8, label=name)
        highest = max(highest, *bpp)
    if not audio:
        coin_bpp, coin_psnr = zip(*COIN_PUBLISHED, strict=True)
        axes.plot(coin_bpp, coin_psnr, "--", marker=".", color="0.4", label=COIN_LABEL)
    if highest > 0:
        axes.set_xlim(0, highest * 1.15)
    axes.set_xlabel("kbit/s" if audio else "bits per pixel")
    axes.set_ylabel("PSNR (waveform in [0, 1], dB)" if audio else "PSNR (RGB, dB)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    write_atomic(path, lambda temp: figure.savefig(temp, format="png"))
