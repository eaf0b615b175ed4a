"""Audio: I/O, the audio container fields, rate in kbps, segments, decoding at any rate."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kancoin
from kancoin import adapters, audio, bitstream
from kancoin.audio import AudioInfo
from kancoin.bitstream import Header, TensorCoding
from kancoin.cli import main
from kancoin.entropy import EntropyParams, Family
from kancoin.errors import FormatError, InputError, LimitError, UsageError
from kancoin.models import SirenSpec
from kancoin.signals import psnr
from tests.conftest import SHARED_DATA, smooth_image

RATE = 8000
FAST = {"steps": 40, "preset": "fast"}


def tone(seconds=0.25, rate=RATE, channels=1, seed=0) -> np.ndarray:
    """A few low partials with random phases: speech-like band, easy for small networks."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    planes = []
    for _ in range(channels):
        freqs, phases = rng.uniform(40, 200, 3), rng.uniform(0, 2 * math.pi, 3)
        planes.append(
            sum(0.2 * np.sin(2 * math.pi * f * t + p) for f, p in zip(freqs, phases, strict=True))
        )
    return np.stack(planes, axis=1).astype(np.float32)


def noise(seconds=0.2, rate=RATE, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (round(seconds * rate), 1))


def silence_psnr(samples: np.ndarray) -> float:
    """PSNR of predicting silence: the floor any fit must beat."""
    return psnr(original=audio.to_unit(samples), reconstruction=np.full_like(samples, 0.5))


def test_tone_round_trip_closed_loop():
    clip = tone()
    result = kancoin.encode(clip, sample_rate=RATE, kbps=64, **FAST)
    decoded = kancoin.decode(result.data)
    assert decoded.shape == clip.shape and decoded.dtype == np.float32
    written = audio.to_int16(decoded).astype(np.float32) / audio.INT16_SCALE
    # the reported figures are those of the 16-bit clip decoded from the real bytes
    measured = psnr(original=audio.to_unit(clip), reconstruction=audio.to_unit(written))
    assert measured == pytest.approx(result.psnr, abs=1e-9)
    assert result.snr == pytest.approx(audio.snr(original=clip, reconstruction=written))
    assert result.header.psnr == pytest.approx(result.psnr, abs=0.006)
    assert result.psnr > silence_psnr(clip) + 6  # it learnt the waveform
    summary = result.summary()
    assert summary["kbps"] == pytest.approx(8 * len(result.data) / 0.25 / 1000, abs=1e-6)
    assert "bpp" not in summary and summary["snr"] == pytest.approx(result.snr, abs=1e-4)


def test_audio_encodes_on_one_thread_and_restore_the_count():
    before = torch.get_num_threads()
    seen = []
    kancoin.encode(
        tone(0.1),
        sample_rate=RATE,
        kbps=64,
        steps=2,
        progress=lambda *_: seen.append(torch.get_num_threads()),
    )
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before


def test_noise_round_trip_keeps_shape_and_range():
    clip = noise()
    result = kancoin.encode(clip, sample_rate=RATE, kbps=48, steps=5, preset="fast")
    decoded = kancoin.decode(result.data)
    assert decoded.shape == clip.shape
    assert np.all(np.abs(decoded) <= 1.0) and np.isfinite(result.snr)


def test_int16_arrays_are_audio_samples():
    clip = (tone() * 32768).astype(np.int16)
    result = kancoin.encode(clip, sample_rate=RATE, kbps=64, steps=5, segment_seconds=1)
    assert result.header.signal == AudioInfo(RATE, len(clip), 1, len(clip))


@given(
    kbps=st.floats(24.0, 96.0),
    seconds=st.floats(0.2, 0.8),
    rate=st.sampled_from([8000, 11025]),
)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_file_never_exceeds_the_target_rate(kbps, seconds, rate):
    clip = tone(seconds, rate=rate, seed=round(seconds * 100))
    result = kancoin.encode(clip, sample_rate=rate, kbps=kbps, steps=2, preset="fast")
    duration = len(clip) / rate
    assert 8 * len(result.data) <= kbps * 1000 * duration
    assert result.rate == pytest.approx(8 * len(result.data) / duration / 1000)
    assert result.rate >= 0.8 * kbps  # and most of the budget is used


