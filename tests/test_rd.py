"""Rate-distortion sweeps: baselines at their rates, metrics, BD deltas, resume, the CLI."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import kodak_path
from PIL import Image

from kancoin.cli import main
from kancoin.errors import UsageError
from kancoin.models import MODEL_SPECS
from kancoin.rd import SweepConfig, available_codecs, run_sweep
from kancoin.rd.baselines import (
    RATE_TOLERANCE,
    Jpeg2000Codec,
    JpegCodec,
    _save,
    _search_ratio,
)
from kancoin.rd.bd import bd_psnr, bd_rate
from kancoin.rd.codecs import CodecError, budget_bytes
from kancoin.rd.metrics import K1, MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_min_side, psnr_rgb
from kancoin.rd.results import ROWS_FILE, append_row, curve, load_rows

SCHEMA_RESULTS = {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"}


def realish_image(height: int = 192, width: int = 256, seed: int = 0) -> np.ndarray:
    """uint8 RGB with what photos have: smooth shading, hard-edged objects, fine texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = np.stack([0.3 + 0.4 * y, 0.5 + 0.2 * x, 0.8 - 0.3 * y], axis=-1)
    for _ in range(12):
        cy, cx, ry, rx = rng.uniform(0, 1, 4) * [height / width, 1, 0.2, 0.2] + [0, 0, 0.03, 0.03]
        inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1
        image[inside] = rng.uniform(0, 1, 3) * (0.8 + 0.2 * np.sin(40 * x[inside]))[:, None]
    noise = rng.normal(0, 1, (height + 2, width + 2, 3))
    texture = sum(noise[i : i + height, j : j + width] for i in range(3) for j in range(3)) / 9
    image = image + 0.06 * texture
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def save_png(path, pixels: np.ndarray):
    Image.fromarray(pixels).save(path)
    return path


# --- baselines ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [0.25, 0.5, 1.0, 2.0])
def test_jpeg2000_lands_within_tolerance_under_the_target(tmp_path, target):
    image = realish_image()
    stream = tmp_path / "out.j2k"
    run = Jpeg2000Codec().run(image, target, stream)
    budget = budget_bytes(image, target)
    size = stream.stat().st_size
    assert (1 - RATE_TOLERANCE) * budget <= size <= budget
    assert run.choice["wavelet"] in ("9/7 irreversible", "5/3 reversible")
    assert run.reconstruction.shape == image.shape and run.reconstruction.dtype == np.uint8
    # the file on disk is what was measured
    decoded = np.asarray(Image.open(stream).convert("RGB"))
    assert np.array_equal(decoded, run.reconstruction)


def test_jpeg2000_keeps_the_better_wavelet(tmp_path):
    image = realish_image(seed=3)
    run = Jpeg2000Codec().run(image, 0.5, tmp_path / "a.j2k")
    chosen = psnr_rgb(original=image, reconstruction=run.reconstruction)
    pil = Image.fromarray(image)
    for irreversible in (True, False):  # either wavelet at the nominal ratio, under budget
        data = _save(
            pil,
            "JPEG2000",
            quality_mode="rates",
            quality_layers=[24 / 0.5 * 1.03],
            irreversible=irreversible,
            mct=1,
            no_jp2=True,
        )
        assert len(data) <= budget_bytes(image, 0.5)
        other = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        assert chosen >= psnr_rgb(original=image, reconstruction=other) - 0.05


def test_rate_search_comes_down_when_the_encoder_overshoots():
    calls = []

    def overshooting(ratio: float) -> bytes:  # 6 % larger than the ratio asks for
        calls.append(ratio)
        return bytes(int(1.06 * 100_000 / ratio))

    ratio, data, tries, _ = _search_ratio(overshooting, budget=4000, nominal=25.0)
    assert 0.98 * 4000 <= len(data) <= 4000
    assert ratio > 25.0 and tries == len(calls) >= 2


def test_jpeg_takes_the_largest_quality_that_fits(tmp_path):
    image = realish_image()
    target = 0.8
    run = JpegCodec().run(image, target, tmp_path / "a.jpg")
    budget = budget_bytes(image, target)
    assert (tmp_path / "a.jpg").stat().st_size <= budget
    quality, name = run.choice["quality"], run.choice["subsampling"]
    assert name in ("4:4:4", "4:2:0") and 1 <= quality < 100
    subsampling = {"4:4:4": 0, "4:2:0": 2}[name]
    bigger = _save(
        Image.fromarray(image), "JPEG", quality=quality + 1, subsampling=subsampling, optimize=True
    )
    assert len(bigger) > budget


