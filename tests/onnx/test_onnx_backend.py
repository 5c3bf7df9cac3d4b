"""The ONNX Runtime backend: the choice of backend, the graph cache (reuse, rebuild, keys) and exactness on the tiny
models. The golden replays (tests/golden) run every encoder case on both backends; these tests cover the rest."""

from __future__ import annotations

import collections
import json

import numpy as np
import onnx
import pytest
import torch

from flagdemo.errors import InvalidInputError
from flagdemo.models.backends import onnx as onnx_backend
from flagdemo.models.backends.precision import with_precision
from flagdemo.models.cache import MODEL_CACHE
from flagdemo.models.embedders import BGEM3FlagModel, FlagAutoModel, FlagLLMModel, FlagModel
from flagdemo.models.rerankers import FlagReranker

TEXTS = ["hello world", "a", "the quick brown fox jumps over the lazy dog " * 4, ""]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh FLAGDEMO_CACHE and no session loaded in this process; returns the folder the graphs go to."""
    monkeypatch.setenv("FLAGDEMO_CACHE", str(tmp_path))
    MODEL_CACHE.clear()
    return tmp_path / "onnx"


@pytest.fixture
def exports(monkeypatch):
    """A list that grows by one per torch.onnx.export call."""
    calls = []
    original = torch.onnx.export

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", counted)
    return calls


def fresh_backbone(tiny_dir, name="bert-embedder"):
    """A new model object each call (no shared cache), so the in-process memo cannot answer for it."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(tiny_dir / name, dtype=torch.float32).eval()


def probe_for(tiny_dir, name="bert-embedder"):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir / name)
    return dict(tokenizer(list(onnx_backend.PROBE_TEXTS), padding=True, return_tensors="pt"))


def test_a_graph_is_exported_once_then_reused_from_disk_and_memory(tiny_dir, cache, exports):
    probe = probe_for(tiny_dir)
    first_model = fresh_backbone(tiny_dir)
    graph, info = onnx_backend.load_graph(first_model, "hidden_states", probe)
    assert (info.source, info.cache_hit, len(exports)) == ("exported", False, 1)
    assert info.export_seconds > 0 and "exported" in info.summary()
    entries = [path for path in cache.iterdir() if not path.name.startswith(".")]
    assert len(entries) == 1
    assert {path.name for path in entries[0].iterdir()} == {"model.onnx", "model.onnx.data", "probe.npz", "meta.json"}

    again, info = onnx_backend.load_graph(first_model, "hidden_states", probe)
    assert again is graph and info.source == "memory" and len(exports) == 1

    _, info = onnx_backend.load_graph(fresh_backbone(tiny_dir), "hidden_states", probe)
    assert (info.source, info.cache_hit, info.rebuilt, len(exports)) == ("disk cache", True, None, 1)
    assert "cached graph loaded" in info.summary()


def _entry(cache):
    (entry,) = [path for path in cache.iterdir() if not path.name.startswith(".")]
    return entry


def _damage_weights(entry):
    data = bytearray((entry / "model.onnx.data").read_bytes())
    data[-8192:] = bytes(8192)  # the last encoder layers' weights (the vocabulary table comes first)
    (entry / "model.onnx.data").write_bytes(bytes(data))


