"""The grid trainer's two loss terms, their gradients written out and computed in chunks.

Through autograd, a full-image step keeps every intermediate ((pixels, 16) activations, a
dozen (latents,) tensors of the Laplace mass) and streams each through memory several
times. These functions compute a term and its gradients in one pass over cache-sized
chunks, the same mathematics (tests/test_grid_losses.py checks both against autograd):
a full-image step of model id 22 on a Kodak image is 1.8x faster (docs/GRID.md). What
they do not cover (a synthesis other than a ReLU MLP) takes autograd's path.
"""

from __future__ import annotations

import math

import torch

from kancoin.latents import LOG2_SCALE_MAX, LOG2_SCALE_MIN, MIN_PROBABILITY, ContextNet
from kancoin.models.grid import ACTIVATIONS, GridModel

CHUNK = 16384  # samples per pass: a (16, CHUNK) float32 activation is 1 MiB
# exp(-x) past x = 87 leaves its vector path (a denormal or zero result, 6-18x slower per
# call); only outliers get there (the smallest scale is 2^-3.5), and e^-40 is far below
# any mass that is not floored (2^-16): no code length or gradient moves beyond rounding.
TAIL_EXPONENT_MAX = 40.0


def synthesis_mse(model: GridModel, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the synthesis on (N, levels) features against (N, C) targets."""
    relu = ACTIVATIONS[model.spec.activation] == "relu"
    if isinstance(model.synthesis, torch.nn.ModuleList) and relu:
        # columns: upsample_full's features are a transposed view of (levels, N) planes
        columns = features.t()
        return _ReluMlpMse.apply(columns, targets.t(), *model.synthesis_tensors())
    return (model.synthesize(features) - targets).pow(2).mean()


def context_bits(context: ContextNet, levels: list[torch.Tensor], start: int = 0) -> torch.Tensor:
    """Total code length in bits of (h, w) levels (finest first) from `start` on, under
    the float context model: the sum of `ContextNet.bits`. Without grad mode (the rate
    controller's measurements) no gradient is computed."""
    total = levels[0].new_zeros(())
    net = [context.w1, context.b1, context.w2, context.b2] if context.hidden else []
    for index in range(start, len(levels)):
        level = levels[index]
        if context.hidden:
            parent = levels[index + 1] if index + 1 < len(levels) else None
            planes = context.layout.planes(level, parent)
            columns = torch.stack(planes).reshape(len(planes), -1)
        else:
            columns = level.new_zeros(0, 0)
        bias = context.level_bias[index]
        if torch.is_grad_enabled():
            total = total + _ContextBits.apply(level.reshape(-1), columns, bias, *net)
        else:
            total = total + _laplace_context_bits(level.reshape(-1), columns, bias, net)[0]
    return total


def _relu_backward(grad: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """grad where the ReLU's output is positive, else 0 (autograd's own kernel: a product
    with the boolean mask converts it to float first, 30x slower)."""
    return torch.ops.aten.threshold_backward(grad, output, 0)


def _scaled(ctx, grad_output: torch.Tensor) -> tuple:
    """The gradients a forward pass stored, times the loss's own gradient (in place, and
    released: these losses are differentiated once, never with retain_graph)."""
    grads, ctx.grads = ctx.grads, None
    return tuple(
        None if g is None or not need else g.mul_(grad_output)
        for g, need in zip(grads, ctx.needs_input_grad, strict=True)
    )


# Both functions work on columns: a (K, N) matrix of N samples, so every product is a
# small matrix times a wide one (2x faster than the (N, K) layout on a CPU's BLAS).


class _ReluMlpMse(torch.autograd.Function):
    """mean((mlp(x) - t)^2) over (K, N) columns x and (C, N) targets t, for linear layers
    with ReLU between them; the gradients of x and of every weight and bias are computed
    in the forward pass, chunk by chunk."""

    @staticmethod
    def forward(ctx, columns, targets, *tensors):
        layers = [(tensors[i], tensors[i + 1]) for i in range(0, len(tensors), 2)]
        channels, count = targets.shape
        grads = [torch.zeros_like(t) for t in tensors]
        column_grad = columns.new_empty(columns.shape) if ctx.needs_input_grad[0] else None
        total = columns.new_zeros((), dtype=torch.float64)
        scale = 2.0 / (count * channels)
        for begin in range(0, count, CHUNK):
            end = min(count, begin + CHUNK)
            inputs = [columns[:, begin:end]]
            h = inputs[0]
            for i, (weight, bias) in enumerate(layers):
                h = torch.addmm(bias[:, None], weight, h)
                if i < len(layers) - 1:
                    h = h.relu_()
                    inputs.append(h)
            d = h.sub_(targets[:, begin:end])
            total += d.pow(2).sum(dtype=torch.float64)
            d.mul_(scale)
            for i in range(len(layers) - 1, -1, -1):
                grads[2 * i].addmm_(d, inputs[i].t())
                grads[2 * i + 1].add_(d.sum(1))
                if i:
                    d = _relu_backward(layers[i][0].t() @ d, inputs[i])
                elif column_grad is not None:
                    column_grad[:, begin:end] = layers[0][0].t() @ d
        ctx.grads = (column_grad, None, *grads)
        return (total / (count * channels)).to(columns.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return _scaled(ctx, grad_output)


class _ContextBits(torch.autograd.Function):
    """`_laplace_context_bits` with the gradients it computes in the forward pass."""

    @staticmethod
    def forward(ctx, values, columns, bias, *net):
        total, ctx.grads = _laplace_context_bits(
            values, columns, bias, net, gradients=True, column_grad=ctx.needs_input_grad[1]
        )
        return total

    @staticmethod
    def backward(ctx, grad_output):
        return _scaled(ctx, grad_output)


def _laplace_context_bits(
    values, columns, bias, net, *, gradients: bool = False, column_grad: bool = True
) -> tuple[torch.Tensor, tuple | None]:
    """Sum over a level's (N,) values of -log2 of the Laplace mass on [v - 1/2, v + 1/2]
    (floored at MIN_PROBABILITY), mean and log2 scale from `level bias + w2 relu(w1 f + b1)
    + b2` on (K, N) feature columns f: `ContextNet.bits`, chunk by chunk. With
    `gradients`, also those of (values, columns, bias, w1, b1, w2, b2), in that order
    (columns' only when `column_grad`)."""
    hidden = bool(net)
    if hidden:
        w1, b1, w2, b2 = net
        out_bias = (b2 + bias)[:, None]
    if gradients:
        if hidden:
            grad_w1, grad_b1, grad_w2 = (torch.zeros_like(t) for t in (w1, b1, w2))
        feature_grad = columns.new_empty(columns.shape) if hidden and column_grad else None
        value_grad = torch.empty_like(values)
        grad_bias = torch.zeros_like(bias)
    total = values.new_zeros((), dtype=torch.float64)
    ln2 = math.log(2.0)
    for begin in range(0, values.shape[0], CHUNK):
        end = min(values.shape[0], begin + CHUNK)
        if hidden:
            h = torch.addmm(b1[:, None], w1, columns[:, begin:end]).relu_()
            mean, log2_scale = torch.addmm(out_bias, w2, h)
        else:
            mean, log2_scale = bias[0], bias[1].expand(end - begin)
        scale = torch.exp2(log2_scale.clamp(LOG2_SCALE_MIN, LOG2_SCALE_MAX))
        z = values[begin:end] - mean
        upper, lower = z + 0.5, z - 0.5
        # e^(-|x| / b) at both ends; the CDF is 1/2 + sign(x) (1 - e) / 2
        tail_upper = torch.exp((upper.abs() / scale).clamp_max_(TAIL_EXPONENT_MAX).neg_())
        tail_lower = torch.exp((lower.abs() / scale).clamp_max_(TAIL_EXPONENT_MAX).neg_())
        mass = 0.5 * (torch.sign(upper) * (1 - tail_upper) - torch.sign(lower) * (1 - tail_lower))
        total -= torch.log2(mass.clamp_min(MIN_PROBABILITY)).sum(dtype=torch.float64)
        if not gradients:
            continue
        # d bits / d mass, then the mass's derivatives: density p(x) = e / 2b at both
        # ends for z, and -(x p(x)) ln 2 differences for the log2 scale
        d_mass = torch.where(mass < MIN_PROBABILITY, 0.0, -1.0 / (mass * ln2))
        density_upper = tail_upper / (2 * scale)
        density_lower = tail_lower / (2 * scale)
        grad_z = d_mass * (density_upper - density_lower)
        grad_log2 = d_mass * (lower * density_lower - upper * density_upper) * ln2
        inside = (log2_scale >= LOG2_SCALE_MIN) & (log2_scale <= LOG2_SCALE_MAX)
        grad_log2.masked_fill_(~inside, 0.0)
        value_grad[begin:end] = grad_z
        d_out = torch.stack([-grad_z, grad_log2])
        grad_bias += d_out.sum(1)
        if hidden:
            grad_w2.addmm_(d_out, h.t())
            d_hidden = _relu_backward(w2.t() @ d_out, h)
            grad_w1.addmm_(d_hidden, columns[:, begin:end].t())
            grad_b1 += d_hidden.sum(1)
            if feature_grad is not None:
                feature_grad[:, begin:end] = w1.t() @ d_hidden
    total = total.to(values.dtype)
    if not gradients:
        return total, None
    net_grads = (grad_w1, grad_b1, grad_w2, grad_bias.clone()) if hidden else ()
    return total, (value_grad, feature_grad, grad_bias, *net_grads)
