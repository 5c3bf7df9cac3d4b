"""One rule for embedders' weights: fp16-rounded as FlagEmbedding's default, or the checkpoint's fp32, and said."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flagdemo.engine import Engine, shown_name
from flagdemo.errors import InvalidInputError
from flagdemo.models.cache import MODEL_CACHE
from flagdemo.models.embedders.base import default_weights


def test_the_app_default_is_flagembeddings_and_the_environment_can_change_it(monkeypatch):
    monkeypatch.delenv("FLAGDEMO_WEIGHTS", raising=False)
    assert default_weights() == "fp16" and Engine().weights == "fp16"
    monkeypatch.setenv("FLAGDEMO_WEIGHTS", "FP32")
    assert Engine().weights == "fp32"
    monkeypatch.setenv("FLAGDEMO_WEIGHTS", "fp64")
    with pytest.raises(InvalidInputError, match="FLAGDEMO_WEIGHTS must be one of fp16, fp32"):
        Engine()
    with pytest.raises(InvalidInputError, match="weights must be one of fp16, fp32"):
        Engine(weights="half")


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_each_setting_loads_what_it_says_and_the_cache_table_names_it(tiny_dir, backend, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_BACKEND", backend)
    model = str(tiny_dir / "bert-embedder")
    texts = ["a short text", "another, somewhat longer, text about rounding"]
    rounded, full = (Engine(weights=weights).load_embedder(model) for weights in ("fp16", "fp32"))
    assert (rounded.weights_dtype, rounded.dtype) == (torch.float16, torch.float32)
    assert (full.weights_dtype, full.dtype) == (torch.float32, torch.float32)
    assert "rounded to float16 on load" in rounded.weights_note and "checkpoint's own values" in full.weights_note
    difference = np.abs(rounded.encode(texts) - full.encode(texts)).max()
    assert 0 < difference < 1e-2  # rounding the weights moves the vectors, a little
    shown = [shown_name(entry.describe) for entry in MODEL_CACHE.entries() if "bert-embedder" in entry.describe]
    assert any("float16-rounded weights" in name for name in shown), shown
    assert any("float16" not in name for name in shown), shown
