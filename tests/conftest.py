"""Suite-wide settings: never reach the hub, keep gradio quiet, and point at the committed tiny-model assets."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from flagdemo.models.backends.cpu import describe

ASSETS = Path(__file__).parent / "assets"
TINY = ASSETS / "tiny"


def pytest_report_header(config):
    """The CPU at the top of every run: fp32, bf16 and int8 kernels differ between CPUs."""
    return describe()


@pytest.fixture(scope="session")
def tiny_dir():
    """Folder of the committed tiny models (built by golden/make_tiny_models.py)."""
    return TINY


@pytest.fixture(scope="session")
def engine_copy():
    """``engine_copy(engine, **changes)``: see ``copy_engine``."""
    return copy_engine


def copy_engine(engine, **changes):
    """``engine`` with ``changes`` and its own wrappers, storing no whole results (tests repeat requests on purpose,
    to see the embedding and wrapper caches at work)."""
    import dataclasses

    from flagdemo.serving.result_cache import ResultCache

    copy = dataclasses.replace(engine, **changes)
    copy.results = ResultCache(max_entries=0)
    return copy


@pytest.fixture(scope="session")
def tiny_engine(tiny_dir):
    """Every tab's roles filled by tiny models: a BERT embedder, a BGE-M3-shaped XLM-R, a BERT cross-encoder,
    a Llama LLM reranker and a MiniCPM layer-wise reranker (layers 2-6)."""
    from flagdemo.engine import Engine
    from flagdemo.serving.result_cache import ResultCache

    engine = Engine(
        embedder=str(tiny_dir / "bert-embedder"),
        llm_reranker=str(tiny_dir / "llama-decoder"),
        cross_encoder=str(tiny_dir / "bert-cross-encoder"),
        layerwise_reranker=str(tiny_dir / "minicpm-layerwise"),
        cutoff_layer=3,
        extra_embedders=(str(tiny_dir / "xlmr-m3"),),
    )
    engine.results = ResultCache(max_entries=0)  # tests that repeat a request mean it to run again
    return engine


@pytest.fixture
def count_forwards(monkeypatch):
    """``count_forwards(module)`` → a list that grows by one per forward pass of ``module`` (its instance
    ``forward`` is wrapped, so the shared weights stay intact)."""

    def watch(module):
        calls = []
        original = module.forward

        def counted(*args, **kwargs):
            calls.append(1)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, "forward", counted)
        return calls

    return watch
