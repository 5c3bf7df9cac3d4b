"""The approximate CPU modes keep what they promise on the real MiniLM and the labelled set (no timings here)."""

from __future__ import annotations

import numpy as np
import pytest

from flagdemo.datasets import load_retrieval_set
from flagdemo.embedders import FlagModel
from flagdemo.errors import InvalidInputError
from flagdemo.fastpath import (
    PRECISIONS,
    check_precision,
    default_precision,
    is_approximate,
    quantised,
    recommended_precision,
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


def test_recommended_precision_is_an_approximate_mode():
    assert recommended_precision() in ("bf16", "int8")


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
    import torch

    first, second = quantised(minilm.model), quantised(minilm.model)
    assert first is second and first is not minilm.model
    dynamic = [name for name, module in first.named_modules() if "quantized.dynamic" in type(module).__module__]
    assert "encoder.layer.0.attention.self.query" in dynamic and "encoder.layer.5.intermediate.dense" in dynamic
    down = first.get_submodule("encoder.layer.0.output.dense")
    assert type(down) is torch.nn.Linear and down.weight.dtype == torch.float32


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


def test_int8_stays_close_and_keeps_most_of_the_top10(embeddings):
    """int8 is the coarse mode (documented): cosine ≥ 0.95, ≥ 9 of each query's fp32 top-10 kept on average."""
    fp32_q, fp32_p = embeddings["fp32"]
    int8_q, int8_p = embeddings["int8"]
    cosines = np.concatenate([(int8_q * fp32_q).sum(axis=1), (int8_p * fp32_p).sum(axis=1)])
    assert cosines.min() >= 0.95
    exact, fast = top10(fp32_q, fp32_p), top10(int8_q, int8_p)
    assert overlaps(exact, fast).mean() >= 9
    assert overlaps(exact, fast).min() >= 7
    assert (exact[:, 0] == fast[:, 0]).mean() >= 0.95
