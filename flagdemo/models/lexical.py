"""BM25, the lexical baseline, through bm25s: an index of passages and each query's top passages by BM25 score.

Variant and parameters (bm25s 0.3.16): ``method='lucene'`` — Lucene's BM25 (Kamphuis et al. 2020): idf =
ln(1 + (N − df + 0.5) / (df + 0.5)), term weight tf / (tf + k1·(1 − b + b·|d| / avgdl)) — with k1 = 1.5 and b = 0.75
(bm25s' defaults) unless the spec names others. Tokens: lower-cased, the pattern
``\\b\\w\\w+\\b`` (two or more word characters, any script), no stop words and no stemming, because the labelled set
mixes languages and an English stop list or stemmer would favour English queries.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flagdemo.errors import EmptyInputError, InvalidInputError

K1 = 1.5
B = 0.75
METHOD = "lucene"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"


@dataclass
class BM25Index:
    """A bm25s index of ``passage_ids`` and what it cost: seconds to index, bytes of the score matrix."""

    passage_ids: list[str]
    model: object
    k1: float
    b: float
    index_seconds: float

    @classmethod
    def build(cls, passage_ids: Sequence[str], texts: Sequence[str], *, k1: float = K1, b: float = B) -> BM25Index:
        import bm25s

        if not texts:
            raise EmptyInputError("BM25 needs at least one passage to index.")
        if not k1 >= 0 or not 0 <= b <= 1:
            raise InvalidInputError(f"BM25 needs k1 ≥ 0 and 0 ≤ b ≤ 1, not k1={k1}, b={b}.")
        started = time.perf_counter()
        tokens = _tokenize(texts)
        model = bm25s.BM25(k1=float(k1), b=float(b), method=METHOD)
        model.index(tokens, show_progress=False)
        return cls(list(passage_ids), model, float(k1), float(b), time.perf_counter() - started)

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """BM25 score of every (query, passage) pair, as a (queries, passages) matrix (0 = no shared term)."""
        vocabulary = self.model.vocab_dict
        rows = []
        for query in queries:
            words = [w for w in _words(query) if w in vocabulary]
            rows.append(self.model.get_scores(words) if words else np.zeros(len(self.passage_ids)))
        return np.asarray(rows, dtype=np.float64).reshape(len(queries), len(self.passage_ids))

    @property
    def nbytes(self) -> int:
        """Bytes of the sparse score matrix bm25s keeps (data, indices, indptr)."""
        matrix = self.model.scores
        return int(sum(np.asarray(matrix[key]).nbytes for key in ("data", "indices", "indptr") if key in matrix))

    def describe(self) -> str:
        return f"BM25 ({METHOD} variant of bm25s, k1={self.k1:g}, b={self.b:g}, no stop words, no stemming)"


def _words(text: str) -> list[str]:
    import re

    return re.findall(TOKEN_PATTERN, str(text).lower())


def _tokenize(texts: Sequence[str]):
    import bm25s

    return bm25s.tokenize(
        list(texts), lower=True, token_pattern=TOKEN_PATTERN, stopwords=None, show_progress=False, return_ids=True
    )
