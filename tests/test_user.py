"""Issue 17: what a new user of a codec expects (README flow, photos, pipes, batches...)."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import kancoin
from kancoin.cli import main
from kancoin.errors import InputError, UsageError
from kancoin.signals import load_image

FAST = ["--steps", "5", "--preset", "fast"]


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def png_16bit(path, pixels: np.ndarray) -> None:
    """A 16-bit PNG written by hand: Pillow cannot write 16-bit RGB."""
    height, width, channels = pixels.shape
    colour = {1: 0, 3: 2}[channels]
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# photo input


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[0, 0] = 255  # a marker in the stored top-left corner
    img = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif, quality=100)
    loaded = load_image(path)
    assert loaded.shape == (6, 4, 3)  # displayed upright: portrait
    assert loaded[0, -1].mean() > 0.5  # the marker moved to the top-right corner


def swapped_primaries_profile() -> bytes:
    """Pillow's sRGB profile with its red and blue primaries swapped: a valid RGB profile
    whose colours are far from sRGB's."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", data[128:132])
    entries = {}
    for i in range(count):
        at = 132 + 12 * i
        entries[bytes(data[at : at + 4])] = at
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    data[red + 4 : red + 12], data[blue + 4 : blue + 12] = (
        data[blue + 4 : blue + 12],
        data[red + 4 : red + 12],
    )
    data[84:100] = bytes(16)  # profile ID: none
    return bytes(data)


def test_icc_profile_is_converted_to_srgb(tmp_path):
    pixels = np.full((4, 4, 3), (200, 60, 30), np.uint8)
    plain, srgb, swapped = tmp_path / "plain.png", tmp_path / "srgb.png", tmp_path / "swap.png"
    Image.fromarray(pixels).save(plain)
    srgb_bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(pixels).save(srgb, icc_profile=srgb_bytes)
    Image.fromarray(pixels).save(swapped, icc_profile=swapped_primaries_profile())
    assert np.abs(load_image(srgb) - load_image(plain)).max() <= 2 / 255
    converted = load_image(swapped)[0, 0] * 255
    assert converted[2] > converted[0]  # red stored under blue's primary: shown blue-ish


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_refused_the_same_for_grey_and_colour(tmp_path, channels):
    path = tmp_path / f"deep{channels}.png"
    png_16bit(path, np.full((4, 5, channels), 40000, np.uint16))
    with pytest.raises(InputError, match="16-bit images are not supported"):
        load_image(path)


def test_decompression_bomb_is_an_input_error(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("L", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 is then a "bomb"
    with pytest.raises(InputError, match="too many pixels"):
        load_image(path)


def test_ogg_is_called_unsupported_audio(tmp_path):
    path = tmp_path / "song.ogg"
    path.write_bytes(b"OggS" + bytes(60))
    with pytest.raises(InputError, match="ogg audio is not supported"):
        load_image(path)


# the README's flow never endangers the originals

README = Path(__file__).resolve().parent.parent / "README.md"
FAST_ENCODE = ["--steps", "5", "--preset", "fast"]


def readme_commands(section_marker: str) -> list[str]:
    """The `kancoin ...` lines (and pipelines) of the first sh block after
    `section_marker`, comments dropped."""
    text = README.read_text()
    block = text[text.index(section_marker) :]
    block = block[block.index("```sh") + 5 :]
    block = block[: block.index("```")]
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    return [line for line in lines if "kancoin " in line]


def run_readme_line(capsys, line: str, cwd: Path) -> None:
    """One README line as a user runs it, the fit shortened (its length is not under
    test): a shell for pipelines and globs, main() otherwise (faster)."""
    fast = "kancoin encode " + " ".join(FAST_ENCODE) + " "
    if "|" in line or "*" in line:
        command = line.replace("kancoin encode ", fast).replace(
            "kancoin ", f"{shlex.quote(sys.executable)} -m kancoin.launch "
        )
        done = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True)
        assert done.returncode == 0, (line, done.stderr)
        return
    argv = shlex.split(line.replace("kancoin encode ", fast))[1:]
    code, _out, err = run(capsys, *argv)
    assert code == 0, (line, err)


def photo(path: Path, height=48, width=64) -> None:
    rng = np.random.default_rng(0)
    _y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([128 + 100 * np.sin(x / 7 + c) for c in range(3)], axis=-1)
    pixels = pixels + rng.normal(0, 3, pixels.shape)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)


