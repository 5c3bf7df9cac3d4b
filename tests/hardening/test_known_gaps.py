"""Engine gaps found by the hardening fuzzing in files owned by other helpers, kept visible until they are fixed.

Each test states the behaviour wanted; ``strict=True`` turns a fix into a failure here, so the marker gets removed.
The app is not exposed to these: ``Engine.encode`` / ``Engine.similarity`` refuse such a max_length first.
"""

from __future__ import annotations

import pytest

from flagdemo.errors import FlagDemoError

LONG_TEXT = "word " * 1000


@pytest.mark.xfail(strict=True, raises=RuntimeError, reason="embedders pass max_length beyond the position table")
def test_embedder_max_length_beyond_the_model_is_a_typed_error(tiny_dir):
    from flagdemo.embedders import FlagModel

    with pytest.raises(FlagDemoError):
        FlagModel(str(tiny_dir / "bert-embedder")).encode([LONG_TEXT], max_length=600)


@pytest.mark.xfail(strict=True, raises=RuntimeError, reason="rerankers pass max_length beyond the position table")
def test_reranker_max_length_beyond_the_model_is_a_typed_error(tiny_dir):
    from flagdemo.rerankers import FlagReranker

    with pytest.raises(FlagDemoError):
        FlagReranker(str(tiny_dir / "bert-cross-encoder")).compute_score([("q", LONG_TEXT)], max_length=600)
