"""Drawing a batch in proportion to scores, with weights that keep the gradient unbiased.

A batch drawn from a non-uniform distribution p over-trains the coordinates p favours. Weighting
each drawn coordinate's loss by 1 / (N p_i) makes the batch loss, and so its gradient, an
unbiased estimate of the full-signal loss and gradient: the favoured coordinates are seen more
often but count less each time. Ranked (top-k) selection has no such correction, and on a CPU
budget of a few hundred steps it over-fits the pixels it keeps choosing.
"""

from __future__ import annotations

import torch

from kancoin.fit.samplers import Batch


def draw_probabilities(scores: torch.Tensor, count: int, mix: float) -> tuple[int, torch.Tensor]:
    """(uniform draws, per-draw probability p) for a batch of `count` draws.

    `round(mix * count)` draws are uniform (without replacement) and the rest follow the
    scores (with replacement); p_i is the chance that a single draw of the batch is i, so
    count * p_i is the expected number of times i is drawn.
    """
    num = scores.shape[0]
    uniform = min(num, round(mix * count))
    total = float(scores.sum())
    if not total > 0 or not torch.isfinite(scores).all():
        return count, torch.full((num,), 1.0 / num, dtype=torch.float64)
    by_score = scores.double() / total
    expected = uniform / num + (count - uniform) * by_score
    return uniform, expected / count


def importance_batch(
    scores: torch.Tensor,
    count: int,
    *,
    mix: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> Batch:
    """A batch of `count` draws: a uniform share `mix`, the rest in proportion to `scores`.

    Repeated draws are merged into one row whose weight counts them. With B' rows, weight_i =
    (draws of i) * B' / (count * N * p_i): the trainer's mean over rows of weight * error then
    equals (1 / count) * sum over draws of error / (N p), whose expectation is the full mean.
    """
    num = scores.shape[0]
    uniform, p = draw_probabilities(scores.float().cpu(), count, mix)
    parts = [torch.randperm(num, generator=generator)[:uniform]]
    if count > uniform:
        by_score = (p * count - uniform / num).clamp_min(0.0)
        parts.append(
            torch.multinomial(by_score, count - uniform, replacement=True, generator=generator)
        )
    indices, draws = torch.cat(parts).unique(return_counts=True)
    rows = indices.shape[0]
    weights = draws.double() * rows / (count * num * p[indices])
    return Batch(indices=indices.to(device), weights=weights.float().to(device))
