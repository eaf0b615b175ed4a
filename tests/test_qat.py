import numpy as np
import pytest
import torch

import kancoin
from kancoin.fit import FitConfig, fit
from kancoin.fit.qat import StraightThrough
from kancoin.models import SirenSpec
from kancoin.presets import PRESETS
from kancoin.signals import image_grid
from tests.conftest import fit_calls, smooth_image


def _fitted(seed: int = 0):
    torch.manual_seed(seed)
    image = smooth_image(16, 16, seed=seed)
    coords, targets = image_grid(16, 16), torch.from_numpy(image.reshape(-1, 3))
    model = SirenSpec(in_features=2, out_features=3, layers=2, width=12).build()
    fit(model, coords, targets, FitConfig(steps=80, lr=3e-3, batch_fraction=1.0))
    return model, coords, targets


def _mse(model, coords, targets) -> float:
    with torch.no_grad():
        return float((model(coords).clamp(0, 1) - targets).pow(2).mean())


def test_rounded_view_rounds_every_tensor_and_restores_it():
    model, _, _ = _fitted()
    before = [t.detach().clone() for t in model.coded_tensors()]
    steps = [0.01 * (k + 1) for k in range(len(before))]
    with StraightThrough(model, steps).rounded():
        for tensor, step in zip(model.coded_tensors(), steps, strict=True):
            ints = tensor.detach() / step
            assert torch.allclose(ints, ints.round(), atol=1e-4)
    for tensor, value in zip(model.coded_tensors(), before, strict=True):
        assert torch.equal(tensor.detach(), value)


def test_step_count_must_match_the_tensors():
    model, _, _ = _fitted()
    with pytest.raises(ValueError):
        StraightThrough(model, [0.1])


def test_fine_tuning_lowers_the_error_of_the_rounded_network():
    model, coords, targets = _fitted()
    steps = [0.05] * len(list(model.coded_tensors()))  # coarse: rounding costs a lot
    rounding = StraightThrough(model, steps)
    with rounding.rounded():
        rounded_before = _mse(model, coords, targets)
    config = FitConfig(steps=60, lr=3e-4, batch_fraction=1.0, evals=6)
    fit(model, coords, targets, config, straight_through=rounding)
    # the best state is kept rounded: exactly on the grid, and better than plain rounding
    for tensor, step in zip(model.coded_tensors(), steps, strict=True):
        ints = tensor.detach() / step
        assert torch.allclose(ints, ints.round(), atol=1e-4)
    assert _mse(model, coords, targets) < 0.9 * rounded_before


def test_encode_with_fine_tuning_stays_under_the_rate():
    image = smooth_image(24, 20)
    plain = kancoin.encode(image, bpp=6.0, steps=40, preset="fast", qat_steps=0)
    tuned = kancoin.encode(image, bpp=6.0, steps=40, preset="fast", qat_steps=30)
    for result in (plain, tuned):
        assert 8 * len(result.data) <= 6.0 * 24 * 20
        decoded = kancoin.decode(result.data)
        assert np.isfinite(decoded).all()
    assert tuned.psnr > plain.psnr - 0.5  # fine-tuning starts from plain's rounding


def test_negative_fine_tuning_steps_are_refused():
    with pytest.raises(kancoin.errors.UsageError):
        kancoin.encode(smooth_image(8, 8), bpp=8.0, steps=2, qat_steps=-1)


def test_presets_fine_tune_siren_images_for_a_tenth_of_the_fit(monkeypatch):
    fit_config, tuning = fit_calls(monkeypatch, bpp=8.0, steps=50, preset="fast")
    assert fit_config.steps == 50
    assert tuning.steps == 5
    assert tuning.lr == pytest.approx(fit_config.lr * PRESETS["fast"].phases[1].lr_ratio)
    summary = kancoin.encode(smooth_image(16, 16), bpp=8.0, steps=50).summary()
    assert (summary["steps"], summary["qat_steps"], summary["rollbacks"]) == (50, 5, 0)


def test_a_time_budget_covers_the_fine_tuning(monkeypatch):
    (fit_config, _) = fit_calls(monkeypatch, bpp=8.0, time_budget=0.5, preset="fast")
    assert fit_config.time_budget == pytest.approx(0.5 / 1.1)
    (explicit, _) = fit_calls(monkeypatch, bpp=8.0, time_budget=0.5, qat_steps=3)
    assert explicit.time_budget == pytest.approx(0.5)


def test_kan_and_unquantized_encodes_are_not_fine_tuned(monkeypatch):
    kan = fit_calls(monkeypatch, bpp=None, bits=8, steps=4, model="kan", layers=1, width=4)
    assert len(kan) == 1
    assert len(fit_calls(monkeypatch, bpp=None, steps=4)) == 1


def test_progress_covers_the_fit_then_the_fine_tuning():
    seen = []
    kancoin.encode(
        smooth_image(16, 16), bpp=8.0, steps=30, preset="fast", progress=lambda *a: seen.append(a)
    )
    done = [report[1] for report in seen]
    assert done == sorted(done)  # one bar, never going back
    assert done[-1] == pytest.approx(1.0)
    fit_end = max(d for d in done if d <= 1 / 1.1 + 1e-9)
    assert fit_end == pytest.approx(1 / 1.1)  # the fit fills its share, fine-tuning the rest


def test_fine_tuning_rounds_exactly_as_the_file_does():
    from kancoin.quant import dequantize, quantize, round_to_step, step_size

    values = torch.randn(4096) * 0.3
    for index in (-200, -90, -40, 0):
        expected = dequantize(quantize(values, index), index)
        assert np.array_equal(round_to_step(values, step_size(index)).numpy(), expected)
