"""The chunked loss terms give autograd's values and gradients (kancoin.fit.grid_losses)."""

from __future__ import annotations

import pytest
import torch

from kancoin.fit import grid_losses
from kancoin.latents import LAYOUTS, LOG2_SCALE_MAX, LOG2_SCALE_MIN, ContextNet
from kancoin.models.grid import ACTIVATIONS, RasterGridSpec


def _model(activation: str = "relu", hidden: int = 16):
    spec = RasterGridSpec(
        in_features=2,
        out_features=3,
        height=37,
        width=53,
        levels=4,
        activation=ACTIVATIONS.index(activation),
        context_hidden=hidden,
    )
    torch.manual_seed(1)
    model = spec.build().double()
    with torch.no_grad():
        for y in model.latents:
            y.normal_(0, 2)
        for p in model.network_parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model


def _grads(loss: torch.Tensor, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, tensors))


@pytest.mark.parametrize("chunk", [7, 100, 16384])
def test_synthesis_mse_matches_autograd(monkeypatch, chunk):
    monkeypatch.setattr(grid_losses, "CHUNK", chunk)
    model = _model()
    levels = [y.clone().requires_grad_() for y in model.latents]
    targets = torch.rand(37 * 53, 3, dtype=torch.float64)
    tensors = [*levels, *model.synthesis_tensors()]
    features = model.upsample_full(levels)  # a transposed view, as in training
    assert features.stride(0) == 1
    ours = grid_losses.synthesis_mse(model, features, targets)
    ours_grads = _grads(ours * 3.0, tensors)
    features = model.upsample_full(levels)
    reference = (model.synthesize(features) - targets).pow(2).mean()
    reference_grads = _grads(reference * 3.0, tensors)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=0)
    for a, b in zip(ours_grads, reference_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-15)


def test_synthesis_mse_other_activations_take_autograd():
    model = _model("sine")
    features = torch.rand(11, 4, dtype=torch.float64)
    targets = torch.rand(11, 3, dtype=torch.float64)
    expected = (model.synthesize(features) - targets).pow(2).mean()
    torch.testing.assert_close(grid_losses.synthesis_mse(model, features, targets), expected)


@pytest.mark.parametrize("hidden", [0, 16])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("chunk", [5, 16384])
def test_context_bits_matches_autograd(monkeypatch, hidden, layout, chunk):
    monkeypatch.setattr(grid_losses, "CHUNK", chunk)
    torch.manual_seed(2)
    context = ContextNet(4, hidden, LAYOUTS[layout]).double()
    with torch.no_grad():
        for p in context.parameters():
            p.add_(torch.randn_like(p) * 0.5)
        # some scales pinned outside the clamp: their gradient must vanish in both paths
        context.level_bias[2, 1] = LOG2_SCALE_MIN - 3
        context.level_bias[3, 1] = LOG2_SCALE_MAX + 3
    shapes = [(21, 30), (11, 15), (6, 8), (3, 4)]
    levels = [(torch.randn(s, dtype=torch.float64) * 3).requires_grad_() for s in shapes]
    with torch.no_grad():
        levels[0][0, :4] = torch.tensor([40.0, -40.0, 0.5, -0.5])  # floored mass, edges
    params = list(context.parameters())
    ours = grid_losses.context_bits(context, levels, start=1) * 2.0
    reference = torch.stack(context.bits(levels, start=1)).sum() * 2.0
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=0)
    ours_grads = _grads(ours, [*levels[1:], *params])
    reference_grads = _grads(reference, [*levels[1:], *params])
    for a, b in zip(ours_grads, reference_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    full = grid_losses.context_bits(context, levels)
    torch.testing.assert_close(full, torch.stack(context.bits(levels)).sum(), rtol=1e-12, atol=0)
    with torch.no_grad():  # the rate controller's measurements: no gradient work
        measured = grid_losses.context_bits(context, levels, start=1)
    assert not measured.requires_grad
    torch.testing.assert_close(measured * 2.0, reference.detach(), rtol=1e-12, atol=0)
