"""Hardening fixtures: handlers on the tiny-model Engine (tests/conftest.py) and corrupt copies of a tiny model."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="flagdemo-gradio-"))


@pytest.fixture(scope="session")
def handlers(tiny_engine):
    from flagdemo.ui import endpoints

    return endpoints(tiny_engine)


def corrupt_copies(tiny_dir: Path, root: Path) -> dict[str, Path]:
    """Copies of the tiny BERT embedder, each broken in one way a download or a disk can break a model."""
    broken = {}
    for name in ("truncated-weights", "missing-config", "garbage-tokenizer", "missing-weights"):
        broken[name] = root / name
        shutil.copytree(tiny_dir / "bert-embedder", broken[name])
    weights = broken["truncated-weights"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (broken["missing-config"] / "config.json").unlink()
    (broken["garbage-tokenizer"] / "tokenizer.json").write_text('{"version": "1.0", "model": [garbage')
    (broken["missing-weights"] / "model.safetensors").unlink()
    return broken


@pytest.fixture(scope="session")
def broken_models(tiny_dir, tmp_path_factory) -> dict[str, Path]:
    return corrupt_copies(tiny_dir, tmp_path_factory.mktemp("broken-models"))


# ---- internal failures and the app's endpoints ------------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line("markers", "internal_failure_expected: the test provokes an internal failure on purpose")


@pytest.fixture(autouse=True)
def _no_internal_failure(request):
    """Every hardening test fails if a request ended as ``failed:…`` or flagdemo logged an unexpected exception."""
    from internal_failures import no_internal_failure

    if request.node.get_closest_marker("internal_failure_expected"):
        yield
        return
    with no_internal_failure():
        yield


@pytest.fixture(scope="session")
def tiny_app(tiny_engine):
    """The whole app on the tiny-model Engine, not launched: its events are called by api_name."""
    from flagdemo.ui import build_demo

    return build_demo(tiny_engine)