def test_jpeg_refuses_a_rate_below_quality_one(tmp_path):
    with pytest.raises(CodecError, match="quality 1"):
        JpegCodec().run(realish_image(), 0.01, tmp_path / "a.jpg")


@pytest.mark.shared_data
def test_jpeg2000_on_kodak_matches_the_reference_figure(tmp_path):
    """RESEARCH.md: kodim23 at 0.3 bpp is 35.9 dB with the colour transform (27.4-ish without)."""
    image = np.asarray(Image.open(kodak_path("kodim23.png")).convert("RGB"))
    run = Jpeg2000Codec().run(image, 0.3, tmp_path / "k.j2k")
    size = (tmp_path / "k.j2k").stat().st_size
    assert (1 - RATE_TOLERANCE) * budget_bytes(image, 0.3) <= size <= budget_bytes(image, 0.3)
    assert psnr_rgb(original=image, reconstruction=run.reconstruction) > 35.8


# --- metrics --------------------------------------------------------------------------------


def noisy_pair(noise: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:192, 0:256]
    base = 128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + 40 * np.sin((xx + yy) / 31.0)
    clean = np.clip(np.rint(np.stack([base, base[::-1], 255 - base], -1)), 0, 255)
    noisy = np.clip(clean + rng.integers(-noise, noise + 1, clean.shape), 0, 255)
    return clean.astype(np.uint8), noisy.astype(np.uint8)


def test_ms_ssim_of_identical_images_is_one():
    image = realish_image()
    assert ms_ssim(original=image, reconstruction=image) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("noise, expected", [(5, 0.9937976), (20, 0.9341626), (60, 0.7275886)])
def test_ms_ssim_matches_pytorch_msssim(noise, expected):
    """Reference values from pytorch-msssim 1.0.0 (data_range=255) on the same pair."""
    clean, noisy = noisy_pair(noise)
    assert ms_ssim(original=clean, reconstruction=noisy) == pytest.approx(expected, abs=2e-6)


def test_ms_ssim_of_flat_images_has_the_closed_form():
    """Flat images have no contrast or structure: only the coarsest luminance term is left,
    ((2ab + C1) / (a^2 + b^2 + C1)) ** w5."""
    a, b = 100, 140
    first = np.full((176, 176, 3), a, np.uint8)
    second = np.full((176, 176, 3), b, np.uint8)
    la, lb, c1 = a / 255, b / 255, K1**2
    expected = ((2 * la * lb + c1) / (la**2 + lb**2 + c1)) ** MS_SSIM_WEIGHTS[-1]
    assert ms_ssim(original=first, reconstruction=second) == pytest.approx(expected, rel=1e-9)


def test_ms_ssim_falls_as_noise_grows_and_is_symmetric():
    scores = []
    for noise in (2, 10, 30, 90):
        clean, noisy = noisy_pair(noise, seed=1)
        score = ms_ssim(original=clean, reconstruction=noisy)
        assert score == pytest.approx(ms_ssim(original=noisy, reconstruction=clean), abs=1e-12)
        scores.append(score)
    assert scores == sorted(scores, reverse=True) and scores[-1] < scores[0] - 0.2


def test_ms_ssim_needs_room_for_five_scales():
    side = ms_ssim_min_side()
    assert side == 161
    small = realish_image(side - 1, 300)
    assert ms_ssim(original=small, reconstruction=small) is None
    fits = realish_image(side, side)
    assert ms_ssim(original=fits, reconstruction=fits) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        ms_ssim(original=fits, reconstruction=small)


def test_psnr_rgb_of_a_known_error():
    image = np.full((8, 8, 3), 100, np.uint8)
    off_by_five = image + 5
    assert psnr_rgb(original=image, reconstruction=off_by_five) == pytest.approx(
        20 * math.log10(255 / 5)
    )


# --- Bjontegaard ----------------------------------------------------------------------------

