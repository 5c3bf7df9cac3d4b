"""The bundled all-MiniLM-L6-v2: flagdemo's mean-pooled, normalised embeddings equal sentence-transformers'."""

from __future__ import annotations

import numpy as np
import pytest

from flagdemo.models.embedders import FlagAutoModel
from flagdemo.models.sources import bundled_minilm_dir

TEXTS = [
    "The cat sits on the mat.",
    "Ein Hund läuft durch den Park 🐕",
    "Short.",
    "A considerably longer sentence, so that the batch needs padding for the shorter ones around it.",
    "東京は日本の首都です。",
    "",
]


@pytest.fixture(scope="session")
def minilm():
    return FlagAutoModel.from_finetuned("sentence-transformers/all-MiniLM-L6-v2", use_fp16=False)


def test_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(bundled_minilm_dir()), device="cpu")
    expected = reference.encode(TEXTS, normalize_embeddings=True)
    ours = minilm.encode(TEXTS, max_length=reference.max_seq_length)
    assert ours.shape == (6, 384)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert minilm.pooling_method == "mean" and minilm.source.origin == "bundled"


def test_semantics_are_sensible(minilm):
    vectors = minilm.encode(["A man is eating food.", "A man eats a meal.", "The stock market crashed."])
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
