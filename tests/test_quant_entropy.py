import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kancoin import entropy
from kancoin.entropy import EntropyParams, Family
from kancoin.errors import FormatError
from kancoin.quant import dequantize, index_for_bits, quantize, step_size

floats = hnp.arrays(
    np.float32,
    st.integers(1, 300),
    elements=st.floats(-4, 4, width=32, allow_nan=False),
)


@given(values=floats, bits=st.integers(2, 16))
@settings(max_examples=60, deadline=None)
def test_index_for_bits_fits_the_depth_and_bounds_the_error(values, bits):
    index = index_for_bits(values, bits)
    ints = quantize(values, index)
    assert np.abs(ints).max() <= (1 << (bits - 1)) - 1
    error = np.abs(dequantize(ints, index) - values).max()
    assert error <= step_size(index) / 2 + 1e-6


def test_dequantize_is_exact_multiple_of_step():
    ints = np.array([-3, 0, 7], np.int32)
    assert np.array_equal(dequantize(ints, -32), np.float32(ints * 0.25))


def test_quantize_accepts_tensors():
    t = torch.tensor([0.5, -0.26])
    assert quantize(t, -16).tolist() == [1, -1]


int_arrays = hnp.arrays(np.int32, st.integers(0, 400), elements=st.integers(-3000, 3000))


@given(ints=int_arrays)
@settings(max_examples=80, deadline=None)
def test_entropy_round_trip_is_exact(ints):
    params, _ = entropy.choose_params(ints)
    payload = entropy.encode([(ints, params)])
    assert len(payload) % 4 == 0
    (decoded,) = entropy.decode(payload, [(ints.size, params)])
    assert np.array_equal(decoded, ints)


@given(groups=st.lists(int_arrays, min_size=1, max_size=5))
@settings(max_examples=40, deadline=None)
def test_several_tensors_share_one_stream(groups):
    coded = [(g, entropy.choose_params(g)[0]) for g in groups]
    decoded = entropy.decode(entropy.encode(coded), [(g.size, p) for g, p in coded])
    for original, back in zip(groups, decoded, strict=True):
        assert np.array_equal(original, back)


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.laplace(0, 4, 4000),
        lambda rng: rng.normal(0, 30, 4000),
        lambda rng: rng.uniform(-100, 100, 4000),
    ],
)
def test_estimate_matches_real_size_and_beats_raw(make):
    ints = np.rint(make(np.random.default_rng(1))).astype(np.int32)
    params, estimate = entropy.choose_params(ints)
    real_bits = 8 * len(entropy.encode([(ints, params)]))
    assert estimate <= real_bits <= estimate + 64
    raw_bits = ints.size * (int(np.abs(ints).max()).bit_length() + 1)
    assert real_bits <= raw_bits


def test_peaked_data_picks_a_parametric_family():
    ints = np.rint(np.random.default_rng(2).laplace(0, 2, 5000)).astype(np.int32)
    params, _ = entropy.choose_params(ints)
    assert params.family in (Family.LAPLACE, Family.GAUSSIAN)


def test_all_zero_tensor_costs_nothing():
    zeros = np.zeros(50, np.int32)
    params, bits = entropy.choose_params(zeros)
    assert params.max_abs == 0 and bits == 0
    assert entropy.encode([(zeros, params)]) == b""


def test_odd_payload_length_is_a_format_error():
    with pytest.raises(FormatError):
        entropy.decode(b"abc", [(3, EntropyParams(Family.UNIFORM, 0, 5))])