ANCHOR_BPP = [0.1, 0.2, 0.3, 0.5, 1.0]
ANCHOR_PSNR = [26.3, 28.5, 29.9, 32.2, 36.0]


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.0, 1.25, 3.0])
def test_bd_rate_of_a_curve_scaled_in_rate_is_that_factor(factor):
    test_bpp = [r * factor for r in ANCHOR_BPP]
    assert bd_rate(ANCHOR_BPP, ANCHOR_PSNR, test_bpp, ANCHOR_PSNR) == pytest.approx(
        (factor - 1) * 100, abs=1e-6
    )


@pytest.mark.parametrize("shift", [-2.0, 0.0, 0.7])
def test_bd_psnr_of_a_curve_shifted_in_psnr_is_that_shift(shift):
    test_psnr = [p + shift for p in ANCHOR_PSNR]
    assert bd_psnr(ANCHOR_BPP, ANCHOR_PSNR, ANCHOR_BPP, test_psnr) == pytest.approx(shift)


def test_bd_sign_and_degenerate_cases():
    better = [p + 1 for p in ANCHOR_PSNR]
    assert bd_rate(ANCHOR_BPP, ANCHOR_PSNR, ANCHOR_BPP, better) < 0
    # two points: a straight line in log-rate, still exact for a pure rate scaling
    assert bd_rate([0.15, 0.3], [30.0, 33.0], [0.3, 0.6], [30.0, 33.0]) == pytest.approx(100)
    # no common PSNR interval, or a single point: no answer rather than an extrapolation
    assert bd_rate([0.1, 0.2], [20.0, 21.0], [0.1, 0.2], [30.0, 31.0]) is None
    assert bd_psnr([0.1], [20.0], [0.1], [20.0]) is None
    with pytest.raises(ValueError):
        bd_rate([0.1, 0.0], [20.0, 21.0], [0.1, 0.2], [20.0, 21.0])


# --- rows and resume ------------------------------------------------------------------------


def test_a_torn_last_line_is_skipped_and_not_glued_to_the_next_row(tmp_path):
    path = tmp_path / ROWS_FILE
    row = {"image": "a.png", "image_sha256": "0", "codec": "jpeg", "target_bpp": 0.5}
    append_row(path, {**row, "settings": {}, "psnr": 30.0})
    with path.open("ab") as handle:
        handle.write(b'{"image": "a.png", "cod')  # killed mid-write
    append_row(path, {**row, "target_bpp": 1.0, "settings": {}, "psnr": 33.0})
    rows = load_rows(path)
    assert sorted(r["psnr"] for r in rows.values()) == [30.0, 33.0]


def test_curve_leaves_out_targets_some_image_failed():
    rows = [
        {"target_bpp": 0.2, "bpp": 0.19, "psnr": 30.0, "ms_ssim": 0.9},
        {"target_bpp": 0.2, "bpp": 0.21, "psnr": 32.0, "ms_ssim": 0.8},
        {"target_bpp": 0.1, "bpp": 0.1, "psnr": 28.0, "ms_ssim": 0.7},
        {"target_bpp": 0.1, "error": "cannot"},
    ]
    for row in rows:
        row.update(encoding_time=1.0, decoding_time=0.5)
    results, skipped = curve(rows, [0.1, 0.2], images=2)
    assert skipped == [0.1]
    assert results["bpp"] == [pytest.approx(0.2)] and results["psnr-rgb"] == [31.0]
    assert results["ms-ssim-rgb"] == [pytest.approx(0.85)]


@pytest.fixture
def two_images(tmp_path):
    first = save_png(tmp_path / "first.png", realish_image(176, 192, seed=1))
    second = save_png(tmp_path / "second.png", realish_image(176, 192, seed=2))
    return [first, second]


@pytest.fixture
def counted_runs(monkeypatch):
    calls = []
    for cls in (Jpeg2000Codec, JpegCodec):
        original = cls.run

        def counting(self, image, target, stream, _original=original):
            calls.append((self.name, target))
            return _original(self, image, target, stream)

        monkeypatch.setattr(cls, "run", counting)
    return calls


