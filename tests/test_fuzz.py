"""The fuzz campaign's short run (CI): about a minute of bench/fuzz.py, zero failures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kancoin import bitstream

FUZZ = Path(__file__).resolve().parent.parent / "bench" / "fuzz.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("kancoin_fuzz", FUZZ)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_field_mirror_reserialises_every_seed_exactly(fuzz, tiny_inr):
    # the structure-aware modes edit fields of this mirror: unedited, it must give the file
    parsed = fuzz.parse_fields(tiny_inr)
    assert parsed is not None
    fields, payload = parsed
    assert fuzz.pack_fields(fields, payload) == tiny_inr
    names = [f[0] for f in fields]
    assert names[:4] == ["magic", "version", "kind", "header_length"]
    assert names[-1] == "payload_words" and "networks" in names


def test_hostile_size_files_are_valid(fuzz):
    import random

    for seed in range(20):
        data = fuzz.synth_file(random.Random(seed))
        header, payload = bitstream.read(data)  # the container accepts them
        assert bitstream.write(header, payload) == data


def test_boundary_values_cover_both_sides(fuzz):
    values = fuzz.boundary_values("uint:6", 1, 63)
    assert {0, 1, 63} <= set(values) and max(values) == 63  # 64 does not fit 6 bits
    assert -1025 not in fuzz.boundary_values("int:11", -640, 63)
    assert {-641, 64, -1024, 1023} <= set(fuzz.boundary_values("int:11", -640, 63))


def test_short_fuzz_run_finds_nothing(tmp_path):
    out = tmp_path / "fuzz"
    result = subprocess.run(
        [sys.executable, str(FUZZ), "--seconds", "45", "--out", str(out), "--print-every", "1e9"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads((out / "report.json").read_text())
    assert result.returncode == 0 and report["failures"] == 0, (report, result.stderr[-3000:])
    assert report["inputs"] > 1000
    for mode, counts in report["by_mode"].items():
        assert counts["inputs"] > 0, mode
    assert report["by_outcome"].get("accepted", 0) > 0  # the decoder really runs
