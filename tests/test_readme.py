"""The README's Python example runs as written (on a small generated photo)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import smooth_image

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_the_python_example_runs(tmp_path, monkeypatch, capsys):
    (example,) = blocks("python")
    pixels = np.rint(smooth_image(128, 128) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["image"].shape == (256, 256, 3)
    assert namespace["plan"].spec.name == "siren"
    assert namespace["header"].signal.width == 128
    assert (tmp_path / "photo.inr").stat().st_size * 8 <= 0.3 * 128 * 128
    assert "siren" in capsys.readouterr().out


def test_the_readme_fits_on_two_screens():
    assert len(README.read_text().splitlines()) <= 140
