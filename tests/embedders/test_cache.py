from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest
import torch

from flagdemo.engine import shown_name
from flagdemo.errors import InvalidInputError
from flagdemo.models.cache import MODEL_CACHE, ModelCache
from flagdemo.models.embedders import FlagModel


def test_two_threads_asking_for_one_model_load_it_once():
    cache = ModelCache(max_models=2)
    started = threading.Event()
    calls = []

    def loader():
        calls.append(threading.get_ident())
        started.set()
        time.sleep(0.3)
        return torch.nn.Linear(4, 4)

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load(("m",), loader))) for _ in range(2)]
    threads[0].start()
    started.wait(5)
    threads[1].start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads), "a thread waiting for the load hung"
    assert len(calls) == 1
    assert cache.load_count == 1
    assert results[0] is results[1]


def test_two_different_models_never_load_at_the_same_time():
    """transformers patches process-wide state while it builds a model, so loads run one at a time; a loader that
    loads a part of itself through the cache (re-entrant) still works."""
    cache, spans, lock = ModelCache(max_models=8), [], threading.Lock()

    def loader(name: str):
        def load():
            started = time.perf_counter()
            time.sleep(0.2)
            with lock:
                spans.append((started, time.perf_counter()))
            return name

        return load

    def nested():
        return cache.get_or_load(("part",), loader("part")) + "+whole"

    threads = [threading.Thread(target=cache.get_or_load, args=((f"m{i}",), loader(f"m{i}"))) for i in range(3)]
    threads.append(threading.Thread(target=cache.get_or_load, args=(("whole",), nested)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    spans.sort()
    assert len(spans) == 4
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans)), spans
    assert cache.get_or_load(("whole",), lambda: "reloaded") == "part+whole"


def test_lru_eviction_past_max_models_from_env(monkeypatch):
    monkeypatch.setenv("FLAGDEMO_MAX_MODELS", "2")
    monkeypatch.delenv("FLAGDEMO_MAX_MEMORY_GB", raising=False)
    cache = ModelCache.from_env()
    assert cache.max_models == 2
    for name in ("a", "b"):
        cache.get_or_load((name,), lambda: torch.nn.Linear(2, 2), describe=name)
    cache.get_or_load(("a",), lambda: pytest.fail("a is cached"))  # a becomes most recently used
    cache.get_or_load(("c",), lambda: torch.nn.Linear(2, 2), describe="c")
    assert [entry.key for entry in cache.entries()] == [("a",), ("c",)]
    assert ("b",) not in cache


def test_eviction_past_memory_budget():
    linear_bytes = (256 * 256 + 256) * 4
    cache = ModelCache(max_models=10, max_memory_bytes=int(linear_bytes * 2.5))
    for name in ("a", "b", "c"):
        cache.get_or_load((name,), lambda: torch.nn.Linear(256, 256))
    entries = cache.entries()
    assert [entry.key for entry in entries] == [("b",), ("c",)]
    assert entries[0].nbytes == linear_bytes
    assert entries[0].device == "cpu" and entries[0].dtype == "float32"


def test_unload_clear_and_failed_loads():
    cache = ModelCache()
    cache.get_or_load(("x",), lambda: torch.nn.Linear(2, 2))
    assert cache.unload(("x",)) is True
    assert cache.unload(("x",)) is False

    def broken():
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        cache.get_or_load(("y",), broken)
    assert ("y",) not in cache
    cache.get_or_load(("y",), lambda: torch.nn.Linear(2, 2))
    cache.clear()
    assert cache.entries() == []
    assert cache.load_count == 3


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_bad_bounds_in_env_are_reported(monkeypatch, value):
    monkeypatch.setenv("FLAGDEMO_MAX_MODELS", value)
    with pytest.raises(InvalidInputError, match="FLAGDEMO_MAX_MODELS"):
        ModelCache.from_env()


def test_embedders_share_the_model_and_match_after_reload(bert_path):
    texts = ["first text", "a second, longer text"]
    first = FlagModel(bert_path, use_fp16=False, backend="torch")
    second = FlagModel(bert_path, use_fp16=False, backend="torch")
    assert first.model is second.model
    before = first.encode(texts)
    key = next(entry.key for entry in MODEL_CACHE.entries() if entry.key[:2] == (first.source.path, None))
    loads = MODEL_CACHE.load_count
    assert MODEL_CACHE.unload(key)
    reloaded = FlagModel(bert_path, use_fp16=False, backend="torch")
    assert MODEL_CACHE.load_count == loads + 1
    assert reloaded.model is not first.model
    np.testing.assert_array_equal(reloaded.encode(texts), before)


