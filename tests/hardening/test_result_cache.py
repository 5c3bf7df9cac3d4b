"""The result cache: bounds and eviction, private copies, single-flight (one run for identical concurrent requests,
errors shared and never stored), its settings, and the label it puts on each request's log line."""

from __future__ import annotations

import json
import logging
import pickle
import threading
import time

import numpy as np
import pytest
import torch

from flagdemo.errors import InvalidInputError, ModelLoadError
from flagdemo.models.cache import ModelCache
from flagdemo.serving import request_log
from flagdemo.serving.result_cache import ResultCache, model_identity, result_key, reuse_note

WAIT = 30  # seconds a test thread may wait before the test calls it hung


def _gather(count: int, call) -> list:
    """Run ``call`` in ``count`` threads at once; the results (or raised exceptions) in thread order."""
    results: list = [None] * count
    start = threading.Barrier(count)

    def run(index: int) -> None:
        start.wait(WAIT)
        try:
            results[index] = call()
        except Exception as error:  # the test inspects what each thread got
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


class SlowCompute:
    """A computation that counts its runs and holds until released, so that other requests arrive meanwhile."""

    def __init__(self, value=None, error: Exception | None = None) -> None:
        self.runs = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.value = value
        self.error = error

    def __call__(self):
        self.runs += 1
        self.started.set()
        assert self.release.wait(WAIT)
        if self.error is not None:
            raise self.error
        return self.value


def test_identical_concurrent_requests_run_once_and_share_the_result():
    cache = ResultCache()
    compute = SlowCompute({"scores": np.arange(3.0)})
    threading.Timer(0.5, compute.release.set).start()  # everyone has arrived by then
    results = _gather(6, lambda: cache.get_or_compute("rerank:x", compute))
    assert compute.runs == 1
    assert all(np.array_equal(r["scores"], [0.0, 1.0, 2.0]) for r in results)
    assert (cache.misses, cache.hits + cache.shared) == (1, 5)
    assert cache.get_or_compute("rerank:x", compute)["scores"].tolist() == [0.0, 1.0, 2.0]
    assert compute.runs == 1


def test_every_caller_gets_a_private_copy():
    cache = ResultCache()
    first = cache.get_or_compute("k", lambda: {"vectors": np.ones(4), "tokens": ["a", "b"]})
    first["vectors"][:] = -1  # the first visitor scribbles on their result …
    first["tokens"].append("c")
    second = cache.get_or_compute("k", lambda: pytest.fail("computed twice"))
    assert second["vectors"].tolist() == [1.0] * 4  # … the next one sees the original
    assert second["tokens"] == ["a", "b"]
    second["vectors"][0] = 7
    assert cache.get_or_compute("k", lambda: None)["vectors"][0] == 1.0


def test_a_failed_run_reaches_every_waiter_and_is_not_stored():
    cache = ResultCache()
    failing = SlowCompute(error=ModelLoadError("The model files could not be read."))
    threading.Timer(0.5, failing.release.set).start()
    results = _gather(4, lambda: cache.get_or_compute("sweep:y", failing))
    assert failing.runs == 1
    assert all(isinstance(r, ModelLoadError) and "could not be read" in str(r) for r in results)
    assert len(cache) == 0 and "sweep:y" not in cache
    assert cache.get_or_compute("sweep:y", lambda: "fine now") == "fine now"  # the next request computes afresh
    assert cache.get_or_compute("sweep:y", lambda: "again") == "fine now"


def test_a_result_kept_out_is_still_shared_with_its_waiters():
    cache = ResultCache()
    partial = SlowCompute(["bi-encoder ok", "LLM reranker: could not run"])
    threading.Timer(0.5, partial.release.set).start()
    results = _gather(3, lambda: cache.get_or_compute("rerank:z", partial, keep=lambda _: False))
    assert partial.runs == 1 and results == [partial.value] * 3
    assert len(cache) == 0
    assert cache.get_or_compute("rerank:z", lambda: "retried") == "retried"


def test_least_recently_used_results_are_evicted_past_either_bound():
    big_bytes = len(pickle.dumps(np.zeros(1000), protocol=pickle.HIGHEST_PROTOCOL))
    cache = ResultCache(max_entries=2, max_bytes=big_bytes + 10)
    for key in ("a", "b"):
        cache.get_or_compute(key, lambda key=key: key * 10)
    cache.get_or_compute("a", lambda: pytest.fail("a is cached"))  # a is now the most recently used
    cache.get_or_compute("c", lambda: "c" * 10)
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, False, True)
    assert len(cache) == 2
    big = cache.get_or_compute("big", lambda: np.zeros(1000))  # fills the byte budget: a and c must go
    assert big.shape == (1000,) and "big" in cache and len(cache) == 1
    assert cache.nbytes == big_bytes
    cache.get_or_compute("huge", lambda: np.zeros(5000))  # larger than the whole budget: served, never kept
    assert "huge" not in cache and "big" in cache


def test_a_zero_bound_turns_storing_off():
    cache = ResultCache(max_entries=0)
    calls = []
    for _ in range(2):
        cache.get_or_compute("k", lambda: calls.append(1) or len(calls))
    assert len(calls) == 2 and len(cache) == 0


