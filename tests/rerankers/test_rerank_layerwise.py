"""Layer cutoffs: native MiniCPM heads, the logit lens for other causal LMs, and the one-pass sweep."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from flagdemo.errors import InvalidInputError, LayerOutOfRangeError, MissingModelFilesError, ModelLoadError
from flagdemo.models.records import LayerSweepResult
from flagdemo.models.rerankers import layer_sweep
from flagdemo.models.rerankers.minicpm import LayerWiseMiniCPM


def test_minicpm_loads_into_flagdemos_own_module_without_remote_code(minicpm, tiny_path):
    assert isinstance(minicpm.model, LayerWiseMiniCPM)
    assert not list(Path(tiny_path("minicpm-layerwise")).glob("*.py"))  # no modelling code to trust
    assert minicpm.method == "native-head"
    assert minicpm.num_layers == 6
    assert minicpm.valid_layers == [2, 3, 4, 5, 6]  # start_layer … num_hidden_layers


def test_one_list_per_layer_ascending_and_flattened_for_one(minicpm, pairs):
    several = minicpm.compute_score(pairs, cutoff_layers=[6, 2, 4])
    assert len(several) == 3 and all(len(scores) == len(pairs) for scores in several)
    singles = [minicpm.compute_score(pairs, cutoff_layers=[layer]) for layer in (2, 4, 6)]
    assert all(isinstance(score, float) for score in singles[0])
    for got, expected in zip(several, singles, strict=True):
        assert got == pytest.approx(expected, abs=1e-6)
    assert minicpm.compute_score(pairs) == pytest.approx(singles[2], abs=1e-6)  # default: the last layer
    assert minicpm.compute_score(pairs, cutoff_layers=4) == pytest.approx(singles[1], abs=1e-6)


def test_layers_outside_the_range_are_refused_naming_the_range(minicpm, pairs):
    with pytest.raises(LayerOutOfRangeError, match="1 is outside the valid range 2–6"):
        minicpm.compute_score(pairs, cutoff_layers=[1, 4])
    with pytest.raises(LayerOutOfRangeError, match="7, 9 are outside"):
        minicpm.compute_score(pairs, cutoff_layers=[9, 7])
    with pytest.raises(InvalidInputError, match="whole numbers"):
        minicpm.compute_score(pairs, cutoff_layers=[2.5])


def test_detailed_result_names_the_layer_and_method(minicpm, pairs):
    result = minicpm.compute_score_detailed(pairs, cutoff_layers=[3])
    assert result.layer == 3 and result.method == "native-head"
    assert result.scores == pytest.approx(minicpm.compute_score(pairs, cutoff_layers=3), abs=1e-6)
    with pytest.raises(InvalidInputError, match="layer_sweep"):
        minicpm.compute_score_detailed(pairs, cutoff_layers=[2, 3])


def _copy_checkpoint(tiny_path, tmp_path):
    folder = tmp_path / "minicpm"
    shutil.copytree(tiny_path("minicpm-layerwise"), folder)
    return folder, load_file(folder / "model.safetensors")


def test_a_checkpoint_missing_a_head_fails_clearly(tiny_path, tmp_path, make_layerwise):
    folder, tensors = _copy_checkpoint(tiny_path, tmp_path)
    del tensors["lm_head.3.linear_head.weight"]
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(MissingModelFilesError, match=r"lacks 1 weights.*lm_head\.3"):
        make_layerwise(str(folder))


def test_a_checkpoint_with_unknown_weights_fails_clearly(tiny_path, tmp_path, make_layerwise):
    folder, tensors = _copy_checkpoint(tiny_path, tmp_path)
    tensors["model.extra.weight"] = torch.zeros(2)
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"does not use.*model\.extra\.weight"):
        make_layerwise(str(folder))


@pytest.mark.parametrize(("lens", "llm"), [("llama_lens", "llama_llm"), ("llama_left_lens", "llama_left_llm")])
def test_lens_at_the_last_layer_equals_flagllmreranker(request, lens, llm, pairs):
    lens, llm = request.getfixturevalue(lens), request.getfixturevalue(llm)
    last = lens.num_layers
    assert lens.method == "logit-lens" and lens.valid_layers == list(range(0, last + 1))
    assert lens.compute_score(pairs, cutoff_layers=last) == pytest.approx(llm.compute_score(pairs), abs=1e-5)
    assert lens.compute_score(pairs) == pytest.approx(llm.compute_score(pairs), abs=1e-5)


def test_lens_layers_come_from_one_pass_and_match_separate_passes(llama_lens, pairs):
    layers = [0, 2, llama_lens.num_layers]
    together = np.array(llama_lens.compute_score(pairs, cutoff_layers=layers))
    alone = np.array([llama_lens.compute_score(pairs, cutoff_layers=[layer]) for layer in layers])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    assert not np.allclose(together[0], together[2])


def _count_layer_calls(layers_module):
    counts = [0] * len(layers_module)
    handles = [
        layer.register_forward_hook(lambda *_, index=index: counts.__setitem__(index, counts[index] + 1))
        for index, layer in enumerate(layers_module)
    ]
    return counts, handles


@pytest.mark.parametrize("fixture", ["llama_lens", "llama_llm", "minicpm"])
def test_the_sweep_runs_each_decoder_layer_once(request, fixture, pairs):
    reranker = request.getfixturevalue(fixture)
    decoder = reranker.model.model.layers
    layer_sweep(reranker, pairs[:1])  # one-time set-up (FlagLLMReranker's lens self-check) stays out of the count
    counts, handles = _count_layer_calls(decoder)
    try:
        sweep = layer_sweep(reranker, pairs, batch_size=len(pairs))
        assert counts == [1] * len(decoder)  # every layer exactly once for every requested layer
        counts[:] = [0] * len(decoder)
        low = reranker.valid_layers[0]
        layer_sweep(reranker, pairs, layers=[low, low + 1], batch_size=len(pairs))
        assert counts == [1] * (low + 1) + [0] * (len(decoder) - low - 1)  # the pass stops at the highest layer
    finally:
        for handle in handles:
            handle.remove()
    assert isinstance(sweep, LayerSweepResult)
    assert sweep.layers == reranker.valid_layers
    assert sweep.scores.shape == (len(sweep.layers), len(pairs))
    assert sweep.method == ("native-head" if fixture == "minicpm" else "logit-lens")
    assert all(b >= a for a, b in zip(sweep.cumulative_seconds, sweep.cumulative_seconds[1:], strict=False))
    assert 0 < sweep.cumulative_seconds[-1] <= sweep.seconds


def test_sweep_rows_equal_compute_score_per_layer(minicpm, llama_lens, pairs):
    for reranker in (minicpm, llama_lens):
        sweep = layer_sweep(reranker, pairs)
        for row, layer in zip(sweep.scores, sweep.layers, strict=True):
            assert row.tolist() == pytest.approx(reranker.compute_score(pairs, cutoff_layers=layer), abs=1e-5)


def test_sweep_over_a_range_and_its_errors(llama_lens, bert_ce, pairs):
    sweep = layer_sweep(llama_lens, pairs, layers=range(1, 3))
    assert sweep.layers == [1, 2]
    last = llama_lens.num_layers
    with pytest.raises(LayerOutOfRangeError, match=f"valid range 0–{last}"):
        layer_sweep(llama_lens, pairs, layers=[last + 1])
    with pytest.raises(InvalidInputError, match="cross-encoders"):
        layer_sweep(bert_ce, pairs)


def test_an_engine_in_bf16_runs_its_llm_rerankers_in_bf16_and_its_cross_encoder_in_fp32(tiny_engine, pairs):
    """The BGE set's llm_precision: FlagEmbedding's use_bf16=True for the decoders only, and refused by name when
    it is not a precision the rerankers have."""
    import dataclasses

    from flagdemo.models.rerankers import LayerWiseFlagLLMReranker

    bf16 = dataclasses.replace(tiny_engine, llm_precision="bf16")
    layerwise = bf16.access.load_reranker(bf16.layerwise_reranker)
    assert next(layerwise.model.parameters()).dtype == torch.bfloat16
    reference = LayerWiseFlagLLMReranker(bf16.layerwise_reranker, use_bf16=True, devices="cpu")
    assert layerwise.compute_score(pairs, cutoff_layers=[4]) == reference.compute_score(pairs, cutoff_layers=[4])
    llm = bf16.access.load_reranker(bf16.llm_reranker)
    assert next(llm.model.parameters()).dtype == torch.bfloat16
    cross = bf16.access.load_reranker(bf16.cross_encoder)
    assert next(cross.model.parameters()).dtype == torch.float32
    fp32 = tiny_engine.access.load_reranker(tiny_engine.layerwise_reranker)
    assert next(fp32.model.parameters()).dtype == torch.float32
    with pytest.raises(InvalidInputError, match="llm_precision must be one of fp32, bf16, bf16-weights, not 'fp16'"):
        dataclasses.replace(tiny_engine, llm_precision="fp16").access.load_reranker(tiny_engine.layerwise_reranker)


@pytest.mark.parametrize("model", ["minicpm-layerwise", "llama-decoder"])
def test_bf16_weights_computed_in_fp32_give_the_fp32_scores_exactly(tiny_path, tmp_path, pairs, model):
    """bf16-weights holds a bf16 checkpoint as is and widens each weight as it is used: on a checkpoint published
    in bf16 (as MiniCPM-layerwise is) that is the fp32 model, so the scores are equal to the last bit; bf16
    arithmetic (FlagEmbedding's use_bf16=True) is not."""
    from flagdemo.models.backends.widened import WidenedEmbedding, WidenedLinear
    from flagdemo.models.cache import MODEL_CACHE
    from flagdemo.models.rerankers import FlagLLMReranker, LayerWiseFlagLLMReranker

    folder = tmp_path / model
    shutil.copytree(tiny_path(model), folder)
    for weights in folder.glob("*.safetensors"):  # published in bf16, as the real checkpoint is
        save_file({k: v.to(torch.bfloat16) for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})
    reranker_class = LayerWiseFlagLLMReranker if model == "minicpm-layerwise" else FlagLLMReranker
    layer = {"cutoff_layers": [4]} if model == "minicpm-layerwise" else {}
    fp32 = reranker_class(str(folder), use_bf16=False, use_fp16=False, devices="cpu")
    widened = reranker_class(str(folder), use_bf16=True, fp32_arithmetic=True, devices="cpu")
    bf16 = reranker_class(str(folder), use_bf16=True, devices="cpu")
    assert widened.model is not bf16.model  # cached apart: one computes in fp32, the other in bf16
    kinds = {type(module) for module in widened.model.modules()}
    assert WidenedLinear in kinds and WidenedEmbedding in kinds and torch.nn.Linear not in kinds
    assert {p.dtype for p in widened.model.parameters() if p.dim() == 2} == {torch.bfloat16}
    expected = fp32.compute_score(pairs, **layer)
    assert widened.compute_score(pairs, **layer) == expected
    assert bf16.compute_score(pairs, **layer) != expected
    described = [entry.describe for entry in MODEL_CACHE.entries() if str(folder) in str(entry.key)]
    assert any("bfloat16 weights, float32 arithmetic" in text for text in described), described


def test_fp32_arithmetic_needs_bf16_weights(tiny_path):
    from flagdemo.models.rerankers import FlagLLMReranker

    with pytest.raises(InvalidInputError, match="it needs use_bf16=True"):
        FlagLLMReranker(tiny_path("llama-decoder"), fp32_arithmetic=True, devices="cpu")
