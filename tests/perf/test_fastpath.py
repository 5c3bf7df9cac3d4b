"""The approximate CPU modes keep what they promise on the real MiniLM and the labelled set (no timings here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.run import ranking_agreement
from flagdemo.analysis.metrics import ndcg_at_k
from flagdemo.data.datasets import load_retrieval_set
from flagdemo.errors import InvalidInputError
from flagdemo.models.backends.precision import (
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
from flagdemo.models.embedders import FlagModel
from flagdemo.models.sources import bundled_minilm_dir


@pytest.fixture(scope="module")
def minilm():
    # The torch fast modes, as benchmarks/run.py measures them (the onnx int8 graph is tested in tests/onnx).
    return FlagModel(str(bundled_minilm_dir()), pooling_method="mean", use_fp16=False, backend="torch")


@pytest.fixture(scope="module")
def labelled_texts():
    retrieval_set = load_retrieval_set()
    return list(retrieval_set.query_texts.values()), list(retrieval_set.passage_texts.values())


@pytest.fixture(scope="module")
def embeddings(minilm, labelled_texts):
    """(queries, passages) embeddings of the whole labelled set in every precision."""
    queries, passages = labelled_texts
    modes = {precision: with_precision(minilm, precision) for precision in PRECISIONS}
    on_onnx = FlagModel(str(bundled_minilm_dir()), pooling_method="mean", use_fp16=False, backend="onnx")
    modes["onnx int8"] = with_precision(on_onnx, "int8")
    return {precision: (model.encode(queries), model.encode(passages)) for precision, model in modes.items()}


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
    # the same peaks seen from the other side: the output of the LayerNorm that feeds this Linear layer
    seen = []
    feeding = minilm.model.get_submodule("encoder.layer.2.attention.output")
    handle = feeding.register_forward_hook(lambda module, args, output: seen.append(output.abs().amax(dim=(0, 1))))
    try:
        minilm.encode(calibration_texts())
    finally:
        handle.remove()
    assert peaks.shape == (384,)
    torch.testing.assert_close(peaks, torch.stack(seen).amax(dim=0).float(), rtol=0, atol=0)
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


# What every fast mode keeps on any CPU (AMD with AVX2, Intel with AVX-512 / VNNI / AMX, Arm): floors set well
# outside the spread measured between CPUs, on the labelled set (48 queries, 321 passages). Measured worst cosines:
# bf16 0.99996-0.99997; torch int8 0.9978-0.9980 with 8-bit activations (VNNI), 0.9933-0.9940 with 7-bit (no VNNI);
# onnx int8 0.99868. Largest score change: bf16 0.0024, torch int8 0.031 (7-bit), onnx int8 0.014. Mean nDCG@10
# moved by at most 0.006 and the mean top-10 overlap stayed at or above 9.7. Each floor leaves about twice the
# measured worst change (1 - cosine, the score change, the nDCG change) as margin; the per-CPU counts of identical
# top-10 sets and orders are benchmark figures (benchmarks/run.py, docs/performance.md's rows name their CPU).
FLOORS = {
    "bf16": {"min_cosine": 0.9999, "mean_cosine": 0.99995, "max_score_shift": 0.005, "mean_topk_overlap": 9.5,
             "ndcg_change": 0.01},
    "int8": {"min_cosine": 0.985, "mean_cosine": 0.996, "max_score_shift": 0.06, "mean_topk_overlap": 9.0,
             "ndcg_change": 0.02},
    "onnx int8": {"min_cosine": 0.997, "mean_cosine": 0.9985, "max_score_shift": 0.03, "mean_topk_overlap": 9.0,
                  "ndcg_change": 0.02},
}  # fmt: skip


def mean_ndcg_at_10(vectors: tuple[np.ndarray, np.ndarray]) -> float:
    retrieval_set = load_retrieval_set()
    query_ids, passage_ids = list(retrieval_set.query_texts), list(retrieval_set.passage_texts)
    scores = vectors[0] @ vectors[1].T
    judgements = retrieval_set.judgements
    return float(np.mean([
        ndcg_at_k([passage_ids[j] for j in np.argsort(-row, kind="stable")[:10]], judgements[query_id], 10)
        for query_id, row in zip(query_ids, scores, strict=True)
    ]))  # fmt: skip


@pytest.mark.parametrize("mode", list(FLOORS))
def test_fast_mode_stays_within_its_floors_on_every_cpu(embeddings, mode):
    agreement = ranking_agreement(embeddings["fp32"], embeddings[mode])
    floors = FLOORS[mode]
    assert agreement["queries"] == 48
    assert agreement["min_cosine"] >= floors["min_cosine"], agreement
    assert agreement["mean_cosine"] >= floors["mean_cosine"], agreement
    assert agreement["max_score_shift"] <= floors["max_score_shift"], agreement
    assert agreement["mean_topk_overlap"] >= floors["mean_topk_overlap"], agreement
    change = abs(mean_ndcg_at_10(embeddings[mode]) - mean_ndcg_at_10(embeddings["fp32"]))
    assert change <= floors["ndcg_change"], f"mean nDCG@10 moved by {change:.4f}"


def test_the_performance_page_states_the_floors_the_tests_hold():
    readme = (Path(__file__).parents[2] / "docs" / "performance.md").read_text(encoding="utf-8")
    for mode, floors in FLOORS.items():
        assert (
            f"| {mode} | {floors['min_cosine']} | {floors['mean_cosine']} | {floors['max_score_shift']} | "
            f"{floors['mean_topk_overlap']} | {floors['ndcg_change']} |"
        ) in readme, mode
