"""App fixtures (the tiny-model Engine is in tests/conftest.py): the Blocks built from it, and a launched server."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="flagdemo-gradio-"))


@pytest.fixture(scope="session")
def tiny_m3(tiny_dir) -> str:
    return str(tiny_dir / "xlmr-m3")


@pytest.fixture(scope="session")
def tiny_demo(tiny_engine):
    from flagdemo.ui import build_demo

    return build_demo(tiny_engine)


@pytest.fixture(scope="session")
def app_url(tiny_engine):
    """A real server on 127.0.0.1 serving the tiny-model app (its own Blocks, closed at the end)."""
    from flagdemo.ui import build_demo

    demo = build_demo(tiny_engine)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield url
    demo.close()
