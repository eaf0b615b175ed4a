"""Audio in `kancoin rd`: the measures, MP3 and Opus at their best, the sweep and its CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kancoin.cli import main
from kancoin.errors import UsageError
from kancoin.rd import SweepConfig, available_codecs, run_sweep
from kancoin.rd.audio_baselines import Mp3Codec, OpusCodec, soundfile_formats
from kancoin.rd.audio_metrics import (
    align_to,
    boundary_error,
    log_spectral_distance,
    lsd_window,
    psnr,
    resample,
    waveform_snr,
)
from kancoin.rd.results import ROWS_FILE, load_rows
from kancoin.rd.sweep import segment_boundaries

sf = pytest.importorskip("soundfile")
FORMATS = soundfile_formats()
needs_mp3 = pytest.mark.skipif(not FORMATS["mp3"], reason="this libsndfile writes no MP3")
needs_opus = pytest.mark.skipif(not FORMATS["opus"], reason="this libsndfile writes no Opus")
AUDIO_RESULTS = {
    "kbps",
    "psnr",
    "snr",
    "lsd",
    "boundary_psnr",
    "boundary_excess_db",
    "encoding_time",
    "decoding_time",
}


def tone(frames: int = 8000, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A decaying chord with a little noise: frames x 1 float32 in [-1, 1]."""
    t = np.arange(frames) / rate
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.15 * np.sin(2 * np.pi * 1250 * t)
    x = x * np.exp(-2 * t) + 0.02 * rng.standard_normal(frames)
    return x.astype(np.float32)[:, None]


@pytest.fixture
def clip_file(tmp_path):
    def make(name="tone.wav", frames=8000, rate=16000):
        path = tmp_path / name
        sf.write(str(path), tone(frames, rate), rate, subtype="PCM_16")
        return path

    return make


# --- measures --------------------------------------------------------------------------------


def test_measures_of_identical_and_noisy_clips():
    x = tone()
    assert log_spectral_distance(original=x, reconstruction=x, sample_rate=16000) == 0.0
    assert psnr(original=x, reconstruction=x) == math.inf
    noisy = x + 0.01 * np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    # PSNR on [0, 1]: the error halves, so 20 log10(2 / 0.01) for noise of RMS 0.01
    assert psnr(original=x, reconstruction=noisy) == pytest.approx(46.0, abs=0.2)
    signal = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / 1e-4)
    assert waveform_snr(original=x, reconstruction=noisy) == pytest.approx(signal, abs=0.2)
    lsd = log_spectral_distance(original=x, reconstruction=noisy, sample_rate=16000)
    louder = x + 0.05 * np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    assert 0 < lsd < log_spectral_distance(original=x, reconstruction=louder, sample_rate=16000)
    assert (lsd_window(16000), lsd_window(44100), lsd_window(48000)) == (512, 1024, 2048)


