from __future__ import annotations

import pytest
import torch

from flagdemo.errors import InvalidInputError
from flagdemo.models.devices import resolve_device, resolve_dtype


def test_auto_device_is_cpu_without_accelerators():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type in (expected, "mps")


@pytest.mark.parametrize(
    ("devices", "expected"),
    [("cpu", "cpu"), (["cpu", "cuda:1"], "cpu"), (("cuda:2", "cpu"), "cuda:2"), (1, "cuda:1"), ([3, 4], "cuda:3")],
)
def test_explicit_devices_use_the_first_entry(devices, expected):
    assert resolve_device(devices) == torch.device(expected)


@pytest.mark.parametrize("devices", [[], "gpu-please", 1.5, True])
def test_bad_devices_are_refused(devices):
    with pytest.raises(InvalidInputError):
        resolve_device(devices)


def test_dtype_precedence_and_cpu_upcast():
    assert resolve_dtype("cpu", use_fp16=True) == torch.float32
    assert resolve_dtype("cpu", use_bf16=True) == torch.float32
    assert resolve_dtype("cuda:0", use_fp16=True) == torch.float16
    assert resolve_dtype("cuda:0", use_fp16=True, use_bf16=True) == torch.bfloat16
    assert resolve_dtype("cuda:0") == torch.float32
