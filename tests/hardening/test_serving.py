"""Serving a room: kinds of work and their queue groups, one lock per model, threads shared among running jobs,
and (through the handlers on tiny models) identical concurrent requests computed once."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import torch

from flagdemo import serving
from flagdemo.errors import InvalidInputError
from flagdemo.models import threads as thread_budget

WAIT = 30


def test_every_endpoint_has_a_kind_and_unknown_ones_count_as_heavy():
    assert {name for name, kind in serving.ENDPOINT_KINDS.items() if kind is serving.WorkKind.LIGHT} == {
        "encode",
        "similarity",
        "project",
        "models",
        "unload",
    }
    assert serving.kind_of("/rerank") is serving.kind_of("layer_sweep") is serving.WorkKind.HEAVY
    assert serving.kind_of("compare") is serving.kind_of("something_new") is serving.WorkKind.HEAVY


def test_queue_groups_and_sizes_come_from_the_environment(monkeypatch):
    assert serving.event_kwargs("similarity") == {"concurrency_id": "light-work", "concurrency_limit": 4}
    assert serving.event_kwargs("/rerank") == {"concurrency_id": "heavy-work", "concurrency_limit": 2}
    assert serving.queue_kwargs() == {"max_size": 64, "default_concurrency_limit": 1}
    monkeypatch.setenv("FLAGDEMO_LIGHT_SLOTS", "3")
    monkeypatch.setenv("FLAGDEMO_QUEUE_SIZE", "100")
    assert serving.event_kwargs("encode")["concurrency_limit"] == 3
    assert serving.queue_kwargs()["max_size"] == 100
    monkeypatch.setenv("FLAGDEMO_HEAVY_SLOTS", "0")
    with pytest.raises(InvalidInputError, match="FLAGDEMO_HEAVY_SLOTS must be a whole number above 0"):
        serving.event_kwargs("compare")


class Gauge:
    """How many threads are inside a block at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = self.most = 0

    def visit(self, seconds: float) -> None:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        time.sleep(seconds)
        with self.lock:
            self.inside -= 1


def _run_all(targets) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads)


def test_the_same_model_runs_one_job_at_a_time_and_different_models_run_together():
    locks = serving.ModelLocks()
    same, different = Gauge(), Gauge()

    def on(key: str, gauge: Gauge) -> None:
        with locks.hold(key):
            gauge.visit(0.3)

    _run_all([lambda: on("/models/minilm", same) for _ in range(3)])
    _run_all([lambda key=key: on(key, different) for key in ("/models/minilm", "/models/smollm2")])
    assert same.most == 1
    assert different.most == 2


def test_a_job_can_reach_its_own_model_again_without_waiting_for_itself():
    locks = serving.ModelLocks()
    with locks.hold("m"), locks.hold("m"):
        reached = True
    assert reached


def test_a_job_starting_beside_another_gets_its_share_of_the_threads(monkeypatch):
    trims = []
    monkeypatch.setattr(thread_budget, "release_freed_memory", lambda: trims.append(thread_budget.JOB_THREADS))
    threads = thread_budget.JobThreads(budget=2)
    seen: dict[str, int] = {}
    first_in, second_done = threading.Event(), threading.Event()
    before = torch.get_num_threads()

    def first() -> None:
        with threads.job() as count:
            seen["first, alone"] = count
            seen["torch in the first"] = torch.get_num_threads()
            first_in.set()
            assert second_done.wait(WAIT)

    def second() -> None:
        assert first_in.wait(WAIT)
        with threads.job() as count:
            seen["second, beside the first"] = count
            seen["torch in the second"] = torch.get_num_threads()
        second_done.set()

    try:
        _run_all([first, second])
        assert len(trims) == 1  # freed memory goes back once the last running job is done, not while one runs
        with threads.job() as count:
            seen["third, alone again"] = count
        assert seen == {
            "first, alone": 2,
            "torch in the first": 2,
            "second, beside the first": 1,
            "torch in the second": 1,
            "third, alone again": 2,
        }
        assert threads.running == 0 and threads.most_running == 2
        assert len(trims) == 2
    finally:
        torch.set_num_threads(before)