def test_long_clips_are_cut_into_equal_segments():
    clip = tone(1.1)
    result = kancoin.encode(clip, sample_rate=RATE, kbps=64, segment_seconds=0.25, **FAST)
    info = result.header.signal
    assert info.networks == result.header.networks == 5
    assert info.segment_frames == math.ceil(len(clip) / 5)
    assert len(result.bit_depths()) == 5 * len(result.header.spec.tensor_shapes())
    decoded = kancoin.decode(result.data)
    assert decoded.shape == clip.shape
    assert result.psnr > silence_psnr(clip) + 6
    # one Lagrangian over all segments: a silent segment gets (almost) no bits
    quiet = clip.copy()
    quiet[: info.segment_frames] = 0
    coded = kancoin.encode(quiet, sample_rate=RATE, kbps=64, segment_seconds=0.25, **FAST)
    steps = [c.step_index for c in coded.header.tensors]
    per_network = len(coded.header.spec.tensor_shapes())
    assert np.mean(steps[:per_network]) > np.mean(steps[per_network:])


def test_default_segments_hold_about_8_kbit():
    assert adapters.segment_seconds(16) == 0.5 and adapters.segment_seconds(64) == 0.125
    assert adapters.segment_seconds(1) == 2.0 and adapters.segment_seconds(1000) == 0.0625
    assert adapters.segment_seconds(None) == 0.5
    result = kancoin.encode(tone(0.6), sample_rate=RATE, kbps=32, steps=1)
    assert result.header.networks == 3  # 0.25 s segments, equalised to 0.2 s


def test_any_model_family_codes_audio():
    clip = tone(0.25, channels=2)
    result = kancoin.encode(clip, sample_rate=RATE, kbps=96, steps=5, model="kan")
    assert result.header.spec.name == "kan" and result.header.spec.in_features == 1
    assert 8 * len(result.data) <= 96 * 1000 * 0.25
    assert kancoin.decode(result.data, scale=2).shape == (2 * len(clip), 2)


def test_stereo_channels_stay_apart():
    clip = tone(channels=2, seed=3)
    result = kancoin.encode(clip, sample_rate=RATE, kbps=96, **FAST)
    assert result.header.spec.out_features == 2
    decoded = kancoin.decode(result.data)
    assert decoded.shape == clip.shape
    errors = [[np.mean((decoded[:, i] - clip[:, j]) ** 2) for j in range(2)] for i in range(2)]
    assert errors[0][0] < errors[0][1] and errors[1][1] < errors[1][0]


