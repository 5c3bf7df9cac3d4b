"""Load: 16 gradio_client users drive mixed endpoints of a launched app for 30 s (run by `make test-load`).

Asserted: no request fails (refusals we provoke on purpose must come back as their sentence), the same model never
runs two jobs at a time while light and heavy work do overlap (flagdemo.serving), each model is loaded once, resident
memory stays bounded, and a client that disconnects mid-request leaves the app healthy. Traffic goes to 127.0.0.1
only. The workshop scenario (24 students on the real models) is tests/hardening/test_workshop_load.py.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import psutil
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from flagdemo import serving
from flagdemo.engine import Engine
from flagdemo.models.cache import MODEL_CACHE

pytestmark = pytest.mark.load

CLIENTS = 16
SECONDS = float(os.environ.get("FLAGDEMO_LOAD_SECONDS", "30"))
RSS_GROWTH_BOUND = 1024 * 2**20  # the whole run may add at most 1 GiB to the warmed-up process


class ModelGauge:
    """Counts, per model, how many jobs run it at the same moment (wraps ``serving.model_work``)."""

    def __init__(self, model_work) -> None:
        self.model_work = model_work
        self.lock = threading.Lock()
        self.active: dict[str, int] = {}
        self.most_per_model: dict[str, int] = {}
        self.models_at_once = 0

    @contextmanager
    def __call__(self, key):
        with self.model_work(key):
            with self.lock:
                self.active[key] = self.active.get(key, 0) + 1
                self.most_per_model[key] = max(self.most_per_model.get(key, 0), self.active[key])
                self.models_at_once = max(self.models_at_once, sum(1 for n in self.active.values() if n))
            try:
                yield
            finally:
                with self.lock:
                    self.active[key] -= 1


class GaugedEngine(Engine):
    """The tiny-model engine, counting how many model calls run at the same moment."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gauge_lock = threading.Lock()
        self.active = 0
        self.most_active = 0
        self.calls = 0

    def _gauged(self, method, *args, **kwargs):
        with self.gauge_lock:
            self.active += 1
            self.calls += 1
            self.most_active = max(self.most_active, self.active)
        try:
            return method(*args, **kwargs)
        finally:
            with self.gauge_lock:
                self.active -= 1

    def encode(self, *args, **kwargs):
        return self._gauged(super().encode, *args, **kwargs)

    def similarity(self, *args, **kwargs):
        return self._gauged(super().similarity, *args, **kwargs)

    def rerank_methods(self, *args, **kwargs):
        return self._gauged(super().rerank_methods, *args, **kwargs)

    def reranker_layer_sweep(self, *args, **kwargs):
        return self._gauged(super().reranker_layer_sweep, *args, **kwargs)


@dataclass
class Tally:
    ok: int = 0
    refused_as_expected: int = 0
    failures: list[str] = None

    def __post_init__(self) -> None:
        self.failures = []
        self.lock = threading.Lock()


def _requests(tiny_engine):
    """(api_name, kwargs, expected refusal or None): a mix of every model endpoint, cheap ones and bad input."""
    return [
        ("/encode", {}, None),
        ("/encode", {"texts": "emoji 🧪\n中文句子\n\u200bzero width", "mode": "query"}, None),
        ("/similarity", {}, None),
        ("/similarity", {"queries": "a\nb", "passages": "c\nd\ne", "all_pairs": False}, None),
        ("/rerank", {"llm_reranker": "", "layerwise_reranker": ""}, None),
        ("/rerank", {}, None),
        ("/layer_sweep", {"relevance": ""}, None),
        ("/models", {}, None),
        ("/encode", {"texts": "  \n "}, "There is no text to encode"),
        ("/encode", {"texts": "x" * 9000}, "characters; the limit is 8,000 per text"),
        ("/encode", {"model": "/etc/passwd"}, "does not exist"),
    ]