def test_a_second_run_recomputes_nothing(tmp_path, two_images, counted_runs):
    config = SweepConfig(targets=(0.5, 1.0), codecs=("jpeg2000", "jpeg"))
    first = run_sweep(two_images, tmp_path / "out", config, log=lambda _: None)
    assert len(counted_runs) == 2 * 2 * 2
    second = run_sweep(two_images, tmp_path / "out", config, log=lambda _: None)
    assert len(counted_runs) == 8
    assert second["results"] == first["results"]
    # a new rate runs only that rate; --force runs everything again
    run_sweep(
        two_images,
        tmp_path / "out",
        SweepConfig(targets=(0.5, 1.0, 1.5), codecs=("jpeg",)),
        log=lambda _: None,
    )
    assert counted_runs[8:] == [("jpeg", 1.5)] * 2
    forced = SweepConfig(targets=(0.5,), codecs=("jpeg",), force=True)
    run_sweep(two_images, tmp_path / "out", forced, log=lambda _: None)
    assert len(counted_runs) == 12


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, two_images, monkeypatch):
    calls = []
    original = JpegCodec.run

    def flaky(self, image, target, stream):
        calls.append(target)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, image, target, stream)

    monkeypatch.setattr(JpegCodec, "run", flaky)
    config = SweepConfig(targets=(0.5, 1.0), codecs=("jpeg",))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(two_images, tmp_path / "out", config, log=lambda _: None)
    assert len(load_rows(tmp_path / "out" / ROWS_FILE)) == 2
    run_sweep(two_images, tmp_path / "out", config, log=lambda _: None)
    assert len(calls) == 3 + 2  # only the two rows that were not written


def test_result_files_follow_the_compressai_schema(tmp_path, two_images):
    config = SweepConfig(targets=(1.0, 0.5), codecs=("jpeg2000", "jpeg"))
    summary = run_sweep(two_images, tmp_path / "out", config, log=lambda _: None)
    for name in ("jpeg2000", "jpeg"):
        document = json.loads((tmp_path / "out" / f"{name}.json").read_text())
        assert {"name", "description", "results"} <= set(document)
        assert document["name"] == name and isinstance(document["description"], str)
        assert set(document["results"]) == SCHEMA_RESULTS
        for values in document["results"].values():
            assert len(values) == 2 and all(isinstance(v, float) for v in values)
        assert document["results"]["bpp"] == sorted(document["results"]["bpp"])
    rows = [json.loads(line) for line in (tmp_path / "out" / ROWS_FILE).read_text().splitlines()]
    assert len(rows) == 8
    for row in rows:
        assert {
            "image",
            "codec",
            "target_bpp",
            "settings",
            "bytes",
            "bpp",
            "psnr",
            "ms_ssim",
        } <= set(row)
        stream = tmp_path / "out" / row["stream"]
        assert stream.stat().st_size == row["bytes"]
        assert row["bpp"] == pytest.approx(8 * row["bytes"] / (176 * 192))
    assert set(summary["bd_vs_jpeg2000"]) == {"jpeg"}
    assert summary["bd_vs_jpeg2000"]["jpeg"]["bd_psnr_db"] < 0  # JPEG is the weaker baseline


def test_codecs_follow_the_registered_models(monkeypatch):
    class FakeSpec:
        name = "fakekan"

    assert "siren" in available_codecs() and "jpeg2000" in available_codecs()
    monkeypatch.setitem(MODEL_SPECS, 250, FakeSpec)
    assert "fakekan" in available_codecs()


# --- command line ---------------------------------------------------------------------------


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_sweeps_siren_and_baselines_on_tiny_images(capsys, tmp_path, image_file):
    source = image_file(24, 32, name="tiny.png")
    out = tmp_path / "rd"
    argv = ["rd", source, "--bpp", "6,8", "--codecs", "siren,jpeg2000,jpeg", "-o", out]
    code, stdout, err = run_cli(capsys, *argv, "--steps", "3", "--preset", "fast")
    assert code == 0, err
    assert "[1/6] tiny.png  siren" in err and "[6/6] tiny.png  jpeg" in err  # progress per row
    assert "siren vs jpeg2000" in stdout
    document = json.loads((out / "siren.json").read_text())
    assert set(document["results"]) == SCHEMA_RESULTS
    assert all(b <= t for b, t in zip(document["results"]["bpp"], [6, 8], strict=True))
    assert document["results"]["ms-ssim-rgb"] == [None, None]  # too small for 5 scales
    assert len(list((out / "bitstreams" / "tiny").glob("siren-*.inr"))) == 2
    with Image.open(out / "rd-psnr.png") as plot:
        assert plot.format == "PNG" and plot.width > 400
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["steps"] == 3 and "siren" in summary["bd_vs_jpeg2000"]
    # resumed: same settings run nothing; more steps are new settings for siren only
    code, _, err = run_cli(capsys, *argv, "--steps", "3", "--preset", "fast")
    assert code == 0 and "0 to run" in err
    code, _, err = run_cli(capsys, *argv, "--steps", "4", "--preset", "fast")
    assert code == 0 and "2 to run" in err


