"""Suite-wide settings: never reach the hub, keep gradio quiet, and point at the committed tiny-model assets."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

ASSETS = Path(__file__).parent / "assets"
TINY = ASSETS / "tiny"


@pytest.fixture(scope="session")
def tiny_dir():
    """Folder of the committed tiny models (built by golden/make_tiny_models.py)."""
    return TINY
