"""Fixtures for the teaching-kit tests (the numpy stand-in models live in teaching_fakes.py)."""

from __future__ import annotations

import pytest

from flagdemo.data.datasets import RetrievalSet, load_retrieval_set


@pytest.fixture(scope="session")
def small_set() -> RetrievalSet:
    """Two topics, their own passages only: 12 queries × 80 passages keeps every test fast."""
    return load_retrieval_set().subset(topics=["cooking", "astronomy"], restrict_passages=True)
