"""The fitting loop's extras: warm-up, the divergence guard, the L1 penalty."""

from __future__ import annotations

import torch

from kancoin.fit import FitConfig, fit
from kancoin.fit.trainer import DivergenceGuard
from kancoin.models import SirenSpec
from kancoin.signals import image_grid
from tests.conftest import smooth_image


def _signal(size: int = 32):
    targets = torch.from_numpy(smooth_image(size, size, 3, seed=1)).reshape(-1, 3)
    return image_grid(size, size), targets


def _fitted_psnr(warmup: float, lr: float) -> float:
    coords, targets = _signal()
    torch.manual_seed(0)
    model = SirenSpec(2, 3, layers=3, width=16).build()
    config = FitConfig(steps=300, lr=lr, batch_fraction=0.5, warmup=warmup, guard=False)
    return fit(model, coords, targets, config).psnr


def test_warmup_rescues_a_learning_rate_that_fails_from_the_first_steps():
    # at this rate Adam's first full-size steps throw the SIREN into a noise state it never
    # leaves; ramping the rate up over 5 % of the run lets it learn
    without = _fitted_psnr(0.0, 1.3e-2)
    with_warmup = _fitted_psnr(0.05, 1.3e-2)
    assert without < 15.0
    assert with_warmup > without + 10.0


def _guard():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return model, DivergenceGuard(model, optimizer)


def test_guard_rolls_a_collapse_back_to_the_last_good_state_and_halves_the_rate():
    model, guard = _guard()
    for step in range(1, 101):
        guard.observe(step, 20.0 + step / 10)  # checkpoints at 50 and 100, near the peak
    good = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(100.0)  # the collapse
    step = 100
    while guard.rollbacks == 0 and step < 400:
        step += 1
        guard.observe(step, 8.0)
    assert guard.rollbacks == 1
    assert guard.lr_factor == 0.5
    assert torch.equal(model.weight, good)


def test_guard_ignores_batch_noise_and_stops_after_its_rollback_limit():
    _, guard = _guard()
    for step in range(1, 2001):
        guard.observe(step, 30.0 + (3.0 if step % 2 else -3.0))
    assert guard.rollbacks == 0 and guard.lr_factor == 1.0
    for step in range(2001, 10001):
        guard.observe(step, float("nan") if step % 500 < 250 else 30.0)
    assert guard.rollbacks == DivergenceGuard.MAX_ROLLBACKS


def test_the_l1_penalty_shrinks_the_coded_weights():
    coords, targets = _signal(16)
    sizes = []
    for l1 in (0.0, 2.0):
        torch.manual_seed(0)
        model = SirenSpec(2, 3, layers=2, width=12).build()
        fit(model, coords, targets, FitConfig(steps=150, lr=3e-3, batch_fraction=1.0, l1=l1))
        weights = torch.cat([t.detach().flatten() for t in model.coded_tensors()])
        sizes.append(float(weights.abs().mean()))
    assert sizes[1] < 0.7 * sizes[0]
