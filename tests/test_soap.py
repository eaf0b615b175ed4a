"""kancoin.fit.soap: SOAP minimises, reduces to Adam without rotation, and the grid trainer
takes it as the networks' optimiser."""

from __future__ import annotations

import pytest
import torch
from conftest import smooth_image

from kancoin.fit import grid_trainer
from kancoin.fit.soap import SOAP
from kancoin.models import GridSpec


def _ill_conditioned_quadratic(seed: int = 0):
    """f(W, b) = |A W B - C|^2 + |D b - e|^2: A and B scale rows and columns over two
    decades and mix them, the case a per-coordinate scaling handles badly."""
    g = torch.Generator().manual_seed(seed)
    qa, _ = torch.linalg.qr(torch.randn(6, 6, generator=g))
    qb, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    a = qa @ torch.diag(torch.logspace(0, 1, 6)) @ qa.T
    b = qb @ torch.diag(torch.logspace(0, 1, 5)) @ qb.T
    target = torch.randn(6, 5, generator=g)
    d = torch.diag(torch.logspace(0, 1, 4))
    e = torch.randn(4, generator=g)

    def loss(w: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return (a @ w @ b - target).pow(2).sum() + (d @ bias - e).pow(2).sum()

    return loss


def test_soap_minimises_a_small_quadratic():
    loss = _ill_conditioned_quadratic()
    w = torch.zeros(6, 5, requires_grad=True)
    bias = torch.zeros(4, requires_grad=True)
    optimizer = SOAP([w, bias], lr=0.02, weight_decay=0.0, precondition_frequency=5)
    start = float(loss(w, bias).detach())
    for step in range(600):
        for group in optimizer.param_groups:
            group["lr"] = 0.02 * (1 - step / 600)  # decays to zero: the iterate settles
        optimizer.zero_grad()
        value = loss(w, bias)
        value.backward()
        optimizer.step()
    assert float(loss(w, bias).detach()) < 1e-3 * start
    assert optimizer.state[w]["sides"]  # the matrix was rotated, the vector was not
    assert not optimizer.state[bias]["sides"]


def test_soap_without_rotation_is_adam():
    """Sides longer than max_precond_dim are not rotated: then SOAP is Adam step for step."""
    loss = _ill_conditioned_quadratic(1)
    runs = []
    for make in (
        lambda p: SOAP(p, lr=0.01, betas=(0.9, 0.99), weight_decay=0.0, max_precond_dim=0),
        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.99)),
    ):
        w = torch.zeros(6, 5, requires_grad=True)
        bias = torch.zeros(4, requires_grad=True)
        optimizer = make([w, bias])
        for _ in range(50):
            optimizer.zero_grad()
            loss(w, bias).backward()
            optimizer.step()
        runs.append((w.detach(), bias.detach()))
    assert torch.allclose(runs[0][0], runs[1][0], atol=1e-6)
    assert torch.allclose(runs[0][1], runs[1][1], atol=1e-6)


def test_soap_refuses_bad_hyper_parameters():
    w = torch.zeros(2, 2, requires_grad=True)
    with pytest.raises(ValueError):
        SOAP([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError):
        SOAP([w], precondition_frequency=0)


def test_grid_fit_with_soap_on_the_networks_learns_the_image():
    image = torch.from_numpy(smooth_image(24, 32, seed=3))
    spec = GridSpec(in_features=2, out_features=3, height=24, width=32, levels=3)
    config = grid_trainer.GridFitConfig(steps=60, optimizer="soap")
    model = spec.build()
    result = grid_trainer.fit_grid(model, image, config)
    flat = float((image - image.mean(dim=(0, 1))).pow(2).mean())
    assert 10 ** (-result.psnr / 10) < 0.5 * flat
    with pytest.raises(ValueError):
        grid_trainer.GridFitConfig(optimizer="sgd")
