"""The golden codec must round-trip exactly, and its comparison must catch every difference the replay guards."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
import torch
from golden_codec import compare, decode, encode


def _round_trip(value):
    return decode(json.loads(json.dumps(encode(value))))


def test_round_trip_keeps_values_types_dtypes_and_shapes_exactly():
    value = {
        "dense_vecs": np.array([[0.1, -2.5e-8], [3.0, 1 / 3]], dtype=np.float32),
        "lexical_weights": [defaultdict(int, {"17": np.float32(0.123456789)}), {}],
        "colbert": torch.tensor(0.7071067811865476, dtype=torch.float32),
        "scores": [0.1 + 0.2, -1e-300],
        "one": np.float16(0.5),
    }
    back = _round_trip(value)
    assert back["dense_vecs"].dtype == np.float32
    assert back["dense_vecs"].shape == (2, 2)
    assert np.array_equal(back["dense_vecs"], value["dense_vecs"])
    assert back["lexical_weights"][0]["17"] == value["lexical_weights"][0]["17"]
    assert type(back["lexical_weights"][0]["17"]) is np.float32
    assert back["colbert"].dtype == torch.float32
    assert back["colbert"].shape == ()
    assert back["scores"] == [0.1 + 0.2, -1e-300]
    assert type(back["one"]) is np.float16
    assert compare(encode(value), back, 0.0).ok


def test_a_difference_beyond_tolerance_is_reported_with_its_location():
    expected = encode([np.zeros((3, 4), dtype=np.float32)])
    actual = [np.zeros((3, 4), dtype=np.float32)]
    actual[0][2, 1] = 3e-5
    comparison = compare(expected, actual, 1e-5)
    assert not comparison.ok
    assert comparison.max_abs_diff == pytest.approx(3e-5)
    assert comparison.max_abs_diff_at == "result[0][2, 1]"
    actual[0][2, 1] = 5e-6
    assert compare(expected, actual, 1e-5).ok


@pytest.mark.parametrize(
    ("expected", "actual", "message"),
    [
        (np.zeros((2, 3), dtype=np.float32), np.zeros(3, dtype=np.float32), "expected shape (2, 3)"),
        (np.zeros(3, dtype=np.float32), np.zeros(3, dtype=np.float64), "expected dtype float32"),
        (np.zeros(3, dtype=np.float32), torch.zeros(3), "expected ndarray"),
        (torch.zeros(3), np.zeros(3, dtype=np.float32), "expected Tensor"),
        ([0.5], 0.5, "expected list of 1"),
        ([0.5, 0.25], [0.5], "expected 2 items"),
        ([[0.5], [0.25]], [0.5, 0.25], "expected list of 1"),
        (0.5, np.float32(0.5), "expected Python float"),
        (np.float32(0.5), 0.5, "expected numpy float32 scalar"),
        ({"1": 0.5, "2": 0.1}, {"1": 0.5, "3": 0.1}, "keys differ"),
        ({"dense": 0.5}, [0.5], "expected dict"),
        (float("nan"), 0.5, "max abs diff nan"),
    ],
)
def test_type_shape_and_key_differences_fail(expected, actual, message):
    comparison = compare(encode(expected), actual, 1e-5)
    assert not comparison.ok
    assert message in comparison.summary()


def test_nan_in_the_result_fails():
    comparison = compare(encode([0.5]), [float("nan")], 1e-5)
    assert not comparison.ok