def _rehash(entry):
    """Record the current file hashes, as if the damage had happened before the entry was written."""
    meta = json.loads((entry / "meta.json").read_text())
    meta["files"] = {name: onnx_backend._file_digest(entry / name) for name in meta["files"]}
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_damage_weights, "model.onnx.data is missing or changed"),
        (lambda entry: (entry / "model.onnx").unlink(), "model.onnx is missing or changed"),
        (lambda entry: (entry / "meta.json").write_text("{not json"), "record is missing or unreadable"),
        (lambda entry: (_damage_weights(entry), _rehash(entry)), "differs from the model"),
        (lambda entry: ((entry / "model.onnx").write_bytes(b"garbage"), _rehash(entry)), "could not load it"),
    ],
    ids=["weights-changed", "graph-missing", "record-broken", "stale-but-hashed", "not-a-graph"],
)
def test_a_broken_or_stale_entry_is_rebuilt_never_trusted(tiny_dir, cache, exports, damage, reason):
    probe = probe_for(tiny_dir)
    onnx_backend.load_graph(fresh_backbone(tiny_dir), "hidden_states", probe)
    damage(_entry(cache))
    model = fresh_backbone(tiny_dir)
    graph, info = onnx_backend.load_graph(model, "hidden_states", probe)
    assert info.source == "exported" and len(exports) == 2
    assert reason in info.rebuilt and "rebuilt" in info.summary()
    with torch.inference_mode():
        expected = model(**probe).last_hidden_state
    torch.testing.assert_close(graph.run(probe, ["last_hidden_state"])[0], expected, atol=1e-5, rtol=1e-5)
    # The rebuilt entry is whole again: the next object reuses it.
    _, info = onnx_backend.load_graph(fresh_backbone(tiny_dir), "hidden_states", probe)
    assert info.source == "disk cache" and len(exports) == 2


def test_the_key_follows_the_weights_the_kind_and_the_inputs(tiny_dir):
    model = fresh_backbone(tiny_dir)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    key = onnx_backend.graph_key(model, "hidden_states", names)
    assert onnx_backend.graph_key(fresh_backbone(tiny_dir), "hidden_states", names) == key
    changed = fresh_backbone(tiny_dir)
    with torch.no_grad():
        changed.encoder.layer[0].intermediate.dense.weight[0, 0] += 1e-3
    assert onnx_backend.graph_key(changed, "hidden_states", names) != key
    assert onnx_backend.graph_key(model, "logits", names) != key
    assert onnx_backend.graph_key(model, "hidden_states", names[:2]) != key
    half = fresh_backbone(tiny_dir).to(torch.float16)
    assert onnx_backend.graph_key(half, "hidden_states", names) != key


def test_default_backend_is_onnx_on_a_cpu_and_the_environment_overrides(tiny_dir, cache, monkeypatch):
    monkeypatch.delenv("FLAGDEMO_BACKEND", raising=False)
    model = FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False)
    assert model.backend == "onnx" and model.backend_info.reason == "the fastest exact backend on a CPU"
    auto = FlagAutoModel.from_finetuned(str(tiny_dir / "bert-embedder"), model_class="encoder-only-base")
    assert auto.backend == "onnx"  # FlagAutoModel follows the same default
    monkeypatch.setenv("FLAGDEMO_BACKEND", "onnx")
    model = FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False)
    assert model.backend == "onnx" and model.backend_info.reason == "chosen by FLAGDEMO_BACKEND"
    assert "backend=onnx" in repr(model)
    monkeypatch.setenv("FLAGDEMO_BACKEND", "torch")
    model = FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False)
    assert model.backend == "torch" and model.backend_info.summary() == "PyTorch (chosen by FLAGDEMO_BACKEND)."
    assert FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False, backend="onnx").backend == "onnx"
    auto = FlagAutoModel.from_finetuned(str(tiny_dir / "bert-embedder"), model_class="encoder-only-base")
    assert auto.backend == "torch"  # FlagAutoModel follows the same default (here FLAGDEMO_BACKEND=torch)
    auto = FlagAutoModel.from_finetuned(
        str(tiny_dir / "bert-embedder"), model_class="encoder-only-base", backend="onnx"
    )
    assert auto.backend == "onnx" and auto.backend_info.summary().startswith("ONNX Runtime")
    monkeypatch.setenv("FLAGDEMO_BACKEND", "tensorrt")
    with pytest.raises(InvalidInputError, match="FLAGDEMO_BACKEND must be 'torch' or 'onnx', not 'tensorrt'"):
        FlagModel(str(tiny_dir / "bert-embedder"))


