"""JSON encoding of FlagEmbedding results and arguments, and the recursive comparison the parity test uses.

Shared by golden/make_golden.py (golden env, transformers 4.x) and tests/golden/test_golden_parity.py (transformers
5.x), so it depends on numpy and torch only. Floats are written with repr (exact round trip); numpy arrays, numpy
scalars and torch tensors keep their dtype and shape, so the replay checks types and shapes as well as values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

NDARRAY, TENSOR, NPSCALAR = "__ndarray__", "__tensor__", "__npscalar__"
MARKERS = (NDARRAY, TENSOR, NPSCALAR)


def encode(value: Any) -> Any:
    """Turn a result or an argument into JSON-ready data, tagging arrays, tensors and numpy scalars."""
    if isinstance(value, np.ndarray):
        return {NDARRAY: value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        return {
            TENSOR: tensor.tolist(),
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "shape": list(tensor.shape),
        }
    if isinstance(value, np.generic):
        return {NPSCALAR: value.item(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        if any(marker in value for marker in MARKERS):
            raise ValueError(f"a dict key collides with the codec's markers: {sorted(value)}")
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot encode {type(value).__name__} for a golden file")


def decode(value: Any) -> Any:
    """Inverse of encode: rebuild arrays, tensors and numpy scalars with their dtypes."""
    if isinstance(value, dict):
        if NDARRAY in value:
            return np.array(value[NDARRAY], dtype=value["dtype"]).reshape(value["shape"])
        if TENSOR in value:
            return torch.tensor(value[TENSOR], dtype=getattr(torch, value["dtype"])).reshape(value["shape"])
        if NPSCALAR in value:
            return np.dtype(value["dtype"]).type(value[NPSCALAR])
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


@dataclass
class Comparison:
    """What differs between an expected (encoded) value and an actual one."""

    tolerance: float
    problems: list[str] = field(default_factory=list)
    max_abs_diff: float = 0.0
    max_abs_diff_at: str = "<root>"
    n_numbers: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def note_diff(self, path: str, diff: float) -> None:
        if not diff <= self.max_abs_diff:  # also catches nan
            self.max_abs_diff, self.max_abs_diff_at = diff, path
        if not diff <= self.tolerance:
            self.problems.append(f"{path}: max abs diff {diff:.3g} > {self.tolerance:g}")

    def summary(self, limit: int = 12) -> str:
        lines = [f"max abs diff {self.max_abs_diff:.3g} at {self.max_abs_diff_at} over {self.n_numbers} numbers"]
        lines += self.problems[:limit]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more problems")
        return "\n".join(lines)


def _type_name(value: Any) -> str:
    if isinstance(value, np.ndarray | torch.Tensor):
        return f"{type(value).__name__}[{value.dtype}, shape {tuple(value.shape)}]"
    return type(value).__name__


def _compare_array(expected: dict, actual: Any, path: str, out: Comparison, kind: str) -> None:
    array_type = np.ndarray if kind == NDARRAY else torch.Tensor
    if not isinstance(actual, array_type):
        out.problems.append(f"{path}: expected {array_type.__name__}, got {_type_name(actual)}")
        return
    actual_dtype = str(actual.dtype).removeprefix("torch.")
    if actual_dtype != expected["dtype"]:
        out.problems.append(f"{path}: expected dtype {expected['dtype']}, got {actual_dtype}")
    if list(actual.shape) != expected["shape"]:
        out.problems.append(f"{path}: expected shape {tuple(expected['shape'])}, got {tuple(actual.shape)}")
        return
    want = np.asarray(expected[kind], dtype=np.float64).reshape(expected["shape"])
    got = (actual.detach().cpu().double().numpy() if kind == TENSOR else actual).astype(np.float64)
    out.n_numbers += want.size
    if want.size:
        diff = np.abs(want - got)
        worst = np.unravel_index(np.nanargmax(diff) if not np.isnan(diff).all() else 0, diff.shape)
        worst_diff = float(np.nan if np.isnan(diff).any() else diff[worst])
        out.note_diff(f"{path}{list(int(i) for i in worst)}", worst_diff)


def _compare_number(expected: float, actual: float, path: str, out: Comparison) -> None:
    out.n_numbers += 1
    out.note_diff(path, abs(float(expected) - float(actual)))


def compare(
    expected: Any, actual: Any, tolerance: float, path: str = "result", out: Comparison | None = None
) -> Comparison:
    """Compare an encoded expected value with a live actual one: types, shapes, keys, and numbers to `tolerance`."""
    out = out if out is not None else Comparison(tolerance)
    if isinstance(expected, dict) and NDARRAY in expected:
        _compare_array(expected, actual, path, out, NDARRAY)
    elif isinstance(expected, dict) and TENSOR in expected:
        _compare_array(expected, actual, path, out, TENSOR)
    elif isinstance(expected, dict) and NPSCALAR in expected:
        if not isinstance(actual, np.generic) or str(actual.dtype) != expected["dtype"]:
            out.problems.append(f"{path}: expected numpy {expected['dtype']} scalar, got {_type_name(actual)}")
        if isinstance(actual, int | float | np.number):
            _compare_number(expected[NPSCALAR], actual, path, out)
    elif isinstance(expected, dict):
        if not isinstance(actual, dict):
            out.problems.append(f"{path}: expected dict, got {_type_name(actual)}")
            return out
        missing, extra = set(expected) - set(actual), set(actual) - set(expected)
        if missing or extra:
            out.problems.append(f"{path}: keys differ: missing {sorted(missing)[:8]}, unexpected {sorted(extra)[:8]}")
        for key in expected:
            if key in actual:
                compare(expected[key], actual[key], tolerance, f"{path}[{key!r}]", out)
    elif isinstance(expected, list):
        if not isinstance(actual, list):
            out.problems.append(f"{path}: expected list of {len(expected)}, got {_type_name(actual)}")
            return out
        if len(actual) != len(expected):
            out.problems.append(f"{path}: expected {len(expected)} items, got {len(actual)}")
            return out
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            compare(want, got, tolerance, f"{path}[{index}]", out)
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if actual != expected or type(actual) is not type(expected):
            out.problems.append(f"{path}: expected {expected!r}, got {actual!r}")
    elif isinstance(expected, int | float):
        wanted_type = float if isinstance(expected, float) else int
        if not isinstance(actual, wanted_type) or isinstance(actual, bool):
            out.problems.append(f"{path}: expected Python {wanted_type.__name__}, got {_type_name(actual)}")
        if isinstance(actual, int | float | np.number) and not isinstance(actual, bool):
            _compare_number(expected, actual, path, out)
    else:
        out.problems.append(f"{path}: cannot compare expected {type(expected).__name__}")
    return out
