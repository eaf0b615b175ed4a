"""Golden files: .inr files written by earlier versions keep decoding to the same output.

tests/data/golden/vN/ holds files of format version N and the SHA-256 of their decoded
output (8-bit pixels, 16-bit PCM). They are written once per format version by
scripts/make_golden.py and never rewritten; a change to the decoder's arithmetic, the
entropy decoder or the parser that alters a single decoded sample fails here.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kancoin
from kancoin.bitstream import PRIOR_VERSION, VERSION, VERSIONS
from kancoin.errors import FormatError

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "data" / "golden"
sys.path.insert(0, str(REPO / "scripts"))
from make_golden import decoded_digest  # noqa: E402

CASES = [
    (directory, name, record)
    for directory in sorted(GOLDEN.glob("v*"))
    for name, record in json.loads((directory / "expected.json").read_text())["files"].items()
]


def test_every_format_version_up_to_this_one_has_golden_files():
    versions = {int(directory.name[1:]) for directory in GOLDEN.glob("v*")}
    for version in (VERSION, PRIOR_VERSION):
        assert version in versions, f"no golden files for format v{version}: run make_golden.py"


def test_every_model_family_and_audio_have_a_golden_file():
    names = {name for directory, name, _ in CASES if directory.name == f"v{VERSION}"}
    from kancoin.models import MODEL_SPECS

    for spec in MODEL_SPECS.values():
        assert any(name.startswith(spec.name + "-") for name in names), spec.name
    assert any(name.endswith("-audio") for name in names)


@pytest.mark.parametrize(
    "directory, name, record", CASES, ids=[f"{d.name}/{n}" for d, n, _ in CASES]
)
def test_golden_file_decodes_to_its_recorded_output(directory, name, record):
    data = (directory / f"{name}.inr").read_bytes()
    assert hashlib.sha256(data).hexdigest() == record["file_sha256"], "golden files are frozen"
    version = int(directory.name[1:])
    if version not in VERSIONS:
        # an older version this build no longer reads must say so, by version
        with pytest.raises(FormatError, match=f"version {version}"):
            kancoin.read_file(data)
        return
    header, _ = kancoin.read_file(data)
    assert header.spec.describe() == record["model"]
    assert decoded_digest(data) == record["decoded_sha256"], (
        f"{name}: the decoded output changed; files written by kancoin "
        f"{record['kancoin']} would decode differently"
    )


def test_golden_files_cannot_be_regenerated_by_accident(tmp_path):
    script = REPO / "scripts" / "make_golden.py"
    env = {k: v for k, v in os.environ.items() if k != "KANCOIN_REGEN_GOLDEN"}
    refused = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "KANCOIN_REGEN_GOLDEN=1" in refused.stderr
    env["KANCOIN_REGEN_GOLDEN"] = "1"
    frozen = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True)
    assert frozen.returncode == 1 and "frozen" in frozen.stderr  # complete: nothing rewritten