def _user(url: str, plan, deadline: float, tally: Tally) -> None:
    client = Client(url, verbose=False)
    for api_name, kwargs, refusal in itertools.cycle(plan):
        if time.monotonic() > deadline:
            return
        try:
            result = client.predict(**kwargs, api_name=api_name)
        except AppError as error:
            with tally.lock:
                if refusal is not None and refusal in str(error):
                    tally.refused_as_expected += 1
                else:
                    tally.failures.append(f"{api_name} {kwargs}: {error}")
            continue
        except Exception as error:  # transport errors, timeouts: all count as failed requests
            with tally.lock:
                tally.failures.append(f"{api_name} {kwargs}: {type(error).__name__}: {error}")
            continue
        with tally.lock:
            if refusal is not None:
                tally.failures.append(f"{api_name} {kwargs}: answered instead of refusing with {refusal!r}")
            elif result is None:
                tally.failures.append(f"{api_name} {kwargs}: empty answer")
            else:
                tally.ok += 1


def _disconnect_mid_request(url: str) -> None:
    """Start a long request over the plain HTTP API, read the first event, and drop the connection."""
    passages = "\n".join(f"passage number {i} about nothing much" for i in range(90))
    with httpx.Client(base_url=url, timeout=30) as http:
        event = http.post("/gradio_api/call/rerank", json={"data": ["a query", passages]}).json()["event_id"]
        with http.stream("GET", f"/gradio_api/call/rerank/{event}") as stream:
            next(stream.iter_bytes())


def test_sixteen_clients_for_half_a_minute(tiny_dir, monkeypatch):
    from flagdemo.ui import build_demo

    monkeypatch.setenv("FLAGDEMO_RESULT_CACHE_ENTRIES", "0")  # repeated requests run the models again: load them
    engine = GaugedEngine(
        embedder=str(tiny_dir / "bert-embedder"),
        llm_reranker=str(tiny_dir / "llama-decoder"),
        cross_encoder=str(tiny_dir / "bert-cross-encoder"),
        layerwise_reranker=str(tiny_dir / "minicpm-layerwise"),
        cutoff_layer=3,
    )
    monkeypatch.setattr(MODEL_CACHE, "max_models", 8)  # all four tiny models fit: any reload would be a bug
    gauge = ModelGauge(serving.model_work)
    monkeypatch.setattr(serving, "model_work", gauge)
    MODEL_CACHE.clear()
    demo = build_demo(engine)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, max_threads=40)
    assert url.startswith("http://127.0.0.1:")
    try:
        plan = _requests(engine)
        warm = Client(url, verbose=False)
        for api_name, kwargs, refusal in plan:  # load every model once, single-threaded
            if refusal is None:
                warm.predict(**kwargs, api_name=api_name)
        loads_after_warm_up = MODEL_CACHE.load_count
        process = psutil.Process()
        baseline_rss = process.memory_info().rss
        peak_rss = [baseline_rss]
        stop = threading.Event()

        def sample_memory() -> None:
            while not stop.wait(0.5):
                peak_rss.append(process.memory_info().rss)

        sampler = threading.Thread(target=sample_memory, daemon=True)
        sampler.start()
        tally = Tally()
        deadline = time.monotonic() + SECONDS
        users = [
            threading.Thread(target=_user, args=(url, plan[i % len(plan) :] + plan[: i % len(plan)], deadline, tally))
            for i in range(CLIENTS)
        ]
        for user in users:
            user.start()
        time.sleep(min(5.0, SECONDS / 4))
        _disconnect_mid_request(url)
        for user in users:
            user.join(timeout=SECONDS + 120)
        stop.set()
        sampler.join()

        assert not any(user.is_alive() for user in users), "a client hung"
        assert tally.failures == []
        assert tally.ok >= CLIENTS and tally.refused_as_expected >= 1
        assert set(gauge.most_per_model.values()) == {1}, "one model ran two jobs at once"
        assert engine.most_active >= 2 and gauge.models_at_once >= 2, "light work waited for heavy work throughout"
        assert MODEL_CACHE.load_count == loads_after_warm_up == len(MODEL_CACHE)  # each model loaded exactly once
        assert max(peak_rss) - baseline_rss < RSS_GROWTH_BOUND
        table, *_ = Client(url, verbose=False).predict(texts="after the storm", api_name="/encode")
        assert [row[1] for row in table["data"]] == ["after the storm"]
        print(
            f"\nload: {tally.ok} answered, {tally.refused_as_expected} refused as expected, {engine.calls} model "
            f"calls in {SECONDS:.0f} s; RSS {baseline_rss / 2**20:.0f} MiB -> peak {max(peak_rss) / 2**20:.0f} MiB"
        )
    finally:
        demo.close()