def test_big_encoders_default_to_torch_on_a_cpu_and_can_still_ask_for_onnx(tiny_dir, cache, monkeypatch):
    """Above ONNX_DEFAULT_MAX_PARAMETERS (config.json's estimate) the CPU default is torch, with the reason; the
    limit is lowered here so the tiny models fall on either side of it (bert-embedder ~503 k, xlmr-m3 ~57 k)."""
    monkeypatch.delenv("FLAGDEMO_BACKEND", raising=False)
    monkeypatch.setattr(onnx_backend, "ONNX_DEFAULT_MAX_PARAMETERS", 100_000)
    big = FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False)
    assert big.backend == "torch"
    assert big.backend_info.summary() == (
        "PyTorch (a 1 M-parameter model: exporting its ONNX graph would take minutes and about eight times its "
        "weights in memory)."
    )
    assert FlagReranker(str(tiny_dir / "bert-cross-encoder")).backend == "torch"
    assert BGEM3FlagModel(str(tiny_dir / "xlmr-m3"), use_fp16=False).backend == "onnx"  # small enough
    assert FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False, backend="onnx").backend == "onnx"
    monkeypatch.setenv("FLAGDEMO_BACKEND", "onnx")  # an operator's choice outranks the size rule
    assert FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False).backend == "onnx"
    assert onnx_backend.resolve_backend(None, torch.device("cpu"), owner="M", parameters=566_382_592)[0] == "onnx"
    monkeypatch.delenv("FLAGDEMO_BACKEND")
    assert onnx_backend.resolve_backend(None, torch.device("cpu"), owner="M", parameters=566_382_592) == (
        "torch",
        "a 566 M-parameter model: exporting its ONNX graph would take minutes and about eight times its weights in "
        "memory",
    )


