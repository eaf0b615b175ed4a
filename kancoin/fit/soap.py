"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner (Vyas et al. 2024).

For a weight matrix with gradient G (m x n), Shampoo keeps L = EMA(G G^T) and R = EMA(G^T G);
SOAP runs Adam on the rotated gradient Q_L^T G Q_R, where Q_L, Q_R are the eigenvectors of
L and R, and rotates the update back. The eigenbases are refreshed every
`precondition_frequency` steps by one power iteration and a QR decomposition (the second
moments are re-ordered with the eigenvalue estimates, so each keeps following its direction).
Adam's diagonal scaling then acts along the directions that decorrelate the gradient's rows and
columns, which a per-coordinate scaling cannot do. Tensors of one dimension (biases), and any
side longer than `max_precond_dim`, are not rotated: there it is plain Adam.

Our own implementation, after the paper and its reference code; the defaults are the ones
Cool-chic 5 trains its networks with (betas 0.95 / 0.95, refresh every 10 steps, decoupled
weight decay 0.01, sides up to 256). Tensors of more than two dimensions are seen as
(first dimension) x (the rest). docs/GRID.md has the measurements.
"""

from __future__ import annotations

import torch


class SOAP(torch.optim.Optimizer):
    """Shampoo-rotated Adam for matrices, Adam for vectors (one param-group option set each)."""

    def __init__(
        self,
        params,
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        shampoo_beta: float | None = None,
        max_precond_dim: int = 256,
    ):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError("lr, eps and weight_decay must be non-negative")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError("betas must be in [0, 1)")
        if precondition_frequency < 1:
            raise ValueError("precondition_frequency must be at least 1")
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "precondition_frequency": precondition_frequency,
            "shampoo_beta": shampoo_beta,  # None: betas[1], as the reference
            "max_precond_dim": max_precond_dim,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            shampoo_beta = group["shampoo_beta"]
            if shampoo_beta is None:
                shampoo_beta = beta2
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    _init_state(state, grad, group["max_precond_dim"])
                    if state["sides"]:
                        # the first gradient only seeds the preconditioner: the rotation must
                        # never be built from the gradient it is applied to (as the reference)
                        _accumulate(state, grad, shampoo_beta)
                        state["bases"] = _eigenbases(state)
                        continue
                state["step"] += 1
                t = state["step"]
                # both moments live in the eigenbasis, made of the same rotated gradients: a
                # first moment rotated separately would carry other rounding noise, and where
                # the gradient is low rank (noise-sized entries) the ratio would blow up
                rotated = _rotate(grad, state, back=False)
                state["exp_avg"].lerp_(rotated, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(rotated, rotated, value=1 - beta2)
                denominator = (state["exp_avg_sq"] / (1 - beta2**t)).sqrt().add_(group["eps"])
                direction = state["exp_avg"] / denominator / (1 - beta1**t)
                update = _rotate(direction, state, back=True)
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update, alpha=-group["lr"])
                if state["sides"]:
                    _accumulate(state, grad, shampoo_beta)
                    if t % group["precondition_frequency"] == 0:
                        _refresh(state)
        return loss


def _init_state(state: dict, grad: torch.Tensor, max_precond_dim: int) -> None:
    state["step"] = 0
    state["exp_avg"] = torch.zeros_like(grad)
    state["exp_avg_sq"] = torch.zeros_like(grad)
    state["sides"] = []  # per side of the matrix view: its statistic, or None (not rotated)
    if grad.dim() >= 2:
        rows, columns = grad.shape[0], grad[0].numel()
        state["sides"] = [
            None if size > max_precond_dim else grad.new_zeros(size, size)
            for size in (rows, columns)
        ]
        if all(side is None for side in state["sides"]):
            state["sides"] = []


def _matrix(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(tensor.shape[0], -1)


def _accumulate(state: dict, grad: torch.Tensor, beta: float) -> None:
    """L <- beta L + (1 - beta) G G^T, R <- beta R + (1 - beta) G^T G."""
    g = _matrix(grad)
    left, right = state["sides"]
    if left is not None:
        left.lerp_(g @ g.T, 1 - beta)
    if right is not None:
        right.lerp_(g.T @ g, 1 - beta)


def _eigenbases(state: dict) -> list[torch.Tensor | None]:
    """Eigenvectors of each side's statistic, largest eigenvalue first (float64 eigh)."""
    bases = []
    for side in state["sides"]:
        if side is None:
            bases.append(None)
            continue
        eye = torch.eye(side.shape[0], dtype=torch.float64, device=side.device)
        _, vectors = torch.linalg.eigh(side.double() + 1e-30 * eye)
        bases.append(vectors.flip(-1).to(side.dtype))
    return bases


def _refresh(state: dict) -> None:
    """One power iteration from the current bases, re-orthogonalised by QR. The first moment
    is carried into the new bases; the second moments follow their directions when the
    eigenvalue estimates change order (a rotation cannot carry them exactly)."""
    first = _rotate(state["exp_avg"], state, back=True)
    order: list[torch.Tensor | None] = []
    for i, (side, basis) in enumerate(zip(state["sides"], state["bases"], strict=True)):
        if side is None:
            order.append(None)
            continue
        product = side @ basis
        estimates = (basis * product).sum(dim=0)  # Rayleigh quotients
        sort = torch.argsort(estimates, descending=True)
        order.append(sort)
        state["bases"][i] = torch.linalg.qr(product[:, sort])[0]
    second = _matrix(state["exp_avg_sq"])
    if order[0] is not None:
        second = second[order[0]]
    if order[1] is not None:
        second = second[:, order[1]]
    state["exp_avg_sq"].copy_(second.reshape(state["exp_avg_sq"].shape))
    state["exp_avg"].copy_(_rotate(first, state, back=False))


def _rotate(tensor: torch.Tensor, state: dict, *, back: bool) -> torch.Tensor:
    """Q_L^T X Q_R (into the eigenbasis) or Q_L X Q_R^T (back); identity on 1-D tensors."""
    if not state["sides"]:
        return tensor
    x = _matrix(tensor)
    left, right = state["bases"]
    if left is not None:
        x = (left if back else left.T) @ x
    if right is not None:
        x = x @ (right.T if back else right)
    return x.reshape(tensor.shape)
