"""The bundled training set: FlagEmbedding's format, three of the labelled set's topics, and none of the labelled
set's queries or passages (nor near copies of them), so the labelled queries stay held out."""

from __future__ import annotations

import re

import pytest

from flagdemo.data.datasets import load_retrieval_set
from flagdemo.training.finetune import bundled_training_files, read_training_file

FILE = "cooking_health_finance"


@pytest.fixture(scope="module")
def examples():
    return read_training_file(bundled_training_files()[FILE])


FUNCTION_WORDS = {"a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how", "i",
                  "in", "is", "it", "my", "of", "on", "or", "should", "the", "their", "to", "what", "when", "where",
                  "which", "why", "with", "you", "your"}  # fmt: skip


def words(text: str) -> set[str]:
    """Content words (function words dropped, so two short questions do not match on 'what is the')."""
    return set(re.findall(r"\w+", text.casefold())) - FUNCTION_WORDS


def test_format_size_and_topics(examples):
    import json

    raw = [json.loads(line) for line in bundled_training_files()[FILE].read_text(encoding="utf-8").splitlines()]
    assert len(examples) == len(raw) == 135
    topics = {row["topic"] for row in raw}
    assert topics == {"cooking", "health", "personal_finance"}
    assert topics < set(load_retrieval_set().queries["topic"])
    assert all(len(e["pos"]) == 1 and len(e["neg"]) == 5 for e in examples)
    assert all(e["pos"][0] not in e["neg"] for e in examples)
    assert len({(e["query"], e["pos"][0]) for e in examples}) == 135


def test_no_labelled_query_or_passage_nor_a_near_copy_is_in_the_training_set(examples):
    labelled = load_retrieval_set()
    labelled_texts = [*labelled.queries["text"], *labelled.passages["text"]]
    training_texts = {text for e in examples for text in (e["query"], *e["pos"], *e["neg"])}
    normalised = {" ".join(sorted(words(text))) for text in training_texts}
    for text in labelled_texts:
        assert " ".join(sorted(words(text))) not in normalised, text
    training_words = [(words(text), text) for text in training_texts]
    labelled_words = [(words(text), text) for text in labelled_texts]
    worst = max(
        (len(a & b) / len(a | b), a_text, b_text)
        for a, a_text in training_words
        for b, b_text in labelled_words
        if a and b
    )
    assert worst[0] < 0.5, worst