def test_readme_usage_lines_leave_the_photo_byte_identical(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "photo.png", 96, 128)
    before = (tmp_path / "photo.png").read_bytes()
    lines = readme_commands("## Usage")
    assert len(lines) >= 5 and lines[1].startswith("kancoin decode")
    for line in lines:
        run_readme_line(capsys, line, tmp_path)
        assert (tmp_path / "photo.png").read_bytes() == before, line
    assert (tmp_path / "photo.decoded.png").is_file() and (tmp_path / "roundtrip.png").is_file()
    # following the old hint (--force) on the default decode cannot hit the original either
    assert run(capsys, "decode", "photo.inr", "--force")[0] == 0
    assert (tmp_path / "photo.png").read_bytes() == before


def test_readme_audio_lines_leave_the_wav_byte_identical(capsys, tmp_path, monkeypatch):
    soundfile = pytest.importorskip("soundfile")
    monkeypatch.chdir(tmp_path)
    t = np.arange(8000) / 16000
    soundfile.write("speech.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    before = (tmp_path / "speech.wav").read_bytes()
    lines = readme_commands("### Audio")
    assert len(lines) >= 3
    for line in lines:
        run_readme_line(capsys, line, tmp_path)
        assert (tmp_path / "speech.wav").read_bytes() == before, line
    assert (tmp_path / "speech.decoded.wav").is_file()
    code, _, err = run(capsys, "decode", "speech.inr", "-o", "speech.wav", "--force")
    assert code == 6 and "original" in err
    assert (tmp_path / "speech.wav").read_bytes() == before


# outputs


def test_unwritable_outputs_fail_before_fitting_with_exit_6(capsys, tmp_path, monkeypatch):
    source = tmp_path / "img.png"
    photo(source, 8, 8)
    import kancoin.encoder

    def no_fit(*args, **kwargs):
        raise AssertionError("the fit ran before the output was checked")

    monkeypatch.setattr(kancoin.encoder, "_fit_parts", no_fit)
    (tmp_path / "small.png").write_bytes(b"x")
    for target in (tmp_path / "missing" / "x.inr", tmp_path / "small.png" / "x.inr"):
        code, _, err = run(capsys, "encode", source, "-o", target, *FAST)
        assert code == 6 and err.count("\n") == 1, err
    if Path("/proc").is_dir():
        code, _, err = run(capsys, "encode", source, "-o", "/proc/kancoin-test.inr", *FAST)
        assert code == 6 and "cannot write" in err and "internal" not in err


def test_outputs_follow_the_umask(capsys, tmp_path):
    source = tmp_path / "img.png"
    photo(source, 8, 8)
    previous = os.umask(0o022)
    try:
        from kancoin import fileio

        fileio.new_file_mode.cache_clear()
        assert run(capsys, "encode", source, "--bpp", "16", *FAST)[0] == 0
        assert run(capsys, "decode", tmp_path / "img.inr")[0] == 0
        assert (tmp_path / "img.inr").stat().st_mode & 0o777 == 0o644
        assert (tmp_path / "img.decoded.png").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(previous)
        fileio.new_file_mode.cache_clear()


def strict_json(text: str):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_never_holds_infinity(capsys, tmp_path):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (24, 16), (10, 200, 30)).save(flat)
    code, out, err = run(capsys, "encode", flat, "--bpp", "8", "--json", *FAST)
    assert code == 0, err
    summary = strict_json(out)
    assert summary["psnr"] is None  # exact: documented as null (docs/CLI.md)
    code, out, _ = run(capsys, "info", tmp_path / "flat.inr", "--json")
    assert strict_json(out)["exact"] is True


def test_silence_is_valid_json_and_costs_little(capsys, tmp_path):
    soundfile = pytest.importorskip("soundfile")
    wav = tmp_path / "silence.wav"
    soundfile.write(wav, np.zeros(32000, np.int16), 16000)
    code, out, err = run(capsys, "encode", wav, "--kbps", "32", "--json", *FAST)
    assert code == 0, err
    summary = strict_json(out)
    assert summary["snr"] is None and summary["psnr"] is None
    assert summary["bytes"] < 400  # was the full 32 kbps: 8000 bytes


def test_flat_image_spends_few_bytes_even_with_a_large_rate(tmp_path):
    image = np.zeros((64, 96, 3), np.uint8) + np.array([200, 120, 40], np.uint8)
    result = kancoin.encode(image, bpp=2.0, steps=5, preset="fast")
    assert result.num_bytes < 100 and result.psnr == float("inf")


def test_psnr_target_on_a_flat_kodak_sized_image(capsys, tmp_path):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (768, 512), (90, 140, 210)).save(flat)
    code, out, err = run(capsys, "encode", flat, "--psnr", "40", "--json")
    assert code == 0, err
    summary = strict_json(out)
    assert summary["bytes"] < 200 and summary["target_met"] is True


