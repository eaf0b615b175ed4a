"""Samplers: NTK products against an explicit kernel, unbiased importance weights, batch
arithmetic, determinism, and every sampler through the codec."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import kancoin
from kancoin.cli import main
from kancoin.fit import SAMPLERS, SamplerOptions, make_sampler
from kancoin.fit.importance import importance_batch, inclusion_chances
from kancoin.fit.ntk import kernel_product, ntk_scores
from kancoin.fit.samplers import FitContext
from kancoin.fit.steps import autograd_step
from kancoin.models import SirenSpec


def tiny_problem(num: int = 40, channels: int = 3, seed: int = 0, dtype=torch.float64):
    torch.manual_seed(seed)
    spec = SirenSpec(in_features=2, out_features=channels, layers=2, width=6, w0_first=5.0)
    model = spec.build().to(dtype)
    coords = torch.rand(num, 2, dtype=dtype) * 2 - 1
    targets = torch.rand(num, channels, dtype=dtype)
    return model, coords, targets


def explicit_kernel(model, coords) -> torch.Tensor:
    """K = J J^T formed from the full Jacobian of all outputs w.r.t. all parameters, one
    backward pass per output value."""
    params = list(model.parameters())
    outputs = model(coords).reshape(-1)
    rows = []
    for value in outputs:
        grads = torch.autograd.grad(value, params, retain_graph=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    jacobian = torch.stack(rows)
    return jacobian @ jacobian.T


def test_ntk_scores_match_explicit_kernel():
    model, coords, targets = tiny_problem()
    kernel = explicit_kernel(model, coords)
    residual = (model(coords) - targets).detach()
    expected = (kernel @ residual.reshape(-1)).reshape(residual.shape)
    scores, got_residual = ntk_scores(model, coords, targets, chunk=7)  # chunks of unequal size
    torch.testing.assert_close(got_residual, residual, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(scores, expected.norm(dim=1), rtol=1e-9, atol=1e-9)


def test_kernel_product_at_other_coordinates_is_the_cross_kernel():
    model, coords, _ = tiny_problem(num=30, channels=2)
    others = torch.rand(9, 2, dtype=torch.float64) * 2 - 1
    vector = torch.randn(30, 2, dtype=torch.float64)
    joint = explicit_kernel(model, torch.cat([others, coords]))
    cross = joint[: 9 * 2, 9 * 2 :]
    expected = (cross @ vector.reshape(-1)).reshape(9, 2)
    got = kernel_product(model, coords, vector, at=others, chunk=4)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_ntk_scores_leave_parameters_and_gradients_alone():
    model, coords, targets = tiny_problem()
    before = [p.detach().clone() for p in model.parameters()]
    ntk_scores(model, coords, targets)
    for p, old in zip(model.parameters(), before, strict=True):
        assert p.grad is None
        assert torch.equal(p.detach(), old)


def test_ntk_scores_in_float32_close_to_float64():
    model, coords, targets = tiny_problem()
    exact, _ = ntk_scores(model, coords, targets)
    approx, _ = ntk_scores(model.float(), coords.float(), targets.float())
    torch.testing.assert_close(approx.double(), exact, rtol=1e-4, atol=1e-4)


# --- importance weights -------------------------------------------------------------


def skewed_scores(num: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(num, generator=generator, dtype=torch.float64) ** 4 * 100


def per_coordinate_multiplier(batch, num: int) -> torch.Tensor:
    """What each coordinate's error is multiplied by in the trainer's loss (mean of
    weight * error over the batch rows)."""
    out = torch.zeros(num, dtype=torch.float64)
    out[batch.indices] = batch.weights.double() / batch.indices.shape[0]
    return out


@pytest.mark.parametrize("mix", [0.0, 0.3, 1.0])
def test_inclusion_chances_spread_the_batch(mix):
    scores = skewed_scores(50).float()
    chances = inclusion_chances(scores, 12, mix)
    assert bool((chances <= 1).all())
    if bool((chances < 1).all()):  # nothing capped: the expected batch size is exact
        assert math.isclose(float(chances.sum()), 12, rel_tol=1e-5)
    if mix > 0:
        assert bool((chances >= mix * 12 / 50 - 1e-7).all())
    ratio = chances / scores  # beyond the even share, chances follow the scores
    if mix == 0.0:
        capped = chances >= 1
        torch.testing.assert_close(ratio[~capped], ratio[~capped][:1].expand(int((~capped).sum())))


def test_inclusion_chances_cap_at_one_and_fall_back_to_uniform():
    assert float(inclusion_chances(torch.tensor([1e6, 1.0, 1.0, 1.0]), 3, 0.0)[0]) == 1.0
    for scores in (torch.zeros(8), torch.tensor([1.0, math.nan, 2.0, 3.0])):
        chances = inclusion_chances(scores, 2, 0.5)
        torch.testing.assert_close(chances, torch.full((scores.shape[0],), 2 / scores.shape[0]))


def test_importance_batches_weight_rows_by_inverse_chance():
    generator = torch.Generator().manual_seed(0)
    scores = skewed_scores(300).float()
    chances = inclusion_chances(scores, 60, 0.25)
    for _ in range(20):
        batch = importance_batch(scores, 60, mix=0.25, generator=generator)
        assert torch.equal(batch.indices, batch.indices.unique())  # sorted, no repeats
        rows = batch.indices.shape[0]
        expected = rows / (300 * chances[batch.indices].double())
        torch.testing.assert_close(batch.weights.double(), expected, rtol=1e-6, atol=0)


def _gradient(model, coords, targets, weights=None) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    autograd_step(model, coords, targets, weights)
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def test_importance_weighted_gradient_is_unbiased_and_unweighted_is_not():
    """Over many batches the weighted step gradient averages to the full-batch gradient."""
    num = 32
    model, coords, targets = tiny_problem(num=num)
    full = _gradient(model, coords, targets)
    # the step's gradient is linear in the per-row loss multipliers (weight / rows): check
    # that once through the real step, then average multipliers over many batches
    per_coord = torch.stack(
        [_gradient(model, coords[i : i + 1], targets[i : i + 1]) for i in range(num)]
    )
    scores = (model(coords) - targets).detach().norm(dim=1) ** 2  # strongly skewed
    generator = torch.Generator().manual_seed(0)
    probe = importance_batch(scores, 8, mix=0.2, generator=generator)
    rows = probe.indices.shape[0]
    torch.testing.assert_close(
        _gradient(model, coords[probe.indices], targets[probe.indices], probe.weights.double()),
        (probe.weights.double() / rows) @ per_coord[probe.indices],
    )
    draws = 20000
    weighted = torch.zeros(num, dtype=torch.float64)
    unweighted = torch.zeros(num, dtype=torch.float64)
    for _ in range(draws):
        batch = importance_batch(scores, 8, mix=0.2, generator=generator)
        weighted += per_coordinate_multiplier(batch, num)
        unweighted[batch.indices] += 1.0 / batch.indices.shape[0]
    mean = weighted / draws
    torch.testing.assert_close(mean, torch.full((num,), 1 / num).double(), rtol=0.06, atol=0)
    error = ((mean @ per_coord - full).norm() / full.norm()).item()
    bias = ((unweighted / draws @ per_coord - full).norm() / full.norm()).item()
    assert error < 0.02
    assert bias > 5 * error  # the same batches without weights are visibly biased


# --- batch arithmetic and determinism -----------------------------------------------


def context_for(num: int = 400, seed: int = 0) -> FitContext:
    model, coords, targets = tiny_problem(num=num, seed=seed, dtype=torch.float32)
    return FitContext(model, coords, targets)


def run_sampler(name: str, seed: int, rounds: int = 12, options=None, num: int = 400):
    context = context_for(num)
    sampler = make_sampler(
        name, num, fraction=0.2, generator=torch.Generator().manual_seed(seed), options=options
    )
    batches = []
    for step in range(rounds):
        batch = sampler.select(step, context)
        indices = torch.arange(num) if batch.indices is None else batch.indices
        prediction = context.model(context.coords[indices]).detach()
        sampler.observe(batch, (prediction - context.targets[indices]).pow(2).sum(dim=1))
        batches.append(batch)
    return batches


ALL_CONFIGS = [
    ("full", None),
    ("uniform", None),
    ("error", None),
    ("importance", None),
    ("nint", SamplerOptions(nint_mode="paper")),
    ("nint", SamplerOptions(nint_mode="importance", nint_leverage_every=5)),
]


def test_registry_holds_every_sampler():
    assert set(SAMPLERS) == {"full", "uniform", "error", "importance", "nint"}


@pytest.mark.parametrize(("name", "options"), ALL_CONFIGS)
def test_samplers_are_deterministic_under_a_seed(name, options):
    first = run_sampler(name, seed=5, options=options)
    again = run_sampler(name, seed=5, options=options)
    other = run_sampler(name, seed=6, options=options)
    same = all(
        _equal(a.indices, b.indices) and _equal(a.weights, b.weights)
        for a, b in zip(first, again, strict=True)
    )
    assert same
    if name != "full":
        assert not all(_equal(a.indices, b.indices) for a, b in zip(first, other, strict=True))


def _equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return torch.equal(a, b)


@pytest.mark.parametrize("name", ["uniform", "error"])
def test_batches_are_the_fraction_without_repeats(name):
    for batch in run_sampler(name, seed=0):
        assert batch.indices.shape == (80,)
        assert batch.indices.unique().shape == (80,)
        assert batch.weights is None


def test_full_sampler_takes_everything():
    assert all(b.indices is None and b.weights is None for b in run_sampler("full", seed=0))


def test_error_sampler_takes_the_largest_residuals():
    context = context_for()
    sampler = make_sampler("error", 400, fraction=0.2, generator=torch.Generator())
    batch = sampler.select(0, context)
    errors = (context.model(context.coords) - context.targets).detach().norm(dim=1)
    ranked = 80 - round(0.7 * 80)
    top = set(torch.topk(errors, ranked).indices.tolist())
    assert top <= set(batch.indices.tolist())
    # the step's own errors update the ranking: once the top ones report zero, they drop out
    sampler.observe(batch, torch.zeros(80))
    assert not top & set(sampler.select(1, context).indices[:ranked].tolist())


def test_nint_paper_batch_shares():
    context = context_for()
    options = SamplerOptions(nint_mode="paper")
    sampler = make_sampler("nint", 400, fraction=0.2, generator=torch.Generator(), options=options)
    assert math.isclose(sampler.ntk_share(0), 0.3)
    assert math.isclose(sampler.ntk_share(10), 0.3 * math.exp(-1))
    batch = sampler.select(0, context)
    assert batch.indices.shape == (80,) and batch.indices.unique().shape == (80,)
    scores, residual = ntk_scores(context.model, context.coords, context.targets)
    n_ntk = int(0.3 * 80)
    assert batch.indices[:n_ntk].tolist() == torch.topk(scores, n_ntk).indices.tolist()
    errors = residual.abs().sum(dim=1)
    errors[batch.indices[:n_ntk]] = -math.inf
    n_err = 80 - 56 - n_ntk
    assert set(batch.indices[n_ntk : n_ntk + n_err].tolist()) == set(
        torch.topk(errors, n_err).indices.tolist()
    )
    # NTK picks are kept between refreshes, and the share decays to nothing
    assert torch.equal(sampler.select(3, context).indices[:n_ntk], batch.indices[:n_ntk])
    assert sampler.select(10, context).indices.shape == (80,)
    assert sampler._ntk_indices.shape[0] == int(0.3 * math.exp(-1) * 80)
    sampler.select(100, context)
    assert sampler._ntk_indices.shape[0] == 0


@pytest.mark.parametrize(
    ("name", "options"),
    [("importance", None), ("nint", SamplerOptions(nint_mode="importance"))],
)
def test_importance_batches_are_weighted(name, options):
    batches = run_sampler(name, seed=0, options=options)
    for batch in batches:
        assert batch.weights is not None and bool((batch.weights > 0).all())
        assert batch.indices.unique().shape == batch.indices.shape
        assert 50 < batch.indices.shape[0] < 110  # Poisson sampling: about 80


def test_nint_leverage_is_measured_on_a_pool_and_bounded():
    context = context_for()
    options = SamplerOptions(nint_mode="importance", nint_leverage_every=3, nint_leverage_pool=0.5)
    sampler = make_sampler("nint", 400, fraction=0.2, generator=torch.Generator(), options=options)
    sampler.select(0, context)
    measured = sampler.leverage != 1.0
    assert 150 <= int(measured.sum()) <= 200  # the pool: half of the coordinates
    assert float(sampler.leverage.min()) >= 0.1 and float(sampler.leverage.max()) <= 10.0
    before = sampler.leverage.clone()
    sampler.select(1, context)
    assert torch.equal(sampler.leverage, before)  # only every third round
    sampler.select(3, context)
    assert not torch.equal(sampler.leverage, before)


def test_bad_options_are_refused():
    with pytest.raises(ValueError):
        make_sampler(
            "nint",
            10,
            fraction=0.2,
            generator=torch.Generator(),
            options=SamplerOptions(nint_mode="bogus"),
        )
    with pytest.raises(ValueError):
        SamplerOptions(uniform_share=1.5)
    with pytest.raises(ValueError):
        make_sampler("bogus", 10, fraction=0.2, generator=torch.Generator())


# --- through the codec and the CLI --------------------------------------------------


def smooth(height: int = 12, width: int = 16) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([0.5 + 0.4 * np.sin(x / 3 + c) * np.cos(y / 4) for c in range(3)], axis=-1)


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("full", None),
        ("uniform", None),
        ("error", None),
        ("importance", None),
        ("nint", "paper"),
        ("nint", "importance"),
    ],
)
def test_every_sampler_encodes(name, mode):
    options = {} if mode is None else {"sampler_options": SamplerOptions(nint_mode=mode)}
    result = kancoin.encode(smooth(), bpp=4.0, steps=12, preset="fast", sampler=name, **options)
    assert result.steps == 12
    assert math.isfinite(result.psnr_float) and result.psnr_float > 10
    decoded = kancoin.decode(result.data)
    assert decoded.shape == (12, 16, 3)


def test_cli_sampler_choices(image_file, tmp_path, capsys):
    path = image_file(12, 16)
    out = tmp_path / "a.inr"
    args = ["--bpp", "4", "--steps", "3", "--preset", "fast", "--json", "-q"]
    code = main(
        ["encode", str(path), "-o", str(out), "--sampler", "nint", "--nint-mode", "paper", *args]
    )
    assert code == 0 and out.is_file()
    assert main(["encode", str(path), "--sampler", "bogus", "-q"]) == 2
    capsys.readouterr()


def test_the_importance_sampler_does_not_touch_the_ntk(monkeypatch):
    """`importance` draws by residual alone: the name says what it does."""
    import kancoin.fit.nint

    def no_ntk(*args, **kwargs):
        raise AssertionError("the importance sampler computed NTK scores")

    monkeypatch.setattr(kancoin.fit.nint, "ntk_scores", no_ntk)
    assert kancoin.EncodeConfig().training.sampler == "importance"
    kancoin.encode(smooth(), bpp=4.0, steps=12, preset="fast")
    with pytest.raises(AssertionError, match="NTK"):
        kancoin.encode(smooth(), bpp=4.0, steps=12, preset="fast", sampler="nint")


@pytest.mark.parametrize(
    ("args", "used", "note"),
    [
        (["--sampler", "nint"], ("nint", "paper"), "--sampler importance"),
        (["--nint-mode", "importance"], ("nint", "importance"), "deprecated"),
        (["--sampler", "importance"], ("importance", "paper"), None),
        ([], ("importance", "paper"), None),
    ],
)
def test_cli_sampler_spellings(image_file, tmp_path, capsys, monkeypatch, args, used, note):
    import kancoin.cli

    original = kancoin.encoder.encode
    captured = {}

    def capture(*a, **kw):
        captured.update(kw)
        return original(*a, **kw)

    monkeypatch.setattr(kancoin.cli.encoder, "encode", capture)
    path = image_file(12, 16)
    common = ["--bpp", "4", "--steps", "3", "--preset", "fast", "-q", "-o", str(tmp_path / "x.inr")]
    assert main(["encode", str(path), *common, *args]) == 0
    err = capsys.readouterr().err
    config = captured["config"]
    training = config.training
    assert (training.sampler, training.sampler_options.nint_mode) == used
    assert (note in err) if note else "note:" not in err


# --- the bench's arithmetic -----------------------------------------------------------


def load_bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "sampling.py"
    spec = importlib.util.spec_from_file_location("bench_sampling", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_budget_to_reach_interpolates_in_log_time():
    bench = load_bench()
    points = [(15.0, 24.0), (60.0, 28.0)]
    assert bench.budget_to_reach(points, 23.0) == 15.0
    assert math.isclose(bench.budget_to_reach(points, 26.0), 30.0)  # halfway in log time
    assert math.isclose(bench.budget_to_reach(points, 28.0), 60.0)
    assert bench.budget_to_reach(points, 28.1) == math.inf


def test_bench_table_takes_medians_over_images():
    bench = load_bench()
    runs = [
        {"image": image, "sampler": "uniform", "budget": budget, "psnr_float": value, "steps": 9}
        for image, budget, value in [
            ("a", 15.0, 20.0),
            ("a", 45.0, 25.0),
            ("b", 15.0, 22.0),
            ("b", 45.0, 27.0),
            ("c", 15.0, 30.0),
            ("c", 45.0, 31.0),
        ]
    ]
    text = bench.table(runs, ["uniform"], [15.0, 45.0], [26.0])
    row = text.splitlines()[-1]
    assert row.startswith("| uniform | 22.00 | 27.00 | 9 |")
    assert "to 26 dB" in text.splitlines()[0]
