"""Products with the empirical neural tangent kernel, never forming it.

K = J J^T, with J the Jacobian of the network's outputs (all coordinates, all channels) with
respect to its parameters. For N coordinates K is (N C) x (N C): 400k pixels make it far too
large to hold, but K g is one vector-Jacobian product v = J^T g (a backward pass) followed by
one Jacobian-vector product J v (a forward-mode pass). Both run in chunks of coordinates, so
memory stays bounded by the chunk, not the image.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.func import functional_call, jvp

NTK_CHUNK = 1 << 15

Tangent = dict[str, torch.Tensor]


def trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters K is taken over, detached: the products never touch `.grad`."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def vjp(
    model: nn.Module,
    coords: torch.Tensor,
    cotangent: torch.Tensor | None = None,
    *,
    targets: torch.Tensor | None = None,
    chunk: int = NTK_CHUNK,
) -> tuple[Tangent, torch.Tensor | None]:
    """J^T cotangent: the parameter-space vector sum_i J_i^T cotangent_i.

    With `targets` instead of a cotangent, the cotangent is the residual prediction - target,
    computed in the same forward pass; it is returned too (else None).
    """
    if (cotangent is None) == (targets is None):
        raise ValueError("give exactly one of cotangent and targets")
    params = {name: p.requires_grad_(True) for name, p in trainable(model).items()}
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    residual_parts = []
    for start in range(0, coords.shape[0], chunk):
        stop = start + chunk
        with torch.enable_grad():
            outputs = functional_call(model, params, (coords[start:stop],))
            if targets is None:
                direction = cotangent[start:stop]
            else:
                direction = (outputs - targets[start:stop]).detach()
                residual_parts.append(direction)
            grads = torch.autograd.grad(outputs, list(params.values()), grad_outputs=direction)
        for name, grad in zip(params, grads, strict=True):
            total[name] += grad
    return total, (torch.cat(residual_parts) if targets is not None else None)


def jvp_outputs(
    model: nn.Module, coords: torch.Tensor, tangent: Tangent, *, chunk: int = NTK_CHUNK
) -> torch.Tensor:
    """J tangent: how each coordinate's output moves when the parameters move along tangent."""
    params = trainable(model)
    tangent = {name: tangent[name] for name in params}

    def outputs_at(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (x,))

    parts = []
    with torch.no_grad(), warnings.catch_warnings():
        # on first use torch scripts its forward-mode decompositions, with a deprecation warning
        warnings.filterwarnings("ignore", ".*torch.jit.script", DeprecationWarning)
        for start in range(0, coords.shape[0], chunk):
            x = coords[start : start + chunk]
            _, moved = jvp(lambda p, x=x: outputs_at(p, x), (params,), (tangent,))
            parts.append(moved)
    return torch.cat(parts)


def kernel_product(
    model: nn.Module,
    coords: torch.Tensor,
    vector: torch.Tensor,
    *,
    at: torch.Tensor | None = None,
    chunk: int = NTK_CHUNK,
) -> torch.Tensor:
    """(K vector) evaluated at the coordinates `at` (default: `coords` themselves).

    `vector` is (len(coords), C); the result is (len(at), C): sum_j K(at_i, coords_j) vector_j.
    """
    direction, _ = vjp(model, coords, vector, chunk=chunk)
    return jvp_outputs(model, coords if at is None else at, direction, chunk=chunk)


def ntk_scores(
    model: nn.Module,
    coords: torch.Tensor,
    targets: torch.Tensor,
    *,
    at: torch.Tensor | None = None,
    chunk: int = NTK_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """NINT's score |(K g)_i| with g = dL/df over `coords`, and the residuals there.

    g is the residual up to the constant 2 / (N C), which changes no ranking, so the residual
    itself is used. Scores are evaluated at `at` (default: the same coordinates). Returns
    (scores (len(at),), residual (len(coords), C)).
    """
    direction, residual = vjp(model, coords, targets=targets, chunk=chunk)
    moved = jvp_outputs(model, coords if at is None else at, direction, chunk=chunk)
    return moved.norm(dim=1), residual