def test_onnx_embedders_share_the_session_through_the_cache_and_match_after_reload(bert_path):
    """An onnx embedder's session is a model-cache entry like torch weights: shared, listed, unloadable."""
    texts = ["first text", "a second, longer text"]
    for earlier in MODEL_CACHE.entries():  # the cache keeps six models: earlier tests' graphs may still be there
        if earlier.key[1:3] == ("onnx", "last_hidden_state"):
            MODEL_CACHE.unload(earlier.key)
    first = FlagModel(bert_path, use_fp16=False, backend="onnx")
    second = FlagModel(bert_path, use_fp16=False, backend="onnx")
    graph = first._onnx_graph("last_hidden_state")[0]
    assert second._onnx_graph("last_hidden_state")[0] is graph and second.backend_info.source == "memory"
    before = first.encode(texts)
    key = (first.source.path, "onnx", "last_hidden_state")
    (entry,) = [entry for entry in MODEL_CACHE.entries() if entry.key[:3] == key]
    assert shown_name(entry.describe) == "bert-embedder (ONNX Runtime graph)"
    assert entry.device == "cpu" and entry.nbytes > 0
    assert not first.torch_loaded  # no torch copy next to the session
    loads = MODEL_CACHE.load_count
    assert MODEL_CACHE.unload(entry.key)
    reloaded = FlagModel(bert_path, use_fp16=False, backend="onnx")
    assert MODEL_CACHE.load_count == loads + 1 and reloaded.backend_info.source == "disk cache"
    assert reloaded._onnx_graph("last_hidden_state")[0] is not graph
    np.testing.assert_array_equal(reloaded.encode(texts), before)


def test_a_model_that_cannot_fit_is_refused_before_it_loads(tiny_engine, engine_copy, tiny_dir, monkeypatch):
    """The weights on disk, as the model will hold them (fp32; bf16 for an LLM reranker in bf16), against the room
    the cache reports: a sentence, and nothing loaded."""
    from flagdemo.errors import ResourceLimitError
    from flagdemo.models.sources import resolve_source, stored_weights

    folder = tiny_dir / "minicpm-layerwise"
    on_disk = sum(path.stat().st_size for path in folder.glob("*.safetensors"))
    assert stored_weights(resolve_source(str(folder))) == (on_disk, 4)  # its config says float32
    engine = engine_copy(tiny_engine, cache=ModelCache(max_models=8))
    monkeypatch.setattr(engine.cache, "room_for_a_model", lambda: on_disk // 2)  # room for bf16, not for fp32
    with pytest.raises(ResourceLimitError, match=r"^minicpm-layerwise needs about \d+\.\d GB of memory to run here, "
                       r"and this server can give a model at most \d+\.\d GB of its \d+\.\d GB, even with every "
                       r"other model unloaded: choose a smaller model\.$"):  # fmt: skip
        engine.access.load_reranker(str(folder))
    assert engine.cache.entries() == []  # refused before anything loaded
    bf16 = engine_copy(engine, llm_precision="bf16")
    assert next(bf16.access.load_reranker(str(folder)).model.parameters()).dtype == torch.bfloat16
    assert MODEL_CACHE.holds_source(str(folder.resolve()))  # where the layer-wise module is kept, by its source


def test_the_room_for_a_model_is_the_machine_less_the_process_plus_the_cached_models(monkeypatch):
    import types

    from flagdemo.models import cache as cache_module

    resident = types.SimpleNamespace(memory_info=lambda: types.SimpleNamespace(rss=3 * 10**9, shared=10**8))
    monkeypatch.setattr(cache_module, "machine_memory_bytes", lambda: 16 * 10**9)
    monkeypatch.setattr(cache_module.psutil, "Process", lambda: resident)
    cache = ModelCache(max_models=8)
    assert cache.room_for_a_model() == 13 * 10**9
    cache.get_or_load(("x",), lambda: torch.nn.Linear(1000, 1000), describe="a linear layer")
    # the 4 MB it holds count as room too: unloading it gives them back
    assert [entry.nbytes for entry in cache.entries()] == [4_004_000]
    assert cache.room_for_a_model() == 13 * 10**9 + 4_004_000