def test_cli_workers_share_the_images(capsys, tmp_path, two_images):
    out = tmp_path / "rd"
    code, _, err = run_cli(
        capsys, "rd", *two_images, "--bpp", "0.5,1", "--codecs", "jpeg2000", "-o", out,
        "--workers", "2",
    )  # fmt: skip
    assert code == 0, err
    assert {"[1/4]", "[4/4]"} <= {word for word in err.split() if word.startswith("[")}
    assert len(load_rows(out / ROWS_FILE)) == 4


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--codecs", "webp"], 2, "unknown codec webp"),
        (["--bpp", "0.1,x"], 2, "comma-separated"),
        (["--bpp", "-1"], 2, "(0, 64]"),
        (["--workers", "0"], 2, "at least 1"),
    ],
)
def test_cli_errors_are_one_line(capsys, tmp_path, image_file, args, code, message):
    source = image_file(16, 16)
    result, _, err = run_cli(capsys, "rd", source, "-o", tmp_path / "rd", *args)
    assert result == code and message in err and len(err.strip().splitlines()) == 1


def test_cli_reports_a_missing_input(capsys, tmp_path):
    code, _, err = run_cli(capsys, "rd", tmp_path / "nope.png", "-o", tmp_path / "rd")
    assert code == 3 and "no such file" in err


def test_make_rd_kodak_script_runs_every_kodak_image(tmp_path, monkeypatch, capsys):
    """scripts/rd_kodak.py on a stand-in Kodak directory of 24 tiny images (no download)."""
    import importlib.util

    from kancoin.datasets import kodak_checksums

    kodak = tmp_path / "kodak"
    kodak.mkdir()
    for seed, name in enumerate(sorted(kodak_checksums())):
        save_png(kodak / name, realish_image(16, 24, seed=seed))
    monkeypatch.setenv("KODAK_DIR", str(kodak))
    script = Path(__file__).resolve().parent.parent / "scripts" / "rd_kodak.py"
    spec = importlib.util.spec_from_file_location("rd_kodak", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "results"
    argv = ["--codecs", "jpeg2000", "--bpp", "6", "--workers", "1", "--out", str(out)]
    assert module.rd_kodak(argv) == 0
    assert len(load_rows(out / ROWS_FILE)) == 24
    run_notes = (out / "RUN.md").read_text()
    assert "scripts/rd_kodak.py" in run_notes and "24 from" in run_notes
    assert json.loads((out / "jpeg2000.json").read_text())["images"] == 24


def test_a_row_that_crashes_is_recorded_and_retried_on_the_next_run(
    tmp_path, two_images, monkeypatch
):
    calls = []
    original = JpegCodec.run

    def crashes_once(self, image, target, stream):
        calls.append(target)
        if len(calls) == 1:
            raise RuntimeError("out of file handles")
        return original(self, image, target, stream)

    monkeypatch.setattr(JpegCodec, "run", crashes_once)
    config = SweepConfig(targets=(0.5, 1.0), codecs=("jpeg",))
    logs: list[str] = []
    run_sweep(two_images, tmp_path / "out", config, log=logs.append)  # the sweep goes on
    rows = load_rows(tmp_path / "out" / ROWS_FILE)
    failed = [row for row in rows.values() if "error" in row]
    assert len(rows) == 4 and len(failed) == 1
    assert failed[0]["retry"] and failed[0]["error"] == "RuntimeError: out of file handles"
    assert any("1 of 4 rows failed" in line for line in logs)
    run_sweep(two_images, tmp_path / "out", config, log=lambda _: None)
    assert len(calls) == 4 + 1  # only the crashed row ran again
    assert not any("error" in row for row in load_rows(tmp_path / "out" / ROWS_FILE).values())


def test_engine_ray_without_ray_installed_is_one_clear_error(monkeypatch):
    from kancoin.engines import make_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UsageError, match=r"pip install 'kancoin\[ray\]'"):
        make_engine("ray")
