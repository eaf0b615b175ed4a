import json
from pathlib import Path

import pytest

from kancoin.cli import main

ENCODE = ["--bpp", "12", "--steps", "5", "--preset", "fast", "-q"]


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_encode_info_decode(capsys, image_file, tmp_path):
    source = image_file(12, 18)
    code, out, err = run(capsys, "encode", source, "--json", *ENCODE)
    assert code == 0, err
    summary = json.loads(out)
    for key in (
        "input",
        "output",
        "bytes",
        "bpp",
        "psnr",
        "psnr_float",
        "model",
        "params",
        "bits",
        "steps",
        "seconds",
        "fit_seconds",
    ):
        assert key in summary
    inr = source.with_suffix(".inr")
    assert summary["output"] == str(inr) and inr.stat().st_size == summary["bytes"]
    assert summary["bpp"] <= 12

    code, out, _ = run(capsys, "info", inr, "--json")
    info = json.loads(out)
    assert code == 0 and info["bytes"] == summary["bytes"] and info["psnr"] is not None
    assert info["bpp"] == pytest.approx(summary["bpp"], abs=1e-5)

    code, out, _ = run(capsys, "info", inr)
    assert code == 0 and "bpp" in out and "siren" in out

    # the default output is FILE.decoded.png, never the source image's name
    before = source.read_bytes()
    code, out, err = run(capsys, "decode", inr, "--scale", "2")
    assert code == 0 and source.read_bytes() == before, err
    assert source.with_name("img.decoded.png").is_file() and "img.decoded.png" in out
    code, out, _ = run(capsys, "decode", inr, "--scale", "2", "-o", tmp_path / "big.png")
    assert code == 0 and "36x24" in out


def test_decode_never_overwrites_the_input_png(capsys, image_file):
    source = image_file(10, 10)
    assert run(capsys, "encode", source, *ENCODE)[0] == 0
    before = source.read_bytes()
    # not even when asked to by name, with --force: it is the original beside the .inr
    code, _, err = run(capsys, "decode", source.with_suffix(".inr"), "-o", source, "--force")
    assert code == 6 and "original" in err and source.read_bytes() == before
    inr = source.with_suffix(".inr")
    before = inr.read_bytes()
    code, _, err = run(capsys, "decode", inr, "-o", inr, "--force")
    assert code == 6 and "input" in err and inr.read_bytes() == before


def test_errors_are_one_line_with_documented_codes(capsys, image_file, tmp_path):
    code, _, err = run(capsys, "encode", tmp_path / "missing.png", *ENCODE)
    assert code == 3 and err.count("\n") == 1 and "no such file" in err

    text = tmp_path / "text.png"
    text.write_text("not an image")
    code, _, err = run(capsys, "encode", text, *ENCODE)
    assert code == 3 and err.count("\n") == 1

    corrupt = tmp_path / "bad.inr"
    corrupt.write_bytes(b"KINR\x01" + b"\x00" * 40)
    code, _, err = run(capsys, "decode", corrupt)
    assert code == 4 and err.count("\n") == 1 and "Traceback" not in err
    code, _, err = run(capsys, "info", corrupt)
    assert code == 4

    source = image_file(8, 8)
    (tmp_path / "img.inr").write_bytes(b"exists")
    code, _, err = run(capsys, "encode", source, *ENCODE)
    assert code == 6 and "--force" in err
    assert (tmp_path / "img.inr").read_bytes() == b"exists"


def test_truncated_and_flipped_files(capsys, image_file):
    source = image_file(10, 10)
    run(capsys, "encode", source, *ENCODE)
    inr = source.with_suffix(".inr")
    data = inr.read_bytes()
    inr.write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "decode", inr, "-o", inr.with_suffix(".a.png"))
    assert code == 4 and "corrupt or truncated" in err
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    inr.write_bytes(bytes(flipped))
    code, _, err = run(capsys, "decode", inr, "-o", inr.with_suffix(".b.png"))
    assert code == 4 and "CRC" in err


def test_usage_errors(capsys, image_file, tmp_path):
    source = image_file(8, 8)
    code, _, err = run(capsys, "encode", source, "--bits", "x")
    assert code == 2
    code, _, err = run(capsys, "encode", source, "--layers", "3", "-q")
    assert code == 2 and "layers and width go together" in err
    code, _, _ = run(capsys, "decode", tmp_path / "none.inr")
    assert code == 3
    code, out, _ = run(capsys, "--version")
    assert code == 0 and "version" in out


def test_make_demo_runs_offline_on_the_bundled_photo(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setattr("urllib.request.urlopen", None)  # no download may happen
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from demo import demo

    assert demo(["--out", str(tmp_path), "--steps", "20"]) == 0
    assert (tmp_path / "chelsea.inr").is_file()
    assert (tmp_path / "chelsea_x2.png").is_file()
    out = capsys.readouterr().out
    assert "kancoin encode" in out and "902x600" in out
