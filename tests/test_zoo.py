"""The model zoo's own pieces: bases, encodings and activations as docs/FORMAT.md defines them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kancoin.bitstream import Header, ImageInfo, TensorCoding, header_bytes, read, write
from kancoin.entropy import EntropyParams, Family
from kancoin.models import MODEL_SPECS
from kancoin.models.kan_bases import ChebyshevKanSpec, FourierKanSpec, RbfKanSpec
from kancoin.models.nets.encodings import gaussian_matrix, octave_scales, positional
from kancoin.models.nets.finer import variable_periodic
from kancoin.models.nets.kan_bases import chebyshev_bases, fourier_bases, rbf_bases
from kancoin.models.relu import FfnSpec, ReluPeSpec


def test_model_ids_and_names_are_unique_and_the_zoo_is_registered():
    names = [spec.name for spec in MODEL_SPECS.values()]
    assert len(set(names)) == len(names)
    for name in ("wire", "finer", "relu", "relu-pe", "ffn", "kan-cheby", "kan-rbf", "kan-fourier"):
        assert name in names
    assert all(spec.model_id == key for key, spec in MODEL_SPECS.items())


def test_chebyshev_bases_are_cos_j_arccos():
    x = torch.linspace(-0.99, 0.99, 201, dtype=torch.float64)
    values = chebyshev_bases(x.unsqueeze(-1), 12, 1.0)[:, 0]
    expected = torch.stack([torch.cos(j * torch.arccos(x)) for j in range(13)], dim=-1)
    assert values.shape == (201, 13)
    assert torch.allclose(values, expected, atol=1e-10)
    outside = chebyshev_bases(torch.tensor([[3.0]]), 4, 2.0)[0, 0]  # clamped to t = 1
    assert torch.allclose(outside, torch.ones(5))


def test_fourier_and_rbf_bases_follow_the_format():
    x = torch.tensor([[0.25]], dtype=torch.float64)
    fourier = fourier_bases(x, 3, 0.5)[0, 0]
    k = torch.arange(1, 4, dtype=torch.float64)
    expected = torch.cat([torch.ones(1), torch.cos(k * math.pi / 2), torch.sin(k * math.pi / 2)])
    assert torch.allclose(fourier, expected.double())
    rbf = rbf_bases(torch.tensor([[0.0]], dtype=torch.float64), 5, 1.0)[0, 0]
    centres = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=torch.float64)
    assert torch.allclose(rbf, torch.exp(-(((0.0 - centres) / 0.5) ** 2)))


@pytest.mark.parametrize("spec_cls", [ChebyshevKanSpec, RbfKanSpec, FourierKanSpec])
def test_kan_bases_start_at_the_signal_mean(spec_cls):
    torch.manual_seed(0)
    model = spec_cls(in_features=2, out_features=3, layers=2, width=8).build()
    mean = torch.tensor([0.2, 0.5, 0.7])
    model.init_output(mean)
    axis = torch.linspace(-1, 1, 17)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        assert torch.allclose(model(grid).mean(0), mean, atol=1e-4)


def test_random_fourier_matrix_is_the_documented_pcg64_box_muller():
    matrix = gaussian_matrix(3, 2, 2.5, seed=7)
    raw = np.random.PCG64(7).random_raw(12)
    a = ((raw[0::2] >> np.uint64(11)).astype(np.float64) + 1) / 2**53
    b = (raw[1::2] >> np.uint64(11)).astype(np.float64) / 2**53
    normal = np.sqrt(-2 * np.log(a)) * np.cos(2 * np.pi * b)
    assert np.array_equal(matrix.numpy(), (2.5 * normal).reshape(3, 2).astype(np.float32))
    big = gaussian_matrix(200, 50, 1.0, seed=1).double()
    assert abs(float(big.mean())) < 0.03 and abs(float(big.std()) - 1) < 0.03
    assert not torch.equal(gaussian_matrix(3, 2, 2.5, seed=8), matrix)


def test_ffn_is_rebuilt_from_its_header_with_the_same_matrix():
    spec = FfnSpec(in_features=2, out_features=3, layers=2, width=8, sigma=3.5, seed=1234)
    info = ImageInfo(height=4, width=4, channels=3)
    coding = TensorCoding(0, EntropyParams(Family.UNIFORM, 0, 0))
    header = Header(info, spec, 1, (coding,) * len(spec.tensor_shapes()), psnr=None)
    parsed, _ = read(write(header, b""))
    assert parsed.spec == spec
    assert len(header_bytes(header)) == len(header_bytes(parsed))
    assert torch.equal(spec.build().matrix, parsed.spec.build().matrix)


def test_encodings_scale_with_the_signal_first_frequency():
    ffn = FfnSpec(in_features=1, out_features=1)
    assert ffn.for_first_frequency(300.0).sigma == pytest.approx(50.0)
    pe = ReluPeSpec(in_features=1, out_features=1)
    assert pe.for_first_frequency(30.0).octaves == 8
    assert pe.for_first_frequency(240.0).octaves == 11
    assert pe.for_first_frequency(1e6).octaves == 15  # the field's range


def test_relu_pe_reads_the_positional_encoding():
    coords = torch.tensor([[0.5, -0.25]])
    encoded = positional(coords, octave_scales(2))
    assert encoded.shape == (1, 2 * (1 + 2 * 2))
    assert torch.allclose(encoded[0, 2], torch.sin(torch.tensor(math.pi * 0.5)))


def test_finer_activation_and_its_gradient():
    z = torch.tensor([0.3, -0.7], requires_grad=True)
    y = variable_periodic(z, 30.0)
    assert torch.allclose(y, torch.sin(30 * (z.abs() + 1) * z))
    y.sum().backward()
    scale = z.detach().abs() + 1  # not differentiated (FINER's code)
    assert torch.allclose(z.grad, 30 * scale * torch.cos(30 * scale * z.detach()))


def test_rd_help_lists_every_family_as_a_codec():
    from click.testing import CliRunner

    from kancoin.cli import cli

    result = CliRunner().invoke(cli, ["rd", "--help"], terminal_width=400)
    assert result.exit_code == 0
    listed = " ".join(result.output.split())
    for spec in MODEL_SPECS.values():
        assert f" {spec.name}," in listed