def test_lsd_sees_a_lost_high_band_that_psnr_barely_sees():
    x = tone()
    spectrum = np.fft.rfft(x[:, 0])
    rng = np.random.default_rng(2)
    high = len(spectrum) - len(spectrum) // 2
    spectrum[len(spectrum) // 2 :] += 0.3 * rng.standard_normal(high)
    bright = np.fft.irfft(spectrum, len(x)).astype(np.float32)[:, None]
    dull = resample(resample(bright, 16000, 8000), 8000, 16000)  # the top half band gone
    assert psnr(original=bright, reconstruction=dull) > 40
    assert log_spectral_distance(original=bright, reconstruction=dull, sample_rate=16000) > 20


def test_align_finds_a_delay_and_resample_round_trips():
    x = tone()
    delayed = np.concatenate([np.zeros((37, 1), np.float32), x])
    aligned, delay = align_to(x, delayed, max_lag=100)
    assert delay == 37 and np.array_equal(aligned, x)
    early, delay = align_to(x, x[5:], max_lag=100)
    assert delay == -5 and np.array_equal(early[5:], x[5:]) and not early[:5].any()
    back = resample(resample(x, 16000, 48000), 48000, 16000)
    assert back.shape == x.shape and np.abs(back - x).max() < 1e-4


def test_boundary_error_is_positive_where_the_error_clusters():
    x = tone()
    y = x + 0.001
    y[3990:4010] += 0.05  # a click at the boundary
    near = boundary_error(original=x, reconstruction=y, boundaries=[4000], half_width=80)
    far = boundary_error(original=x, reconstruction=y, boundaries=[2000], half_width=80)
    assert near["boundary_excess_db"] > 10 > -1 > far["boundary_excess_db"]
    assert boundary_error(original=x, reconstruction=y, boundaries=[], half_width=80) == {
        "boundary_psnr": None,
        "boundary_excess_db": None,
    }
    # SIREN's segments: 0.25 s at 32 kbps, 8000 frames at 16 kHz -> 2 segments
    assert segment_boundaries(8000, 16000, 32) == [4000]
    assert segment_boundaries(8000, 16000, 16) == []


# --- baselines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "codec",
    [pytest.param(Mp3Codec(), marks=needs_mp3), pytest.param(OpusCodec(), marks=needs_opus)],
)
@pytest.mark.parametrize("rate", [16000, 44100])
def test_baselines_meet_the_rate_with_the_container(tmp_path, codec, rate):
    x = tone(rate // 2, rate)
    stream = tmp_path / f"x{codec.suffix}"
    run = codec.run_audio(x, rate, 32.0, stream)
    size = stream.stat().st_size
    assert 8 * size <= 32.0 * 1000 * 0.5 and run.choice["budget_used"] > 0.5
    assert run.reconstruction.shape == x.shape
    assert np.array_equal(run.reconstruction, np.rint(run.reconstruction * 32768) / 32768)
    assert psnr(original=x, reconstruction=run.reconstruction) > 35
    assert run.choice["sample_rate"] <= max(rate, 48000)


# --- sweep -----------------------------------------------------------------------------------


def test_audio_codecs_and_config():
    assert {"mp3", "opus", "siren"} <= set(available_codecs(audio=True))
    assert "mp3" not in available_codecs() and "jpeg" not in available_codecs(audio=True)
    with pytest.raises(UsageError, match="unknown codec jpeg"):
        SweepConfig(targets=(32.0,), codecs=("jpeg",), audio=True)
    with pytest.raises(UsageError, match="--kbps rates"):
        SweepConfig(targets=(0.0,), audio=True)


@needs_mp3
@needs_opus
def test_cli_sweeps_siren_mp3_and_opus(capsys, tmp_path, clip_file):
    source = clip_file()
    out = tmp_path / "rd"
    argv = ["rd", source, "--kbps", "32,64", "--codecs", "siren,mp3,opus", "-o", out]
    code = main(list(map(str, [*argv, "--steps", "3", "--threads", "1"])))
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "[1/6] tone.wav  siren" in err and "siren vs mp3" in stdout
    for name in ("siren", "mp3", "opus"):
        document = json.loads((out / f"{name}.json").read_text())
        assert set(document["results"]) == AUDIO_RESULTS
        assert all(k <= t for k, t in zip(document["results"]["kbps"], [32, 64], strict=True))
    rows = list(load_rows(out / ROWS_FILE).values())
    assert len(rows) == 6 and {r["clip"] for r in rows} == {"tone.wav"}
    siren32 = next(r for r in rows if r["codec"] == "siren" and r["target_kbps"] == 32)
    assert siren32["boundaries"] == 1 and siren32["choice"]["networks"] == 2
    assert 8 * Path(out / siren32["stream"]).stat().st_size == 1000 * siren32["kbps"] * 0.5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["unit"] == "kbps" and set(summary["bd_vs_mp3"]) == {"siren", "opus"}
    with Image.open(out / "rd-psnr.png") as plot:
        assert plot.format == "PNG"
    main(list(map(str, [*argv, "--steps", "3", "--threads", "1"])))
    assert "0 to run" in capsys.readouterr().err  # resumed


def test_cli_refuses_mixed_inputs_and_rates(capsys, tmp_path, clip_file, image_file):
    source = clip_file()
    for args, message in [
        ([source, "--bpp", "0.3"], "give audio (WAV/FLAC) with --kbps"),
        ([image_file(16, 16), "--kbps", "32"], "give audio (WAV/FLAC) with --kbps"),
        ([source, "--kbps", "32", "--bpp", "0.3"], "not both"),
        ([source, "--kbps", "32,x"], "--kbps takes comma-separated"),
    ]:
        code = main(list(map(str, ["rd", *args, "-o", tmp_path / "rd"])))
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_run_sweep_api_on_a_stereo_clip(tmp_path):
    path = tmp_path / "st.flac"
    x = tone(4000)
    sf.write(str(path), np.concatenate([x, 0.5 * x], axis=1), 16000, subtype="PCM_16")
    config = SweepConfig(targets=(64.0,), codecs=("siren",), steps=2, threads=1, audio=True)
    summary = run_sweep([path], tmp_path / "rd", config, log=lambda _: None)
    assert summary["clips"] == ["st.flac"] and len(summary["results"]["siren"]["kbps"]) == 1


def test_codec_steps_set_each_family_apart():
    from kancoin.rd.sweep import parse_codec_steps

    pairs = parse_codec_steps("siren=300, grid1d=600")
    assert pairs == (("siren", 300), ("grid1d", 600))
    config = SweepConfig(
        targets=(32.0,), codecs=("siren", "grid1d", "mp3"), steps=50, codec_steps=pairs, audio=True
    )
    steps = {codec.name: getattr(codec, "steps", None) for codec in config.build_codecs()}
    assert steps == {"siren": 300, "grid1d": 600, "mp3": None}
    with pytest.raises(UsageError, match="CODEC=STEPS"):
        parse_codec_steps("siren:300")
    with pytest.raises(UsageError, match="at least 1"):
        SweepConfig(targets=(32.0,), codec_steps=(("siren", 0),), audio=True)