def test_backend_choice_per_device_and_class(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv("FLAGDEMO_BACKEND", raising=False)
    assert onnx_backend.resolve_backend(None, cpu, owner="FlagModel") == ("onnx", "the fastest exact backend on a CPU")
    assert onnx_backend.resolve_backend(None, cuda, owner="M") == ("torch", "the fastest exact backend on cuda")
    assert onnx_backend.resolve_backend(None, cpu, owner="X", supports_onnx=False) == ("torch", "X runs on torch only")
    monkeypatch.setattr(onnx_backend, "onnxruntime_available", lambda: False)  # a CPU install without onnxruntime
    assert onnx_backend.resolve_backend(None, cpu, owner="FlagModel") == ("torch", "onnxruntime is not installed")
    monkeypatch.undo()
    monkeypatch.delenv("FLAGDEMO_BACKEND", raising=False)
    with pytest.raises(InvalidInputError, match="The onnx backend runs on the CPU"):
        onnx_backend.resolve_backend("onnx", cuda, owner="FlagModel")
    with pytest.raises(InvalidInputError, match="backend must be 'torch' or 'onnx', not 'ort'"):
        onnx_backend.resolve_backend("ort", cpu, owner="FlagModel")
    monkeypatch.setenv("FLAGDEMO_BACKEND", "onnx")  # a deployment asking for onnx: a class without it says so
    assert onnx_backend.resolve_backend(None, cpu, owner="X", supports_onnx=False) == ("torch", "X runs on torch only")


def test_decoder_embedders_stay_on_torch_and_say_so(tiny_dir, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_BACKEND", "onnx")
    model = FlagLLMModel(str(tiny_dir / "llama-decoder"), use_fp16=False)
    assert model.backend == "torch" and "runs on torch only" in model.backend_info.summary()
    with pytest.raises(InvalidInputError, match="FlagLLMModel runs on torch only"):
        FlagLLMModel(str(tiny_dir / "llama-decoder"), use_fp16=False, backend="onnx")


@pytest.mark.parametrize(
    "build",
    [
        lambda path: FlagModel(str(path / "bert-embedder"), pooling_metod="mean"),
        lambda path: BGEM3FlagModel(str(path / "xlmr-m3"), pooling_metod="mean"),
        lambda path: FlagAutoModel.from_finetuned(
            str(path / "bert-embedder"), model_class="encoder-only-base", pooling_metod="mean"
        ),
        lambda path: FlagReranker(str(path / "bert-cross-encoder"), pooling_metod="mean"),
    ],
    ids=["FlagModel", "BGEM3FlagModel", "FlagAutoModel", "FlagReranker"],
)
def test_an_unknown_keyword_is_a_type_error_naming_it(tiny_dir, build):
    with pytest.raises(TypeError, match="unexpected keyword argument 'pooling_metod'"):
        build(tiny_dir)


def test_flagembeddings_own_extra_keywords_are_still_accepted(tiny_dir):
    model = FlagModel(str(tiny_dir / "bert-embedder"), passage_instruction_for_retrieval="p: ", backend="torch")
    assert model.passage_instruction_for_retrieval == "p: "
    reranker = FlagReranker(str(tiny_dir / "bert-cross-encoder"), passage_max_length=64, backend="torch")
    assert reranker.passage_max_length == 64 and reranker.backend == "torch"


def test_all_layers_on_onnx_match_torch(tiny_dir, cache):
    path = str(tiny_dir / "bert-embedder")
    on_onnx = FlagModel(path, use_fp16=False, pooling_method="mean", backend="onnx")
    on_torch = FlagModel(path, use_fp16=False, pooling_method="mean", backend="torch")
    for mode in ("query", "passage"):
        fast, exact = (m.encode_detailed(TEXTS, mode=mode, all_layers=True) for m in (on_onnx, on_torch))
        assert fast.layer_embeddings.shape == exact.layer_embeddings.shape == (4, 4, 16)
        assert fast.layer_embeddings.dtype == exact.layer_embeddings.dtype == np.float32
        np.testing.assert_allclose(fast.layer_embeddings, exact.layer_embeddings, atol=1e-5)
        np.testing.assert_allclose(fast.embeddings, exact.embeddings, atol=1e-5)
        assert fast.tokens == exact.tokens


def test_m3_outputs_and_scores_on_onnx_match_torch(tiny_dir, cache):
    path = str(tiny_dir / "xlmr-m3")
    on_onnx, on_torch = (BGEM3FlagModel(path, use_fp16=False, backend=b) for b in ("onnx", "torch"))
    kwargs = {"return_sparse": True, "return_colbert_vecs": True}
    fast, exact = on_onnx.encode(TEXTS, **kwargs), on_torch.encode(TEXTS, **kwargs)
    np.testing.assert_allclose(fast["dense_vecs"], exact["dense_vecs"], atol=1e-5)
    for got, want in zip(fast["colbert_vecs"], exact["colbert_vecs"], strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5)
    for got, want in zip(fast["lexical_weights"], exact["lexical_weights"], strict=True):
        assert got.keys() == want.keys()
        np.testing.assert_allclose([got[k] for k in want], [want[k] for k in want], atol=1e-5)
    pairs = [(TEXTS[0], TEXTS[2]), (TEXTS[1], TEXTS[0])]
    scores_fast, scores_exact = on_onnx.compute_score(pairs), on_torch.compute_score(pairs)
    for mode, values in scores_exact.items():
        np.testing.assert_allclose(scores_fast[mode], values, atol=1e-5)


def test_cross_encoder_on_onnx_matches_torch(tiny_dir, cache):
    path = str(tiny_dir / "bert-cross-encoder")
    on_onnx, on_torch = (FlagReranker(path, backend=b) for b in ("onnx", "torch"))
    pairs = [(TEXTS[0], TEXTS[2]), (TEXTS[1], TEXTS[0]), (TEXTS[2], TEXTS[3])]
    assert on_onnx.backend_info.source in ("exported", "disk cache", "memory")
    np.testing.assert_allclose(on_onnx.compute_score(pairs), on_torch.compute_score(pairs), atol=1e-5)


def test_precision_modes_of_an_onnx_embedder_run_on_torch(tiny_dir, cache):
    model = FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False, backend="onnx")
    fast = with_precision(model, "bf16")
    assert fast.backend == "torch" and model.backend == "onnx"
    cosines = (fast.encode(TEXTS) * model.encode(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.99


def test_the_export_leaves_the_torch_model_as_it_was(tiny_dir, cache):
    """The exporter toggles train/eval on what it traces: the (shared) torch model must stay in eval mode, its
    outputs unchanged."""
    model, probe = fresh_backbone(tiny_dir), probe_for(tiny_dir)
    with torch.inference_mode():
        before = model(**probe).last_hidden_state
    onnx_backend.load_graph(model, "hidden_states", probe)
    assert not model.training
    with torch.inference_mode():
        torch.testing.assert_close(model(**probe).last_hidden_state, before, atol=0, rtol=0)


def test_int8_on_onnx_is_its_own_cached_graph_close_to_fp32(tiny_dir, cache, exports):
    model = FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False, backend="onnx")
    before = len(exports)
    fast = with_precision(model, "int8")
    graph, exact_graph = fast._onnx_graph("last_hidden_state")[0], model._onnx_graph("last_hidden_state")[0]
    assert fast.backend == "onnx" and fast.approximate and graph is not exact_graph
    assert len(exports) == before + 1
    again = with_precision(model, "int8")._onnx_graph("last_hidden_state")[0]
    assert again is graph and len(exports) == before + 1
    exact, approximate = model.encode(TEXTS), fast.encode(TEXTS)
    assert approximate.shape == exact.shape and approximate.dtype == np.float32
    cosines = (exact * approximate).sum(axis=1)
    # Random tiny weights are int8's worst case; the MiniLM figures are in tests/perf and the benchmark.
    assert cosines.min() > 0.95 and not np.allclose(exact, approximate, atol=1e-5)
    assert graph.folder != exact_graph.folder  # its own cache key
    # Quantised from the fused graph: int8 attention and projections, fp32 down-projections, smoothing before each.
    ops = collections.Counter(node.op_type for node in onnx.load(str(graph.folder / "model.onnx")).graph.node)
    layers = model.num_layers
    assert ops["QAttention"] == layers and ops["Attention"] == 0 and ops["SkipLayerNormalization"] == 2 * layers
    assert ops["DynamicQuantizeMatMul"] == 2 * layers and ops["MatMul"] == layers and ops["Mul"] >= 3 * layers
    assert not fast.torch_loaded  # calibrated through the fp32 graph, no torch weights kept


def test_an_onnx_embedder_never_runs_the_torch_forward(tiny_dir, cache, count_forwards):
    on_onnx = FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False, backend="onnx")
    calls = count_forwards(on_onnx._backbone())
    on_onnx.encode(TEXTS)
    on_onnx.encode_detailed(TEXTS, all_layers=True)
    assert calls == []
    FlagModel(str(tiny_dir / "bert-embedder"), use_fp16=False, backend="torch").encode(TEXTS)
    assert len(calls) == 1  # the same shared model, on torch: one batch, one forward pass


def test_the_graph_follows_weights_swapped_after_construction(tiny_dir, cache):
    """blend.merge_curve reads blends through a copy of one embedder whose ``model`` is replaced and then
    reloaded in place: the onnx path must encode with the weights the model holds now, never a stale graph."""
    import copy

    path = str(tiny_dir / "bert-embedder")
    on_onnx = FlagModel(path, use_fp16=False, pooling_method="mean", backend="onnx")
    on_torch = FlagModel(path, use_fp16=False, pooling_method="mean", backend="torch")
    original = on_onnx.encode(TEXTS)
    blend = fresh_backbone(tiny_dir)
    with torch.no_grad():
        for parameter in blend.parameters():
            parameter.mul_(0.5)
    reader, reference = copy.copy(on_onnx), copy.copy(on_torch)
    reader.model = reference.model = blend
    swapped = reader.encode(TEXTS)
    assert not np.allclose(swapped, original, atol=1e-3)
    np.testing.assert_allclose(swapped, reference.encode(TEXTS), atol=1e-5)
    # Weights loaded in place into the same module object (what merge_curve does for every weight).
    blend.load_state_dict(on_torch.model.state_dict())
    np.testing.assert_allclose(reader.encode(TEXTS), original, atol=1e-5)
    np.testing.assert_allclose(on_onnx.encode(TEXTS), original, atol=1e-5)  # the original is untouched


def test_an_onnx_embedder_loads_torch_weights_only_when_torch_must_run(tiny_dir, cache, exports, monkeypatch):
    """The app's memory must not hold a torch copy next to the session: a FlagModel on onnx encodes (plain and
    all layers) without torch weights; a torch-only mode loads them then, and its numbers still match."""
    path = str(tiny_dir / "bert-embedder")
    first = FlagModel(path, use_fp16=False, pooling_method="mean", backend="onnx")
    first.encode_detailed(TEXTS, all_layers=True)  # exports the all-layers graph from a private torch copy
    assert not first.torch_loaded and len(exports) == 2
    again = FlagModel(path, use_fp16=False, pooling_method="mean", backend="onnx")
    assert again.backend_info.source in ("memory", "disk cache") and len(exports) == 2
    detailed = again.encode_detailed(TEXTS, all_layers=True)
    assert not again.torch_loaded and again.num_layers == 3
    exact = FlagModel(path, use_fp16=False, pooling_method="mean", backend="torch").encode_detailed(
        TEXTS, all_layers=True
    )
    np.testing.assert_allclose(detailed.layer_embeddings, exact.layer_embeddings, atol=1e-5)
    bf16 = with_precision(again, "bf16")  # runs on torch: loads the weights now, in the copy
    assert bf16.encode(TEXTS).shape == (4, 16) and bf16.torch_loaded
    # A model loaded from the same files keeps using the same graph (no second export).
    assert again.model is not None and again.torch_loaded
    np.testing.assert_allclose(again.encode(TEXTS), exact.embeddings, atol=1e-5)
    assert len(exports) == 2


def test_onnx_batches_are_bounded_by_length_squared_with_the_same_numbers(tiny_dir, cache, monkeypatch):
    """ONNX Runtime's attention holds batch × heads × length² scores: long texts run in smaller batches than asked,
    short ones in the batch asked for, and the embeddings do not change."""
    from flagdemo.models.backends import runners

    path = str(tiny_dir / "bert-embedder")
    model = FlagModel(path, use_fp16=False, pooling_method="mean", backend="onnx")
    texts = ["word " * 60, "word " * 50, "short", "tiny", "a b", "c"]
    whole = model.encode(texts, batch_size=8)
    graph = model._onnx_graph("last_hidden_state")[0]
    sizes = []
    original = graph.run
    monkeypatch.setattr(
        graph, "run", lambda batch, names: sizes.append(len(batch["input_ids"])) or original(batch, names)
    )
    monkeypatch.setattr(runners, "ONNX_ATTENTION_BUDGET", 2 * 62 * 62)  # two texts of the longest length per batch
    bounded = model.encode(texts, batch_size=8)
    assert sizes == [2, 4]  # the two long texts, then the four short ones together (batch 8 allows them all)
    np.testing.assert_allclose(bounded, whole, atol=1e-6)
    exact = FlagModel(path, use_fp16=False, pooling_method="mean", backend="torch").encode(texts, batch_size=8)
    np.testing.assert_allclose(bounded, exact, atol=1e-5)