def test_bounds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FLAGDEMO_RESULT_CACHE_ENTRIES", "3")
    monkeypatch.setenv("FLAGDEMO_RESULT_CACHE_MB", "0.5")
    cache = ResultCache.from_env()
    assert (cache.max_entries, cache.max_bytes) == (3, 2**19)
    monkeypatch.setenv("FLAGDEMO_RESULT_CACHE_ENTRIES", "lots")
    with pytest.raises(InvalidInputError, match="FLAGDEMO_RESULT_CACHE_ENTRIES must be a whole number"):
        ResultCache.from_env()


def test_keys_differ_by_operation_model_settings_and_inputs(tiny_dir):
    model = str(tiny_dir / "bert-embedder")
    base = result_key("encode", [model_identity(model)], ("query", ["a", "b"]))
    assert base == result_key("encode", [model_identity(model)], ("query", ["a", "b"]))
    assert model_identity(model)[1].startswith(str(tiny_dir.resolve()))
    others = [
        result_key("similarity", [model_identity(model)], ("query", ["a", "b"])),
        result_key("encode", [model_identity(str(tiny_dir / "xlmr-m3"))], ("query", ["a", "b"])),
        result_key("encode", [model_identity(model)], ("passage", ["a", "b"])),
        result_key("encode", [model_identity(model)], ("query", ["a", "b "])),
    ]
    assert len({base, *others}) == 5


def test_public_mode_never_resolves_a_visitors_path(monkeypatch, tiny_dir):
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    assert model_identity(str(tiny_dir / "bert-embedder")) == (str(tiny_dir / "bert-embedder"), None)
    assert model_identity("/etc") == ("/etc", None)
    own = str(tiny_dir / "bert-embedder")
    assert model_identity(own, own_models=[own])[1] is not None


def test_each_request_line_says_how_the_cache_served_it(caplog):
    caplog.set_level(logging.INFO, logger="flagdemo.requests")
    cache = ResultCache()
    notes = []
    for _ in range(2):
        with request_log.logged_request("rerank"):
            cache.get_or_compute("rerank:k", lambda: "scores")
            notes.append(reuse_note())
    with request_log.logged_request("models"):
        pass
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "flagdemo.requests"]
    assert [line.get("cache") for line in lines] == ["miss", "hit", None]
    assert notes[0] == "" and notes[1].startswith("Served from the result cache")


def test_the_estimate_scales_the_last_run_by_its_inputs_and_leaves_model_loading_out():
    request_log._durations.clear()
    cache = ModelCache()
    with request_log.logged_request("layer_sweep"):
        request_log.note(models=["estimated-model"], inputs=["q", "p1", "p2", "p3"])
        assert request_log.estimate() is None  # nothing to go by yet
        cache.get_or_load(("slow",), lambda: time.sleep(0.3) or torch.nn.Linear(2, 2))  # 0.3 s of loading
        time.sleep(0.1)  # 0.1 s of work
    seconds, inputs = request_log._durations[("layer_sweep", ("estimated-model",))]
    assert inputs == 4 and 0.09 <= seconds < 0.3  # the load is not part of the work
    with request_log.logged_request("layer_sweep"):
        request_log.note(models=["estimated-model"], inputs=["q", *"abcdefg"])  # twice the inputs
        guess = request_log.estimate()
    assert (guess.last_seconds, guess.last_inputs, guess.scaled_from) == (seconds, 4, ())
    assert guess.seconds == pytest.approx(2 * seconds)


def test_a_model_not_run_yet_is_estimated_from_another_by_the_size_of_its_weights(tiny_dir):
    small, large = str(tiny_dir / "bert-embedder"), str(tiny_dir / "minicpm-layerwise")
    request_log._durations.clear()
    with request_log.logged_request("rerank"):
        request_log.note(models=[small], inputs=["q", "p1"])
        time.sleep(0.05)
    with request_log.logged_request("rerank"):
        request_log.note(models=[large], inputs=["q", "p1", "p2", "p3"])  # twice the inputs, another model
        guess = request_log.estimate()
    ratio = request_log.parameters([large]) / request_log.parameters([small])
    assert request_log.parameters([small]) == pytest.approx(
        stored_values(tiny_dir / "bert-embedder"), rel=0.01
    )  # the file size counts its header too
    assert ratio > 1.5  # the layer-wise model is the larger: the estimate grows with it
    assert guess.scaled_from == ("bert-embedder",)
    assert guess.seconds == pytest.approx(guess.last_seconds * 2 * ratio)
    with request_log.logged_request("rerank"):
        request_log.note(models=["rrf(bm25,embedder)"], inputs=["q"])  # no weights to size: no guess
        assert request_log.estimate() is None


def stored_values(folder) -> int:
    """The number of values in a folder's safetensors files, read tensor by tensor."""
    from safetensors import safe_open

    total = 0
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), "pt") as weights:
            total += sum(int(np.prod(weights.get_slice(name).get_shape())) for name in weights.keys())  # noqa: SIM118 (safe_open is not iterable)
    return total