def _app_handlers(tiny_engine):
    """The endpoints as the app wires them (result cache on, the reuse note added), on a fresh engine."""
    from flagdemo.serving.result_cache import ResultCache
    from flagdemo.ui import common, endpoints
    from flagdemo.ui.tabs import rerank, similarity

    engine = dataclasses.replace(tiny_engine)
    engine.results = ResultCache()
    bound = endpoints(engine)
    for handler, note_at in ((rerank.rerank, 4), (similarity.similarity, 4)):
        outputs = list(range(note_at + 1))
        wired = common.with_reuse_note(common.bind(handler, engine), outputs, note_at)
        setattr(bound, handler.__name__, wired)
    bound.results = engine.results
    return bound


def test_identical_concurrent_reranks_run_the_models_once(tiny_engine, count_forwards):
    """Four visitors press "Compare rerankers" on the same example at once: one forward pass per model."""
    handlers = _app_handlers(tiny_engine)
    engine = handlers.engine
    with engine.reranker_for(engine.llm_reranker) as reranker:  # loaded, so the wrapper is kept
        llm_forwards = count_forwards(reranker.model)
    engine.results.max_entries = 0
    handlers.rerank()  # how many passes one request makes (nothing stored)
    engine.results.max_entries = 256
    engine.results.misses = 0
    one_request = len(llm_forwards)
    assert one_request >= 1
    results: list = []
    barrier = threading.Barrier(4)

    def visitor() -> None:
        barrier.wait(WAIT)
        results.append(handlers.rerank())

    _run_all([visitor] * 4)
    assert len(llm_forwards) == 2 * one_request  # the warm-up request and ONE for the four visitors
    tables = [result[0] for result in results]
    assert len(tables) == 4 and all(table.equals(tables[0]) for table in tables)
    assert (handlers.results.misses, handlers.results.hits + handlers.results.shared) == (1, 3)
    _, _, _, _, message = handlers.rerank()
    assert "Served from the result cache" in message
    assert len(llm_forwards) == 2 * one_request


def test_a_different_input_is_computed_not_served(tiny_engine):
    handlers = _app_handlers(tiny_engine)
    first = handlers.similarity(queries="a question", passages="one answer\nanother\nthird")
    second = handlers.similarity(queries="a question", passages="one answer\nyet another\nthird")
    assert handlers.results.misses == 2 and handlers.results.hits == 0
    assert first[1]["passage"].tolist() != second[1]["passage"].tolist()
    assert "Served from the result cache" not in second[4]


FIRST_LOADS_AT_ONCE = """
import sys, threading
import transformers
from flagdemo.engine import Engine
from flagdemo.models.sources import TRANSFORMERS_CLASSES

assert not any(name in vars(transformers) for name in TRANSFORMERS_CLASSES), "resolved before the engine"
Engine()
missing = [name for name in TRANSFORMERS_CLASSES if name not in vars(transformers)]
errors, barrier = [], threading.Barrier(len(TRANSFORMERS_CLASSES))

def first_use(name):
    barrier.wait()
    try:
        getattr(transformers, name)
    except Exception as error:
        errors.append(repr(error))

threads = [threading.Thread(target=first_use, args=(name,)) for name in TRANSFORMERS_CLASSES]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
print(missing, errors)
sys.exit(1 if missing or errors else 0)
"""


def test_the_engine_resolves_transformers_before_request_threads_load_models():
    """transformers' lazy module is not thread-safe on first use ("cannot import name 'AutoTokenizer'" when a fresh
    app's page load started several models at once): a new Engine resolves its auto classes in its own thread."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FIRST_LOADS_AT_ONCE], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
