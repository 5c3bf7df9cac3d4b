"""The approximate CPU modes keep what they promise on the real MiniLM and the labelled set (no timings here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flagdemo.datasets import load_retrieval_set
from flagdemo.embedders import FlagModel
from flagdemo.errors import InvalidInputError
from flagdemo.fastpath import (
    PRECISIONS,
    SMOOTHING_ALPHA,
    Int8Linear,
    activation_peaks,
    calibration_texts,
    check_precision,
    default_precision,
    is_approximate,
    quantised,
    smoothing_factors,
    with_precision,
)
from flagdemo.loading import bundled_minilm_dir


@pytest.fixture(scope="module")
def minilm():
    return FlagModel(str(bundled_minilm_dir()), pooling_method="mean", use_fp16=False, batch_size=64)


@pytest.fixture(scope="module")
def labelled_texts():
    retrieval_set = load_retrieval_set()
    return list(retrieval_set.query_texts.values()), list(retrieval_set.passage_texts.values())


@pytest.fixture(scope="module")
def embeddings(minilm, labelled_texts):
    """(queries, passages) embeddings of the whole labelled set in every precision."""
    queries, passages = labelled_texts
    modes = {precision: with_precision(minilm, precision) for precision in PRECISIONS}
    return {precision: (model.encode(queries), model.encode(passages)) for precision, model in modes.items()}


def top10(query_vectors: np.ndarray, passage_vectors: np.ndarray) -> np.ndarray:
    return np.argsort(-(query_vectors @ passage_vectors.T), axis=1, kind="stable")[:, :10]


def test_fp32_is_the_exact_embedder_itself(minilm):
    assert with_precision(minilm, "fp32") is minilm
    assert not is_approximate("fp32")
    assert is_approximate("bf16") and is_approximate("int8")


@pytest.mark.parametrize("bad", ["fp16", "FP32", "", None])
def test_unknown_precision_is_a_clear_error(minilm, bad):
    with pytest.raises(InvalidInputError, match="precision must be one of fp32, bf16, int8"):
        with_precision(minilm, bad)
    with pytest.raises(InvalidInputError):
        check_precision(bad)


def test_default_precision_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("FLAGDEMO_PRECISION", raising=False)
    assert default_precision() == "fp32"
    monkeypatch.setenv("FLAGDEMO_PRECISION", "INT8")
    assert default_precision() == "int8"
    monkeypatch.setenv("FLAGDEMO_PRECISION", "fast")
    with pytest.raises(InvalidInputError, match="FLAGDEMO_PRECISION must be one of"):
        default_precision()


def test_fast_copies_are_labelled_and_leave_the_original_untouched(minilm):
    texts = ["a first sentence", "the second one is a little longer than the first"]
    before = minilm.encode(texts)
    for precision in ("bf16", "int8"):
        fast = with_precision(minilm, precision)
        assert fast is not minilm
        assert fast.precision == precision and fast.approximate is True
        result = fast.encode(texts)
        assert result.dtype == np.float32 and result.shape == before.shape
    assert not hasattr(minilm, "precision")
    np.testing.assert_array_equal(minilm.encode(texts), before)


def test_int8_quantises_once_per_model_and_keeps_down_projections_float(minilm):
    first, second = quantised(minilm), quantised(minilm)
    assert first is second and first is not minilm.model
    int8 = {name for name, module in first.named_modules() if isinstance(module, Int8Linear)}
    assert {"encoder.layer.0.attention.self.query", "encoder.layer.5.intermediate.dense"} <= int8
    down = first.get_submodule("encoder.layer.0.output.dense")
    assert type(down) is torch.nn.Linear and down.weight.dtype == torch.float32
    # The calibration hooks are removed (transformers' own output-capturing hooks, installed by the all-layers
    # export of the onnx backend, may stay).
    hooks = [hook for module in minilm.model.modules() for hook in module._forward_hooks.values()]
    assert not any("activation_peaks" in hook.__qualname__ for hook in hooks)


def test_calibration_finds_the_layernorm_outlier_channels(minilm):
    """The FFN input of every MiniLM layer has a few channels far above the median: those get the most smoothing."""
    name = "encoder.layer.2.intermediate.dense"
    peaks = activation_peaks(minilm, [name], calibration_texts())[name]
    assert peaks.shape == (384,) and (peaks >= 0).all()
    assert peaks.max() > 5 * peaks.median()
    linear = minilm.model.get_submodule(name)
    smoothing = smoothing_factors(peaks, linear.weight)
    assert smoothing.argmax() == peaks.argmax()
    expected = peaks**SMOOTHING_ALPHA / linear.weight.abs().amax(dim=0) ** (1 - SMOOTHING_ALPHA)
    torch.testing.assert_close(smoothing, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduce_range", [False, True])
def test_int8_linear_smoothing_leaves_the_product_unchanged_up_to_rounding(reduce_range):
    """Outlier input channels are the case smoothing exists for: the int8 layer stays within 2% of fp32, several
    times closer than without smoothing."""
    generator = torch.manual_seed(0)
    linear = torch.nn.Linear(64, 128)
    inputs = torch.randn(2, 40, 64, generator=generator)
    inputs[..., 3] *= 30.0  # one LayerNorm-style outlier channel
    smoothing = smoothing_factors(inputs.abs().amax(dim=(0, 1)), linear.weight)
    layer = Int8Linear(linear, smoothing, reduce_range=reduce_range)
    with torch.inference_mode():
        exact, approximate = linear(inputs), layer(inputs)
    assert approximate.shape == exact.shape == (2, 40, 128)
    error = (approximate - exact).norm() / exact.norm()
    assert error < 0.02
    plain = Int8Linear(linear, torch.ones(64), reduce_range=reduce_range)  # without smoothing: coarser
    with torch.inference_mode():
        assert (plain(inputs) - exact).norm() / exact.norm() > 3 * error


def overlaps(exact: np.ndarray, fast: np.ndarray) -> np.ndarray:
    return np.array([len(set(a) & set(b)) for a, b in zip(exact, fast, strict=True)])


def test_bf16_matches_fp32_to_cosine_0999_and_keeps_the_top10(embeddings):
    """Measured: every top-1 kept, ≥ 9 of 10 kept for every query; near-ties (score gaps ~1e-4) may swap places."""
    fp32_q, fp32_p = embeddings["fp32"]
    bf16_q, bf16_p = embeddings["bf16"]
    cosines = np.concatenate([(bf16_q * fp32_q).sum(axis=1), (bf16_p * fp32_p).sum(axis=1)])
    assert cosines.min() >= 0.999
    exact, fast = top10(fp32_q, fp32_p), top10(bf16_q, bf16_p)
    np.testing.assert_array_equal(fast[:, 0], exact[:, 0])
    assert overlaps(exact, fast).min() >= 9
    assert (exact == fast).all(axis=1).mean() >= 0.8


def test_int8_stays_close_and_keeps_the_top1_and_9_of_10(embeddings):
    """Measured: cosine ≥ 0.998 (mean 0.9994), every top-1 and ≥ 9 of each top-10 kept on the labelled set."""
    fp32_q, fp32_p = embeddings["fp32"]
    int8_q, int8_p = embeddings["int8"]
    cosines = np.concatenate([(int8_q * fp32_q).sum(axis=1), (int8_p * fp32_p).sum(axis=1)])
    assert cosines.min() >= 0.997
    assert cosines.mean() >= 0.999
    exact, fast = top10(fp32_q, fp32_p), top10(int8_q, int8_p)
    assert overlaps(exact, fast).min() >= 9
    assert (exact[:, 0] == fast[:, 0]).mean() >= 47 / 48