def test_decode_at_other_rates_samples_the_same_function():
    clip = tone(0.3)
    data = kancoin.encode(clip, sample_rate=RATE, kbps=64, segment_seconds=0.1, **FAST).data
    native = kancoin.decode(data)
    double = kancoin.decode(data, scale=2)
    assert double.shape == (2 * len(clip), 1)
    # sample k at rate r sits at time k / r: every other sample at 2r is an original one
    np.testing.assert_allclose(double[::2], native, atol=2e-5)
    assert kancoin.decode(data, rate=12000).shape == (round(len(clip) * 1.5), 1)
    assert kancoin.decode(data, scale=0.5).shape == (len(clip) // 2, 1)
    with pytest.raises(UsageError):
        kancoin.decode(data, scale=2, rate=16000)
    with pytest.raises(UsageError, match="images"):
        kancoin.decode(data, size=(4, 4))
    with pytest.raises(LimitError):
        kancoin.decode(data, scale=50, max_pixels=10_000)


def test_clips_too_big_for_one_file_are_refused_before_fitting():
    # 15 s at 10 Mbit/s: ~19M parameters (not silence: that is coded without a fit)
    clip = (0.1 * np.sin(np.arange(8000 * 15) / 5)).astype(np.float32)[:, None]
    with pytest.raises(InputError, match="lower the rate"):
        kancoin.encode(clip, sample_rate=8000, kbps=10_000)


def test_wrong_rate_units_are_refused():
    with pytest.raises(UsageError, match="bpp is for images"):
        kancoin.encode(tone(), sample_rate=RATE, bpp=0.3, steps=1)
    with pytest.raises(UsageError, match="kbps is for audio"):
        kancoin.encode(smooth_image(8, 8), kbps=32, steps=1)
    image = kancoin.encode(smooth_image(8, 8), bpp=12.0, steps=1).data
    with pytest.raises(UsageError, match="audio"):
        kancoin.decode(image, rate=16000)


def write_clip(path, samples, rate=RATE, subtype="PCM_16"):
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


@pytest.mark.parametrize(
    "name,subtype",
    [("a.wav", "PCM_16"), ("b.wav", "PCM_24"), ("c.wav", "FLOAT"), ("d.flac", "PCM_24")],
)
def test_reads_wav_and_flac_depths(tmp_path, name, subtype):
    clip = tone(0.1, channels=2)
    path = write_clip(tmp_path / name, clip, subtype=subtype)
    samples, rate = audio.load_audio(path)
    assert rate == RATE and samples.shape == clip.shape and samples.dtype == np.float32
    tolerance = 1 / 32768 if subtype == "PCM_16" else 1e-6
    np.testing.assert_allclose(samples, clip, atol=tolerance)


def test_bad_audio_inputs_are_input_errors(tmp_path):
    cases = {
        "channels": write_clip(tmp_path / "nine.wav", np.zeros((100, 9), np.float32)),
        "empty": write_clip(tmp_path / "empty.wav", np.zeros((0, 1), np.float32)),
        "not audio": tmp_path / "text.wav",
        "U8": write_clip(tmp_path / "u8.wav", tone(0.1), subtype="PCM_U8"),
        "no such": tmp_path / "missing.flac",
    }
    cases["not audio"].write_text("hello")
    for reason, path in cases.items():
        with pytest.raises(InputError) as caught:
            kancoin.encode(path, steps=1)
        assert "\n" not in str(caught.value), reason
    with pytest.raises(InputError, match="within"):
        kancoin.encode(np.full((50, 1), 1.5, np.float32), sample_rate=RATE)
    with pytest.raises(InputError, match="sample rate"):
        kancoin.encode(tone(), sample_rate=0)
    with pytest.raises(UsageError, match="arrays"):
        kancoin.encode(cases["U8"], sample_rate=RATE)


def test_save_formats_by_suffix(tmp_path):
    clip = tone(0.1)
    data = kancoin.encode(clip, sample_rate=RATE, kbps=64, steps=5, preset="fast").data
    decoded = kancoin.decode(data, tmp_path / "x.flac")
    info = sf.info(str(tmp_path / "x.flac"))
    assert (info.format, info.subtype, info.frames) == ("FLAC", "PCM_16", len(clip))
    read, _ = sf.read(str(tmp_path / "x.flac"), dtype="int16")
    np.testing.assert_array_equal(
        read[:, None] if read.ndim == 1 else read, audio.to_int16(decoded)
    )
    with pytest.raises(UsageError, match="audio format"):
        kancoin.decode(data, tmp_path / "x.mp3")
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def audio_header(info: AudioInfo, spec: SirenSpec) -> Header:
    coding = TensorCoding(-5, EntropyParams(Family.LAPLACE, 60, 9))
    tensors = (coding,) * (len(spec.tensor_shapes()) * info.networks)
    return Header(info, spec, info.networks, tensors, 41.5)


@given(
    sample_rate=st.integers(1, 768_000),
    frames=st.integers(1, (1 << 32) - 1),
    channels=st.integers(1, 8),
    segments=st.integers(1, 40),
)
@settings(max_examples=60, deadline=None)
def test_audio_header_round_trip(sample_rate, frames, channels, segments):
    segment_frames = max(1, math.ceil(frames / segments))
    info = AudioInfo(sample_rate, frames, channels, segment_frames)
    spec = SirenSpec(in_features=1, out_features=channels, layers=2, width=3, w0_first=470.0)
    header = audio_header(info, spec)
    parsed, _ = bitstream.read(bitstream.write(header, b""))
    assert parsed.signal == info and parsed.spec == spec
    assert parsed.networks == info.networks


def test_network_count_must_match_the_segments():
    info = AudioInfo(8000, 1000, 1, 300)  # 4 segments
    spec = SirenSpec(in_features=1, out_features=1, layers=1, width=2)
    header = audio_header(info, spec)
    wrong = Header(info, spec, 3, header.tensors[: 3 * len(spec.tensor_shapes())], 40.0)
    with pytest.raises(FormatError, match="networks"):
        bitstream.read(bitstream.write(wrong, b""))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_encode_decode_info(tmp_path, capsys):
    source = write_clip(tmp_path / "clip.wav", tone(0.3))
    code, out, _ = run(capsys, "encode", source, "--kbps", 64, "--steps", 20, "--json", "-q")
    assert code == 0
    summary = json.loads(out)
    assert summary["kbps"] <= 64 and {"psnr", "snr", "networks"} <= set(summary)
    inr = tmp_path / "clip.inr"
    code, out, _ = run(capsys, "decode", inr, "-o", tmp_path / "back.wav", "--scale", 2)
    assert code == 0 and "4800 frames at 16000 Hz (0.300 s)" in out
    back = sf.info(str(tmp_path / "back.wav"))
    assert (back.samplerate, back.frames, back.subtype) == (16000, 4800, "PCM_16")
    before = source.read_bytes()
    code, _, err = run(capsys, "decode", inr, "--rate", 22050)  # default: clip.decoded.wav
    assert code == 0 and (tmp_path / "clip.decoded.wav").is_file(), err
    assert source.read_bytes() == before  # the source clip is never overwritten
    code, _, err = run(capsys, "decode", inr, "--rate", 22050, "-o", tmp_path / "r.wav")
    assert code == 0 and sf.info(str(tmp_path / "r.wav")).samplerate == 22050
    code, out, _ = run(capsys, "info", inr, "--json")
    info = json.loads(out)
    assert code == 0 and info["kbps"] == pytest.approx(summary["kbps"], abs=1e-5)
    assert info["sample_rate"] == RATE and info["frames"] == 2400


def test_cli_default_output_is_wav(tmp_path, capsys):
    clip = tone(0.1)
    inr = tmp_path / "t.inr"
    kancoin.encode(clip, inr, sample_rate=RATE, kbps=64, steps=2, preset="fast")
    code, out, _ = run(capsys, "decode", inr)
    assert code == 0 and (tmp_path / "t.decoded.wav").is_file() and "800 frames at 8000 Hz" in out


def test_cli_refuses_wrong_units_and_corrupt_files(tmp_path, capsys, image_file):
    source = write_clip(tmp_path / "clip.wav", tone(0.1))
    code, _, err = run(capsys, "encode", source, "--bpp", 0.3, "--steps", 1, "-q")
    assert code == 2 and "as kbps" in err and err.count("\n") == 1
    code, _, err = run(capsys, "encode", image_file(8, 8), "--kbps", 32, "--steps", 1, "-q")
    assert code == 2 and "as bpp" in err and err.count("\n") == 1
    inr = tmp_path / "c.inr"
    kancoin.encode(source, inr, kbps=64, steps=2, preset="fast")
    data = bytearray(inr.read_bytes())
    data[len(data) // 2] ^= 0x40
    inr.write_bytes(bytes(data))
    code, _, err = run(capsys, "decode", inr, "-o", tmp_path / "c.wav")
    assert code == 4 and "corrupt" in err and err.count("\n") == 1
    assert not (tmp_path / "c.wav").exists()


def test_shared_clip_excerpt():
    path = SHARED_DATA / "audio" / "librispeech_1995-1837-0001_16k.wav"
    if not path.is_file():
        pytest.skip(f"shared audio not found at {path.parent} (CI and dev machines have it)")
    samples, rate = audio.load_audio(path)
    excerpt = samples[3 * rate : 4 * rate]  # one second of speech
    result = kancoin.encode(excerpt, sample_rate=rate, kbps=32, steps=60, preset="fast")
    assert result.rate <= 32 and result.header.networks == 4  # 8 kbit per segment
    assert result.psnr > silence_psnr(excerpt) + 3
    assert kancoin.decode(result.data, scale=2).shape == (2 * rate, 1)
