"""The fast steps compute autograd's loss and gradients; selection picks them where it should."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kancoin.fit import FitConfig, fit
from kancoin.fit.fast_step import SirenFastStep
from kancoin.fit.select import FAST_STEPS, select_step
from kancoin.fit.steps import ChunkedAutogradStep, autograd_step
from kancoin.kernels import (
    mul_column_sums_,
    native_available,
    sin_,
    sine_layer_,
    use_native,
)
from kancoin.models import Siren, SirenSpec
from kancoin.render import render

KERNELS = [
    "torch",
    pytest.param(
        "native",
        marks=pytest.mark.skipif(not native_available(), reason="native kernel not built"),
    ),
]


def _problem(layers, width, count, *, channels=3, weighted=False, seed=0):
    torch.manual_seed(seed)
    model = SirenSpec(in_features=2, out_features=channels, layers=layers, width=width).build()
    coords = torch.rand(count, 2) * 2 - 1
    targets = torch.rand(count, channels)
    weights = torch.rand(count) * 2 if weighted else None
    return model, coords, targets, weights


def _gradients(step, model, coords, targets, weights):
    model.zero_grad(set_to_none=True)
    sq_err = step(model, coords, targets, weights)
    return sq_err, [None if p.grad is None else p.grad.clone() for p in model.parameters()]


def _assert_matches_autograd(step, model, coords, targets, weights):
    want_err, want_grads = _gradients(autograd_step, model, coords, targets, weights)
    got_err, got_grads = _gradients(step, model, coords, targets, weights)
    assert got_err.shape == want_err.shape
    torch.testing.assert_close(got_err, want_err, rtol=1e-5, atol=1e-6)
    for got, want in zip(got_grads, want_grads, strict=True):
        # relative to the tensor's scale: entries near zero carry only rounding noise
        torch.testing.assert_close(got, want, rtol=0, atol=2e-5 * float(want.abs().max()))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    ("layers", "width", "count", "chunk"),
    [
        (3, 16, 1000, 300),  # last chunk partial
        (1, 8, 7, 3),  # one sine layer, chunk of one coordinate at the end
        (2, 12, 50, 4096),  # batch smaller than a chunk
        (5, 20, 513, 64),  # odd count, many chunks
        (4, 24, 256, 256),  # exactly one chunk
    ],
)
def test_siren_fast_step_equals_autograd(layers, width, count, chunk, weighted, kernel):
    model, coords, targets, weights = _problem(layers, width, count, weighted=weighted)
    step = SirenFastStep(chunk=chunk, kernel=kernel)
    _assert_matches_autograd(step, model, coords, targets, weights)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_siren_fast_step_same_result_for_any_thread_count(threads):
    model, coords, targets, weights = _problem(3, 16, 700, weighted=True)
    step = SirenFastStep(chunk=64, threads=threads)
    _assert_matches_autograd(step, model, coords, targets, weights)


def test_siren_fast_step_one_and_four_channels():
    for channels in (1, 4):
        model, coords, targets, _ = _problem(2, 10, 300, channels=channels)
        _assert_matches_autograd(SirenFastStep(chunk=128), model, coords, targets, None)


def test_siren_fast_step_accumulates_into_existing_gradients():
    model, coords, targets, _ = _problem(2, 8, 100)
    step = SirenFastStep(chunk=32)
    _, once = _gradients(step, model, coords, targets, None)
    step(model, coords, targets)  # .grad still holds the first step's gradients
    for param, single in zip(model.parameters(), once, strict=True):
        torch.testing.assert_close(param.grad, 2 * single)


def test_siren_fast_step_leaves_frozen_parameters_alone():
    model, coords, targets, _ = _problem(3, 8, 200)
    model.weights[0].requires_grad_(False)
    model.biases[1].requires_grad_(False)
    _, want = _gradients(autograd_step, model, coords, targets, None)
    model.zero_grad(set_to_none=True)
    SirenFastStep(chunk=64, threads=2)(model, coords, targets)
    assert model.weights[0].grad is None and model.biases[1].grad is None
    for param, grad in zip(model.parameters(), want, strict=True):
        if param.requires_grad:
            torch.testing.assert_close(
                param.grad, grad, rtol=0, atol=2e-5 * float(grad.abs().max())
            )


def test_siren_fast_step_reuses_buffers_across_steps_and_shapes():
    step = SirenFastStep(chunk=64)
    for layers, count in [(2, 100), (2, 300), (4, 100)]:
        model, coords, targets, weights = _problem(layers, 12, count, weighted=True)
        _assert_matches_autograd(step, model, coords, targets, weights)


def test_siren_fast_step_rejects_other_models():
    with pytest.raises(TypeError, match="SIREN step cannot train a Linear"):
        SirenFastStep()(nn.Linear(2, 3), torch.zeros(4, 2), torch.zeros(4, 3))
    gauss = Siren(SirenSpec(2, 3, layers=2, width=8), activation=torch.cos)
    with pytest.raises(TypeError, match="SIREN step"):  # a sine step would train sines
        SirenFastStep()(gauss, torch.zeros(4, 2), torch.zeros(4, 3))


def test_siren_fast_step_rejects_bad_settings():
    with pytest.raises(ValueError, match="chunk"):
        SirenFastStep(chunk=0)
    with pytest.raises(ValueError, match="threads"):
        SirenFastStep(threads=0)
    model, coords, targets, _ = _problem(1, 4, 10)
    with pytest.raises(ValueError, match="kernel"):
        SirenFastStep(kernel="fortran")(model, coords, targets)


class _Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_chunked_autograd_equals_autograd(weighted, threads):
    torch.manual_seed(1)
    model = _Mlp()
    coords, targets = torch.rand(333, 2), torch.rand(333, 3)
    weights = torch.rand(333) if weighted else None
    step = ChunkedAutogradStep(chunk=50, threads=threads)
    _assert_matches_autograd(step, model, coords, targets, weights)


def _trajectory(step: str, sampler: str) -> list[float]:
    model, coords, targets, _ = _problem(3, 16, 24 * 20, seed=3)
    config = FitConfig(steps=6, lr=1e-3, sampler=sampler, batch_fraction=0.5, evals=6, step=step)
    result = fit(model, coords, targets, config)
    # the whole signal's PSNR at every checkpoint (one per step here; progress reports
    # these too), without the final evaluation of the best state
    return [psnr for _, _, psnr in result.history][:-1]


@pytest.mark.parametrize("sampler", ["full", "uniform"])
def test_trainer_fast_step_follows_autograd_trajectory(sampler):
    fast, plain = _trajectory("fast", sampler), _trajectory("autograd", sampler)
    assert len(fast) == len(plain) >= 5
    assert all(math.isfinite(p) for p in fast)
    assert fast == pytest.approx(plain, abs=1e-3)  # dB
    assert fast[-1] != fast[0]  # the trajectory moved


def test_select_step():
    model = SirenSpec(in_features=2, out_features=3, layers=2, width=8).build()
    cpu = torch.device("cpu")
    assert isinstance(select_step(model, cpu), SirenFastStep)
    assert select_step(model, cpu, "autograd") is autograd_step
    assert select_step(model, torch.device("cuda")) is autograd_step
    assert isinstance(select_step(_Mlp(), cpu), ChunkedAutogradStep)
    assert FAST_STEPS["siren"] is SirenFastStep
    with pytest.raises(ValueError, match="step"):
        select_step(model, cpu, "magic")
    with pytest.raises(ValueError, match="step"):
        FitConfig(step="magic")


def test_select_step_follows_the_model_step_kind(monkeypatch):
    marker = ChunkedAutogradStep(chunk=7)

    class WithKind(_Mlp):
        def step_kind(self):
            return "marked"

    monkeypatch.setitem(FAST_STEPS, "marked", lambda: marker)
    assert select_step(WithKind(), torch.device("cpu")) is marker
    cosine = Siren(SirenSpec(2, 3, layers=2, width=8), activation=torch.cos)
    assert isinstance(select_step(cosine, torch.device("cpu")), ChunkedAutogradStep)


@pytest.mark.parametrize("kernel", KERNELS)
def test_sine_and_cosine_match_float64(kernel):
    x = torch.cat(
        [
            torch.linspace(-6000, 6000, 200_000),  # crosses the native fast range (|x| <= 4096)
            torch.tensor([0.0, -0.0, 1e-30, 3e5, -7e7]),
        ]
    ).reshape(-1, 5)
    native = use_native(kernel, x)
    cosines, sines = x.clone(), torch.empty_like(x)
    sine_layer_(cosines, sines, torch.zeros(5), 1.0, native=native)
    reference = x.double()
    torch.testing.assert_close(sines.double(), reference.sin(), rtol=0, atol=2e-7)
    torch.testing.assert_close(cosines.double(), reference.cos(), rtol=0, atol=2e-7)
    only_sin = x.clone()
    sin_(only_sin, native=native)
    torch.testing.assert_close(only_sin.double(), reference.sin(), rtol=0, atol=2e-7)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (37, 44), (300, 13), (5, 200)])
def test_sine_layer_and_column_sums_match_torch(kernel, rows, cols):
    torch.manual_seed(rows + cols)
    z = torch.randn(rows, cols) * 3
    bias, upstream = torch.randn(cols), torch.randn(rows, cols)
    z[0, 0] = 5000.0  # a row beyond the fast range takes libm's path
    native = use_native(kernel, z)
    cosines, sines = z.clone(), torch.empty_like(z)
    sine_layer_(cosines, sines, bias, 30.0, native=native)
    t = (30.0 * (z + bias)).double()  # t rounded as float, as the step rounds it
    torch.testing.assert_close(sines.double(), t.sin(), rtol=0, atol=3e-7)
    torch.testing.assert_close(cosines.double(), t.cos(), rtol=0, atol=3e-7)
    sums = torch.empty(cols)
    g = cosines.clone()
    mul_column_sums_(g, upstream, sums, native=native)
    torch.testing.assert_close(g, cosines * upstream)
    torch.testing.assert_close(sums, g.sum(dim=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel", KERNELS)
def test_sine_layer_propagates_nan_and_inf(kernel):
    x = torch.tensor([[float("nan"), float("inf"), -float("inf"), 1.0]])
    cosines, sines = x.clone(), torch.empty_like(x)
    sine_layer_(cosines, sines, torch.zeros(4), 1.0, native=use_native(kernel, x))
    assert torch.isnan(sines[0, :3]).all() and torch.isnan(cosines[0, :3]).all()
    assert float(sines[0, 3]) == pytest.approx(math.sin(1.0), abs=1e-7)
    assert float(cosines[0, 3]) == pytest.approx(math.cos(1.0), abs=1e-7)


def test_native_kernel_refused_where_it_cannot_run():
    if not native_available():
        with pytest.raises(RuntimeError, match="not built"):
            use_native("native", torch.zeros(3))
        return
    assert not use_native("auto", torch.zeros(3, dtype=torch.float64))
    assert not use_native("auto", torch.zeros(4, 4).t())
    with pytest.raises(RuntimeError, match="do not fit"):
        use_native("native", torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize("count", [1, 1000, 20_000])
def test_render_equals_the_model(count):
    siren, coords, _, _ = _problem(3, 16, count)
    mlp = _Mlp()
    for model in (siren, mlp):
        with torch.no_grad():
            want = model(coords)
        torch.testing.assert_close(render(model, coords, chunk=4096), want, rtol=0, atol=1e-5)


def test_encode_config_rejects_unknown_step():
    from kancoin.config import EncodeConfig
    from kancoin.errors import UsageError

    with pytest.raises(UsageError, match="step"):
        EncodeConfig.of(step="magic")
