"""KAN: B-spline bases, the layer, its spec and header, and a codec round trip."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import kancoin
from kancoin import bitstream, rate
from kancoin.cli import main
from kancoin.fit.select import select_step
from kancoin.fit.steps import ChunkedAutogradStep, autograd_step
from kancoin.models import KanSpec, spec_class, spec_class_by_name
from kancoin.models.nets.kan import KANLinear, bspline_bases
from kancoin.signals import ImageInfo, psnr, to_uint8
from tests.conftest import smooth_image

grids = st.tuples(
    st.integers(1, 24),  # grid_size
    st.integers(0, 5),  # spline_order
    st.sampled_from([0.25, 0.5, 1.0, 1.5, 3.0]),  # grid_range
)


def naive_bases(x: float, grid_size: int, order: int, grid_range: float) -> list[float]:
    """Scalar Cox-de Boor straight from the definition, on knots built independently."""
    h = 2 * grid_range / grid_size
    knots = [-grid_range + h * i for i in range(-order, grid_size + order + 1)]

    def basis(j: int, p: int) -> float:
        if p == 0:
            return 1.0 if knots[j] <= x < knots[j + 1] else 0.0
        left = (x - knots[j]) / (knots[j + p] - knots[j]) * basis(j, p - 1)
        right = (knots[j + p + 1] - x) / (knots[j + p + 1] - knots[j + 1]) * basis(j + 1, p - 1)
        return left + right

    return [basis(j, order) for j in range(grid_size + order)]


@given(grid=grids, data=st.data())
@settings(max_examples=60, deadline=None)
def test_bases_are_a_partition_of_unity_inside_the_range(grid, data):
    grid_size, order, grid_range = grid
    unit = data.draw(st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=20))
    x = torch.tensor(unit, dtype=torch.float64) * 2 * grid_range - grid_range  # [-r, r)
    bases = bspline_bases(x.unsqueeze(-1), grid_size, order, grid_range)
    assert bases.shape == (len(unit), 1, grid_size + order)
    assert torch.all(bases >= -1e-12)
    torch.testing.assert_close(bases.sum(-1), torch.ones(len(unit), 1, dtype=torch.float64))


@given(grid=grids, data=st.data())
@settings(max_examples=40, deadline=None)
def test_bases_match_the_scalar_cox_de_boor_reference(grid, data):
    grid_size, order, grid_range = grid
    # also outside the range and outside the extended grid, where bases fall to zero
    reach = grid_range * (1 + 2 * (order + 1) / grid_size)
    xs = data.draw(st.lists(st.floats(-reach, reach), min_size=1, max_size=12))
    got = bspline_bases(
        torch.tensor(xs, dtype=torch.float64)[:, None], grid_size, order, grid_range
    )
    expected = torch.tensor(
        [naive_bases(x, grid_size, order, grid_range) for x in xs], dtype=torch.float64
    )
    torch.testing.assert_close(got[:, 0], expected, atol=1e-12, rtol=0)


def test_bases_in_float32_agree_with_float64():
    x = torch.linspace(-1.2, 1.2, 999, dtype=torch.float64)[:, None]
    exact = bspline_bases(x, 10, 3, 1.0)
    single = bspline_bases(x.float(), 10, 3, 1.0)
    assert float((single.double() - exact).abs().max()) < 1e-5


@pytest.mark.parametrize("reach", [0.9, 2.0])  # inside the range; also beyond the grid
def test_bases_are_differentiable_in_the_input(reach):
    x = ((torch.rand(7, 3, dtype=torch.float64) * 2 - 1) * reach).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: bspline_bases(v, 6, 3, 1.0), (x,))


def test_layer_is_silu_base_plus_scaled_spline_path():
    layer = KANLinear(3, 2, grid_size=5, spline_order=3, grid_range=1.0).double()
    x = torch.rand(4, 3, dtype=torch.float64) * 2 - 1
    bases = bspline_bases(x, 5, 3, 1.0)  # (4, 3, 8)
    spline = torch.einsum("nij,oij,oi->no", bases, layer.spline_weight, layer.spline_scaler)
    base = torch.nn.functional.silu(x) @ layer.base_weight.T
    torch.testing.assert_close(layer(x), base + spline)


@pytest.mark.parametrize(
    "layers,width,grid_size,input_grid,order",
    [(1, 4, 3, 3, 1), (3, 16, 8, 64, 3), (2, 7, 12, 5, 2)],
)
def test_parameter_count(layers, width, grid_size, input_grid, order):
    spec = KanSpec(
        2,
        3,
        layers=layers,
        width=width,
        grid_size=grid_size,
        input_grid_size=input_grid,
        spline_order=order,
    )
    # per edge: G + k coefficients, one base weight, one scaler; the input layer has its own G
    hidden_edges = (layers - 1) * width * width + width * 3
    expected = 2 * width * (input_grid + order + 2) + hidden_edges * (grid_size + order + 2)
    assert spec.num_params() == expected
    model = spec.build()
    assert sum(p.numel() for p in model.parameters()) == spec.num_params()
    shapes = [shape for _, shape in spec.tensor_shapes()]
    assert [tuple(t.shape) for t in model.coded_tensors()] == shapes
    assert len(shapes) == 3 * (layers + 1)  # base, spline and scaler of every layer, apart


def test_gradients_reach_every_coded_tensor():
    torch.manual_seed(1)
    model = KanSpec(2, 3, layers=2, width=5, grid_size=4).build()
    coords = torch.rand(64, 2) * 2 - 1
    autograd_step(model, coords, torch.rand(64, 3))
    for (name, _), tensor in zip(model.spec.tensor_shapes(), model.coded_tensors(), strict=True):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0, name


def test_hidden_activations_stay_inside_the_grid():
    model = KanSpec(2, 3, layers=3, width=8, grid_range=1.5).build()
    with torch.no_grad():
        for layer in model.layers:
            layer.spline_weight.mul_(100)  # provoke huge pre-activations
        seen = []
        hooks = [
            layer.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
            for layer in model.layers
        ]
        model(torch.rand(256, 2) * 2 - 1)
    for hook in hooks:
        hook.remove()
    for hidden in seen[1:]:
        assert float(hidden.abs().max()) <= 1.5


def test_output_starts_at_the_signal_mean():
    model = KanSpec(2, 3).build()
    mean = torch.tensor([0.2, 0.5, 0.9])
    model.init_output(mean)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    output = model(torch.stack([ys, xs], -1).reshape(-1, 2)).mean(0)
    torch.testing.assert_close(output, mean, atol=2e-3, rtol=0)


def test_chunked_step_gives_the_whole_batch_gradient():
    torch.manual_seed(2)
    model = KanSpec(2, 3, layers=2, width=6, grid_size=5).build().double()
    coords = torch.rand(103, 2, dtype=torch.float64) * 2 - 1
    targets = torch.rand(103, 3, dtype=torch.float64)
    weights = torch.rand(103, dtype=torch.float64) + 0.5
    whole_err = autograd_step(model, coords, targets, weights)
    whole = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    parts_err = ChunkedAutogradStep(chunk=20)(model, coords, targets, weights)
    torch.testing.assert_close(parts_err, whole_err)
    for grad, param in zip(whole, model.parameters(), strict=True):
        torch.testing.assert_close(param.grad, grad)


def test_kan_chunk_bounds_activation_memory():
    small = KanSpec(2, 3, layers=3, width=16, grid_size=8).train_chunk()
    large = KanSpec(2, 3, layers=3, width=64, grid_size=64).train_chunk()
    assert large < small
    assert KanSpec(2, 3).train_chunk() >= 1
    # the CPU step for KAN is chunked autograd at the spec's memory-sized chunk
    step = select_step(KanSpec(2, 3, width=64, grid_size=64).build(), torch.device("cpu"))
    assert isinstance(step, ChunkedAutogradStep) and step.chunk == large


def test_spec_survives_the_header():
    spec = KanSpec(
        2, 3, layers=3, width=13, grid_size=21, input_grid_size=300, spline_order=2, grid_range=1.25
    )
    assert spec_class(2) is KanSpec and spec_class_by_name("kan") is KanSpec
    info = ImageInfo(height=5, width=6, channels=3)
    coding = bitstream.TensorCoding(0, kancoin.entropy.EntropyParams(0, 0, 0))
    tensors = (coding,) * len(spec.tensor_shapes())
    header = bitstream.Header(info, spec, 1, tensors, psnr=31.5)
    data = bitstream.write(header, b"")
    parsed, _ = bitstream.read(data)
    assert parsed.spec == spec
    assert rate.header_bits(spec, info) == 8 * len(data)


def test_rate_plan_keeps_kan_shallow():
    info = ImageInfo(height=512, width=768, channels=3)
    budget = 0.3 * info.samples
    spec = rate.plan(
        KanSpec(2, 3), info, budget, max_layers=8, bits_per_param=KanSpec.bits_per_param
    )
    assert spec.layers == KanSpec.plan_max_layers
    assert rate.expected_bits(spec, info, KanSpec.bits_per_param) <= budget
    wider = spec.replace(width=spec.width + 1)
    assert rate.expected_bits(wider, info, KanSpec.bits_per_param) > budget


def test_kan_round_trip_through_the_codec():
    image = smooth_image(16, 24)
    bpp = 40.0
    result = kancoin.encode(image, bpp=bpp, model="kan", steps=40, preset="fast")
    assert result.header.spec.name == "kan"
    assert 8 * len(result.data) <= bpp * 16 * 24
    decoded = kancoin.decode(result.data)
    measured = psnr(original=image, reconstruction=to_uint8(decoded).astype(np.float32) / 255)
    assert measured == pytest.approx(result.psnr, abs=1e-9)
    flat = np.broadcast_to(image.mean(axis=(0, 1)), image.shape)
    assert result.psnr > psnr(original=image, reconstruction=flat) + 1  # it learnt something
    assert kancoin.decode(result.data, scale=2).shape == (32, 48, 3)


def test_cli_encodes_and_decodes_kan(capsys, image_file):
    source = image_file(16, 24)
    argv = ["encode", str(source), "--model", "kan", "--bpp", "40", "--steps", "5", "--json"]
    assert main([*argv, "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"].startswith("kan ") and summary["bpp"] <= 40
    inr = source.with_suffix(".inr")
    assert main(["info", str(inr), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_id"] == 2 and len(info["tensors"]) % 3 == 0
    decoded = source.with_name("x2.png")
    assert main(["decode", str(inr), "-o", str(decoded), "--scale", "2", "-q"]) == 0
    assert Image.open(decoded).size == (48, 32)