def test_psnr_target_stops_the_fit_early(tmp_path):
    from tests.conftest import smooth_image

    image = smooth_image(32, 48)
    full = kancoin.encode(image, bpp=8.0, steps=300, preset="fast")
    target = kancoin.encode(image, psnr=25.0, bpp=8.0, steps=300, preset="fast")
    assert target.psnr >= 25.0 and target.target_met
    assert target.steps < full.steps and target.num_bytes < full.num_bytes


# errors and small things


def test_quiet_keeps_the_result_line(capsys, tmp_path):
    source = tmp_path / "img.png"
    photo(source, 8, 8)
    code, out, err = run(capsys, "encode", source, "--bpp", "16", "-q", *FAST)
    assert code == 0 and "img.inr:" in out and "bytes" in out and err == ""


def test_bomb_through_the_cli_is_exit_3(capsys, tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("L", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    code, _, err = run(capsys, "encode", path, *FAST)
    assert code == 3 and "internal" not in err


def test_inr_errors_name_the_file_and_directories_are_named(capsys, tmp_path):
    bad = tmp_path / "bad.inr"
    bad.write_bytes(b"KINR\x01" + bytes(40))
    code, _, err = run(capsys, "info", bad)
    assert code == 4 and str(bad) in err
    code, _, err = run(capsys, "info", tmp_path)
    assert code == 3 and "is a directory" in err


def test_usage_errors_are_one_line_exit_2(capsys, tmp_path):
    source = tmp_path / "img.png"
    photo(source, 8, 8)
    for argv in (
        ["encode", source, "--threads", "0", *FAST],
        ["encode", source, "--bpp", "abc"],
        ["decode", tmp_path / "x.inr", "--size", "0x0"],
    ):
        code, _out, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and "Usage:" not in err, (argv, err)


def test_a_rate_too_low_says_what_would_work(capsys, tmp_path):
    tiny = tmp_path / "tiny.png"
    photo(tiny, 8, 8)
    code, _, err = run(capsys, "encode", tiny, "--bpp", "8", *FAST)
    assert code == 7 and "--bpp" in err and "would do" in err
    one = tmp_path / "one.png"
    photo(one, 1, 1)
    code, _, err = run(capsys, "encode", one, "--bpp", "64", *FAST)
    assert code == 7 and "--psnr" in err
    code, _out, err = run(capsys, "encode", one, "--psnr", "40", *FAST)
    assert code == 0, err  # a 1x1 image can be encoded: with a quality target


def test_info_lossless_and_audio(capsys, tmp_path):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (24, 16), (10, 200, 30)).save(flat)
    assert run(capsys, "encode", flat, "--bpp", "8", *FAST)[0] == 0
    _, out, _ = run(capsys, "info", tmp_path / "flat.inr")
    assert "exact" in out and "655" not in out
    soundfile = pytest.importorskip("soundfile")
    wav = tmp_path / "tone.wav"
    t = np.arange(16000) / 16000
    soundfile.write(wav, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    assert run(capsys, "encode", wav, "--kbps", "64", *FAST)[0] == 0
    _code, out, _ = run(capsys, "info", tmp_path / "tone.inr")
    assert "snr" in out and "networks" in out
    assert len(out.splitlines()) < 20  # one line per tensor position, not per network


def test_decoding_to_jpeg_states_and_uses_a_quality(capsys, tmp_path):
    source = tmp_path / "img.png"
    photo(source, 32, 32)
    assert run(capsys, "encode", source, "--bpp", "16", *FAST)[0] == 0
    inr = tmp_path / "img.inr"
    code, out, _ = run(capsys, "decode", inr, "-o", tmp_path / "a.jpg", "--scale", "4")
    assert code == 0 and "quality 95" in out
    code, out, _ = run(
        capsys, "decode", inr, "-o", tmp_path / "b.jpg", "--scale", "4", "--quality", "20"
    )
    assert code == 0 and "quality 20" in out
    assert (tmp_path / "b.jpg").stat().st_size < (tmp_path / "a.jpg").stat().st_size
    code, _, _err = run(capsys, "decode", inr, "-o", tmp_path / "c.png", "--quality", "20")
    assert code == 2


def test_decode_renders_in_chunks_of_coordinates(monkeypatch):
    """Coordinates exist for one chunk at a time, never for the whole output grid."""
    from kancoin import render

    image = np.zeros((40, 30, 3), np.float32) + 0.5
    result = kancoin.encode(image, bpp=16.0, steps=20, preset="fast")
    full = kancoin.decode(result.data, size=(300, 400))
    seen = []
    original = render.render_into

    def spy(model, count, coords_at, like, **kwargs):
        def recording(start, stop):
            coords = coords_at(start, stop)
            seen.append(coords.shape[0])
            return coords

        return original(model, count, recording, like, **{**kwargs, "chunk": 3000})

    monkeypatch.setattr(render, "render_into", spy)
    chunked = kancoin.decode(result.data, size=(300, 400))
    assert max(seen) <= 3000 and len(seen) > 1
    np.testing.assert_allclose(chunked, full, atol=1e-6)


def test_default_threads_do_not_depend_on_the_machine(monkeypatch):
    from kancoin import adapters, encoder

    used = []

    class Stop(Exception):
        pass

    def record(threads):
        used.append(threads)
        raise Stop

    monkeypatch.setattr(encoder, "thread_limit", record)
    for cores in (1, 64):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        torch.set_num_threads(min(cores, 2))
        for size in ((512, 512), (16, 16)):
            with pytest.raises(Stop):
                kancoin.encode(np.zeros((*size, 3), np.uint8) + 7, bpp=8.0, steps=1)
    torch.set_num_threads(1)
    assert used == [adapters.DEFAULT_IMAGE_THREADS, 1] * 2


def test_top_level_help_is_complete_and_torch_free(capsys):
    from kancoin.launch import TOP_LEVEL_HELP

    code, out, _ = run(capsys, "--help")
    assert code == 0 and out == TOP_LEVEL_HELP and "..." not in out.split("Commands:")[1]
    probe = (
        "import sys; from kancoin.launch import main; main(['--version']); main(['--help']);"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip().endswith("False"), done.stdout + done.stderr
    assert f"version {kancoin.__version__}" in done.stdout


def test_rd_codecs_all_is_explicit(capsys):
    from click.testing import CliRunner

    from kancoin.cli import cli
    from kancoin.rd.neural import model_names
    from kancoin.rd.sweep import parse_codecs

    assert parse_codecs("all") is None
    # a wide terminal: an 80-column help may wrap a name at its hyphen (kan-\nfourier)
    out = CliRunner().invoke(cli, ["rd", "--help"], terminal_width=400).output
    for name in [*model_names(), "jpeg2000", "jpeg"]:
        assert name in out


def test_docs_cited_by_the_cli_exist():
    import kancoin.cli

    root = README.parent
    cited = set(re.findall(r"docs/[A-Z]+\.md", Path(kancoin.cli.__file__).read_text()))
    assert "docs/CLI.md" in cited
    for doc in cited:
        assert (root / doc).is_file(), doc


def test_library_type_errors_and_short_repr():
    with pytest.raises(UsageError, match="bpp must be a number"):
        kancoin.encode(np.zeros((8, 8, 3), np.uint8), bpp="0.3")
    result = kancoin.encode(np.zeros((8, 8, 3), np.uint8) + 9, bpp=16.0, steps=3)
    assert len(repr(result)) < 200 and "bytes=" in repr(result)


def test_progress_labels_phases_and_logs_occasionally():
    from kancoin.progress import FitProgress

    stream = io.StringIO()
    with FitProgress("img.png", stream=stream, interactive=False) as progress:
        progress.phase("fit")
        for step in range(1, 2001):
            progress(step, step / 2000, 30.0, 0.0)
        progress.phase("fine-tuning")
        progress.phase("bit allocation")
        progress.phase("verification")
    lines = stream.getvalue().splitlines()
    assert len(lines) <= 16 and "\r" not in stream.getvalue()
    for phase in ("fine-tuning", "bit allocation", "verification"):
        assert any(phase in line for line in lines)


def test_a_long_fit_is_announced_with_a_faster_preset(monkeypatch):
    from kancoin import progress as progress_module
    from kancoin.progress import FitProgress, faster_hint

    clock = iter([0.0, *np.arange(1.0, 1000.0, 1.0)])
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    hint = faster_hint("default")
    with FitProgress("big.png", stream=stream, interactive=False, hint=hint) as progress:
        for step in range(1, 60):
            progress(step, step / 4000, float("nan"), 0.0)  # 1 s a step: over an hour
    text = stream.getvalue()
    assert "warning" in text and "--preset fast" in text and "h to fit" in text


def test_progress_shows_the_whole_signal_psnr():
    from tests.conftest import smooth_image

    seen = []
    result = kancoin.encode(
        smooth_image(24, 24),
        bpp=8.0,
        steps=80,
        qat_steps=0,  # fine-tuning reports the rounded network's checkpoints
        preset="fast",
        progress=lambda step, done, psnr, elapsed: seen.append(psnr),
    )
    checkpoints = {round(p, 6) for _, _, p in result.history}
    shown = {round(p, 6) for p in seen if np.isfinite(p)}
    assert shown and shown <= checkpoints | {round(result.psnr_float, 6)}


# batches and pipes


def test_batch_encodes_each_file_and_reports_the_bad_one(capsys, tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        photo(tmp_path / name, 12, 12)
    (tmp_path / "bad.png").write_text("not an image")
    out = tmp_path / "out"
    inputs = [tmp_path / n for n in ("a.png", "bad.png", "b.png", "c.png")]
    code, stdout, err = run(capsys, "encode", *inputs, "-o", out, "--bpp", "16", *FAST)
    assert code == 3  # the bad file's family
    assert sorted(p.name for p in out.iterdir()) == ["a.inr", "b.inr", "c.inr"]
    assert "bad.png: failed" in stdout and "3 encoded, 0 skipped, 1 failed" in stdout
    assert err.count("batch: ") == 4  # one overall progress, a line per file in a log
    code, stdout, _ = run(capsys, "encode", tmp_path / "a.png", tmp_path / "b.png", "-o", out)
    assert code == 0 and "2 skipped" in stdout


def test_batch_of_a_directory_with_workers(capsys, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        photo(folder / name, 12, 12)
    out = tmp_path / "out"
    argv = ["encode", folder, "-o", out, "--workers", "2", "--bpp", "16", "--json", *FAST]
    code, stdout, err = run(capsys, *argv)
    assert code == 0, err
    assert [strict_json(line)["output"] for line in stdout.splitlines()] == sorted(
        str(out / n) for n in ("a.inr", "b.inr")
    ) or len(stdout.splitlines()) == 2


def test_pipes_through_stdin_and_stdout(tmp_path):
    source = tmp_path / "img.png"
    photo(source, 16, 24)
    launcher = [sys.executable, "-m", "kancoin.launch"]
    encode = [*launcher, "encode", "-", "--bpp", "16", *FAST, "-o", "-"]
    decode = [*launcher, "decode", "-", "-o", "-"]
    encoded = subprocess.run(encode, input=source.read_bytes(), capture_output=True, check=True)
    assert encoded.stdout[:4] == kancoin_magic()
    decoded = subprocess.run(decode, input=encoded.stdout, capture_output=True, check=True)
    with Image.open(io.BytesIO(decoded.stdout)) as img:
        assert img.format == "PNG" and img.size == (24, 16)
    assert b"bytes" in encoded.stderr  # the result line goes to stderr when stdout is the file


def kancoin_magic() -> bytes:
    from tests.conftest import smooth_image

    return kancoin.encode(smooth_image(4, 4), bpp=64.0, steps=1).data[:4]


# make rd-kodak recomputes what changed


def test_rd_rows_are_keyed_by_the_encoder_source_and_threads(tmp_path):
    from kancoin.rd.neural import KancoinCodec, encoder_fingerprint

    settings = KancoinCodec(threads=1).settings()
    assert settings["encoder"] == encoder_fingerprint() and settings["threads"] == 1
    assert KancoinCodec(threads=2).settings() != settings
    package = tmp_path / "kancoin"
    (package / "rd").mkdir(parents=True)
    (package / "codec.py").write_text("A = 1\n")
    (package / "rd" / "sweep.py").write_text("B = 1\n")
    first = encoder_fingerprint(package)
    (package / "rd" / "sweep.py").write_text("B = 2\n")  # the sweep is not the encoder
    assert encoder_fingerprint.__wrapped__(package) == first
    (package / "codec.py").write_text("A = 2\n")  # the encoder changed: new rows
    assert encoder_fingerprint.__wrapped__(package) != first


def test_a_sweep_says_how_many_rows_it_ran(tmp_path):
    from kancoin.rd import SweepConfig, run_sweep

    source = tmp_path / "img.png"
    photo(source, 32, 32)
    config = SweepConfig(targets=(1.0,), codecs=("jpeg",))
    assert run_sweep([source], tmp_path / "out", config, log=lambda _: None)["rows_run"] == 1
    assert run_sweep([source], tmp_path / "out", config, log=lambda _: None)["rows_run"] == 0


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_rd_kodak_can_force_a_rerun():
    root = README.parent
    dry = ["make", "-n", "-C", str(root), "rd-kodak"]
    forced = subprocess.run([*dry, "FORCE=1"], capture_output=True, text=True, check=True)
    plain = subprocess.run(dry, capture_output=True, text=True, check=True)
    assert "rd_kodak.py" in forced.stdout and "--force" in forced.stdout
    assert "--force" not in plain.stdout
