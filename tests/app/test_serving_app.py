"""A launched app under a room's traffic: light work answers while heavy work runs, a waiting request sees its place
in the queue, and past the queue's size a visitor gets a sentence, not a failure."""

from __future__ import annotations

import threading

import httpx
import pytest
from gradio_client import Client
from gradio_client.utils import Status

from flagdemo.engine import Engine

pytestmark = pytest.mark.e2e

WAIT = 60


class HeldEngine(Engine):
    """The tiny-model engine whose reranking holds until the test lets it go."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reranking = threading.Event()
        self.release = threading.Event()
        self.reranks_finished = 0

    def rerank_methods(self, *args, **kwargs):
        self.reranking.set()
        assert self.release.wait(WAIT)
        outcomes = super().rerank_methods(*args, **kwargs)
        self.reranks_finished += 1
        return outcomes


@pytest.fixture
def held_app(tiny_dir, monkeypatch):
    from flagdemo.ui import build_demo

    monkeypatch.setenv("FLAGDEMO_QUEUE_SIZE", "1")
    monkeypatch.setenv("FLAGDEMO_HEAVY_SLOTS", "1")  # one heavy request at a time: the next one waits in line
    engine = HeldEngine(
        embedder=str(tiny_dir / "bert-embedder"),
        llm_reranker=str(tiny_dir / "llama-decoder"),
        layerwise_reranker=str(tiny_dir / "minicpm-layerwise"),
        cutoff_layer=3,
    )
    demo = build_demo(engine)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield url, engine
    finally:
        engine.release.set()
        demo.close()


def test_light_work_answers_while_heavy_work_runs_and_the_queue_speaks_in_sentences(held_app):
    url, engine = held_app
    client = Client(url, verbose=False)
    running = client.submit(query="q", passages="a\nb", api_name="/rerank")  # a heavy request, held mid-run
    assert engine.reranking.wait(WAIT)

    table, *_ = client.predict(texts="while the reranker runs", api_name="/encode")
    _, top, *_ = client.predict(queries="a question", passages="an answer", top_k=1, api_name="/similarity")
    assert [row[1] for row in table["data"]] == ["while the reranker runs"]
    assert top["data"][0][2] == "an answer"
    assert engine.reranks_finished == 0 and not running.done()  # both answered while the rerank still ran

    waiting = client.submit(query="q2", passages="c\nd", api_name="/rerank")  # heavy slot busy: it waits in line
    for _ in range(200):
        status = waiting.status()
        if status.code == Status.IN_QUEUE and status.rank is not None:
            break
        threading.Event().wait(0.05)
    assert status.code == Status.IN_QUEUE and status.rank == 0  # its place in the queue (first in line)

    with pytest.raises(Exception, match=r"Queue is full! Please try again\."):  # max size 1, already taken
        client.predict(query="q3", passages="e", api_name="/rerank")
    refused = httpx.post(f"{url}gradio_api/call/rerank", json={"data": ["q3", "e"]}, timeout=WAIT)
    assert refused.status_code == 503
    assert refused.json()["detail"].startswith("Queue is full.")

    engine.release.set()
    for job in (running, waiting):
        assert job.result(timeout=WAIT)[4].startswith("All chosen methods ran.")
    assert engine.reranks_finished == 2
