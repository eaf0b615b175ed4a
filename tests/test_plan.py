"""The planning step and the config it reads: every policy decision before any fitting."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kancoin
from kancoin import encoder
from kancoin.cli import main
from kancoin.config import EncodeConfig, RateOptions, TrainingOptions
from kancoin.errors import UsageError
from tests.conftest import fit_calls, smooth_image

KODAK_SHAPE = np.random.default_rng(0).integers(0, 256, (512, 768, 3), dtype=np.uint8)  # not flat


def test_the_default_plan_for_a_kodak_sized_image():
    plan = kancoin.plan_encode(KODAK_SHAPE, bpp=0.3)
    assert plan.spec.describe() == "siren 8x47 (w0 30/30)"  # README: 8x47 at 0.3 bpp
    assert plan.budget_bits == pytest.approx(0.3 * 768 * 512)
    assert plan.expected_bits <= plan.budget_bits
    fit, tune = plan.phases
    assert (fit.name, fit.steps, fit.batch_fraction, fit.sampler) == (
        "fit",
        4000,
        0.025,
        "importance",
    )
    assert fit.lr == pytest.approx(1.5e-3) and fit.quantization == "float"
    assert (tune.name, tune.steps, tune.quantization) == ("fine-tune", 400, "straight-through")
    assert tune.lr == pytest.approx(1.5e-4)
    text = plan.describe()
    assert "siren 8x47" in text and "4000 steps" in text and "fine-tune: 400 steps" in text


def test_plans_follow_options_and_families():
    fast = kancoin.plan_encode(KODAK_SHAPE, bpp=0.3, preset="fast")
    assert fast.fit.steps == 1000 and fast.fine_tune.steps == 100
    kan = kancoin.plan_encode(KODAK_SHAPE, bpp=0.3, model="kan")
    assert kan.fine_tune is None and kan.fit.batch_fraction == 0.2
    assert kan.fit.steps == 500  # the same coordinate passes at 20 % batches
    explicit = kancoin.plan_encode(KODAK_SHAPE, bpp=0.3, qat_steps=7, steps=70)
    assert explicit.fit.steps == 70 and explicit.fine_tune.steps == 7
    none = kancoin.plan_encode(KODAK_SHAPE, bpp=0.3, qat_steps=0)
    assert none.fine_tune is None
    unquantized = kancoin.plan_encode(KODAK_SHAPE, bpp=None)
    assert unquantized.fine_tune is None and unquantized.budget_bits is None
    timed = kancoin.plan_encode(KODAK_SHAPE, bpp=0.3, time_budget=30)
    assert timed.fit.steps is None and timed.fit.time_share == pytest.approx(1 / 1.1)
    assert timed.fine_tune.share_of_fit == pytest.approx(0.1)


def test_audio_plans_one_network_per_segment_and_no_fine_tuning():
    clip = np.sin(np.arange(16000) / 5).astype(np.float32)
    plan = kancoin.plan_encode(clip, sample_rate=16000, kbps=32)
    assert plan.networks == 4 and plan.fine_tune is None  # 0.25 s segments at 32 kbps
    assert plan.fit.batch_fraction == 0.2


def test_the_encoder_carries_out_its_plan(monkeypatch):
    image = smooth_image(16, 16)
    plan = kancoin.plan_encode(image, bpp=8.0, steps=40, preset="fast")
    calls = fit_calls(monkeypatch, bpp=8.0, steps=40, preset="fast")
    fit, tune = calls
    for phase, used in zip(plan.phases, (fit, tune), strict=True):
        assert (used.steps, used.lr, used.batch_fraction) == (
            phase.steps,
            phase.lr,
            phase.batch_fraction,
        )


def test_cli_plan_prints_without_fitting(monkeypatch, capsys, image_file, tmp_path):
    def no_fit(*args, **kwargs):
        raise AssertionError("--plan fitted")

    monkeypatch.setattr(encoder, "fit", no_fit)
    source = image_file(32, 48)
    assert main(["encode", str(source), "--bpp", "2", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "model   siren" in out and "phase   fit:" in out
    assert main(["encode", str(source), "--bpp", "2", "--plan", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["phases"][0]["name"] == "fit" and data["budget_bits"] == 2 * 32 * 48
    assert not source.with_suffix(".inr").exists()


def test_config_groups_and_flat_options():
    config = EncodeConfig.of(bpp=0.5, steps=300, model="kan", threads=2)
    assert config.rate.bpp == 0.5 and config.training.steps == 300
    assert config.model.model == "kan" and config.runtime.threads == 2
    changed = config.with_options(steps=10)
    assert changed.training.steps == 10 and changed.rate.bpp == 0.5
    assert EncodeConfig.of(**config.options()) == config
    with pytest.raises(UsageError, match="unknown option 'colour'"):
        EncodeConfig.of(colour="red")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bpp": 100}, r"bpp must be in \(0, 64\], got 100"),
        ({"bpp": "0.3"}, "bpp must be a number, got '0.3'"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"steps": 2.5}, "steps must be an integer"),
        ({"layers": 3}, "layers and width go together"),
        ({"lr": float("nan")}, "lr must be finite"),
        ({"model": "mlp"}, "unknown model 'mlp'"),
        ({"preset": "slow"}, "unknown preset 'slow'"),
        ({"seed": -1}, "seed must be at least 0"),
    ],
)
def test_config_errors_name_the_option(options, message):
    with pytest.raises(UsageError, match=message):
        EncodeConfig.of(**options)
    with pytest.raises(UsageError, match=message):
        kancoin.encode(smooth_image(4, 4), **options)


def test_groups_validate_on_their_own():
    with pytest.raises(UsageError, match=r"bits must be 2\.\.16"):
        RateOptions(bits=1)
    with pytest.raises(UsageError, match="warmup"):
        TrainingOptions(warmup=1.0)
