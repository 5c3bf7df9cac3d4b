"""The Rerankers tab's numbers, checked against libraries that share no code with flagdemo.

The tab asks the engine for every method's scores on the same passages (``Engine.rerank_methods``). Here the
bi-encoder's cosines come from sentence-transformers on the same MiniLM, and the cross-encoder's raw scores (and their
sigmoid) from a plain transformers sequence classifier on the tiny BERT cross-encoder (no real cross-encoder is
available offline).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from flagdemo.engine import Engine
from flagdemo.models import catalog
from flagdemo.models.sources import bundled_minilm_dir

QUERY = "How long should pasta cook?"
PASSAGES = [
    "Dried spaghetti usually needs nine to eleven minutes in boiling salted water.",
    "Salt the pasta water generously; it should taste like the sea.",
    "The Eiffel Tower was finished in 1889 for the World's Fair.",
    "Fresh egg pasta cooks in two or three minutes.",
]


@pytest.fixture(scope="module")
def outcomes(tiny_dir):
    engine = Engine(embedder=catalog.MINILM_KEY, cross_encoder=str(tiny_dir / "bert-cross-encoder"))
    found = engine.rerank_methods(
        QUERY,
        PASSAGES,
        bi_encoder=engine.embedder,
        cross_encoder=engine.cross_encoder,
        llm_reranker=None,
        layerwise_reranker=None,
        cutoff_layer=None,
    )
    assert [(o.method, o.error) for o in found] == [("bi-encoder", ""), ("cross-encoder", "")]
    return {o.method: o for o in found}


def test_bi_encoder_scores_are_sentence_transformers_cosines(outcomes):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(bundled_minilm_dir()), device="cpu")
    reference.half().float()  # FlagEmbedding's default use_fp16=True on CPU: fp16 weights, fp32 compute (as the app)
    query, passages = (
        reference.encode([QUERY], normalize_embeddings=True),
        reference.encode(PASSAGES, normalize_embeddings=True),
    )
    expected = (query.astype(np.float64) @ passages.astype(np.float64).T)[0]
    np.testing.assert_allclose(outcomes["bi-encoder"].scores, expected, atol=1e-5)
    assert np.argmin(outcomes["bi-encoder"].scores) == 2  # the off-topic passage (the Eiffel Tower) comes last


def test_cross_encoder_raw_and_sigmoid_scores_are_plain_transformers_logits(outcomes, tiny_dir):
    folder = tiny_dir / "bert-cross-encoder"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    batch = tokenizer([QUERY] * len(PASSAGES), PASSAGES, padding=True, truncation=True, max_length=512,
                      return_tensors="pt")  # fmt: skip
    with torch.inference_mode():
        logits = model(**batch).logits[:, 0].double().numpy()
    cross = outcomes["cross-encoder"]
    np.testing.assert_allclose(cross.scores, logits, atol=1e-5)
    np.testing.assert_allclose(cross.normalized, 1 / (1 + np.exp(-logits)), atol=1e-6)
    assert np.ptp(logits) > 1e-3  # the tiny model tells the passages apart: equal scores would prove little
