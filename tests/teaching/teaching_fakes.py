"""Small, honest stand-ins for embedders and rerankers: real numpy computations behind the FlagEmbedding API names.

They let the evaluation helpers be tested without loading any model; every number they produce is recomputed
independently in the tests.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

import numpy as np

from flagdemo.data.datasets import RetrievalSet

DIM = 256


def bag_of_words(text: str) -> np.ndarray:
    """Word counts hashed into DIM buckets (crc32, so the same on every run): a crude but real embedding."""
    vector = np.zeros(DIM)
    for word in re.findall(r"\w+", text.lower()):
        vector[zlib.crc32(word.encode()) % DIM] += 1.0
    return vector


@dataclass
class BagOfWordsEmbedder:
    """encode_queries / encode_corpus like FlagEmbedding's, returning *unnormalised* count vectors."""

    model_name: str = "bag-of-words"
    query_instruction: str = ""
    calls: list[tuple[str, int]] = field(default_factory=list)

    def encode_queries(self, queries: list[str], **kwargs) -> np.ndarray:
        self.calls.append(("queries", len(queries)))
        return np.stack([bag_of_words(self.query_instruction + q) for q in queries]).astype(np.float32)

    def encode_corpus(self, corpus: list[str], **kwargs) -> np.ndarray:
        self.calls.append(("corpus", len(corpus)))
        return np.stack([bag_of_words(p) for p in corpus]).astype(np.float32)


@dataclass
class OracleEmbedder:
    """Knows the labels: query i → axis i; a passage judged r for query i gets r on axis i plus a small shared axis.

    Cosine is then r / sqrt(r² + ε²) for judged-relevant passages and 0 otherwise, so grade 2 ranks above grade 1
    above everything else: every metric must come out perfect.
    """

    data: RetrievalSet
    model_name: str = "oracle"
    output: str = "numpy"  # 'numpy', 'm3-dict' or 'torch'

    def _wrap(self, matrix: np.ndarray):
        if self.output == "m3-dict":
            return {"dense_vecs": matrix, "lexical_weights": None}
        if self.output == "torch":
            import torch

            return torch.from_numpy(matrix)
        return matrix

    def encode_queries(self, queries: list[str], **kwargs):
        ids = {text: i for i, text in enumerate(self.data.queries["text"])}
        matrix = np.zeros((len(queries), len(ids) + 1), dtype=np.float32)
        for row, text in enumerate(queries):
            matrix[row, ids[text]] = 1.0
        return self._wrap(matrix)

    def encode_corpus(self, corpus: list[str], **kwargs):
        query_axis = {qid: i for i, qid in enumerate(self.data.queries["id"])}
        passage_id = {text: pid for pid, text in self.data.passage_texts.items()}
        matrix = np.zeros((len(corpus), len(query_axis) + 1), dtype=np.float32)
        matrix[:, -1] = 0.1
        for row, text in enumerate(corpus):
            for qid, judged in self.data.judgements.items():
                matrix[row, query_axis[qid]] = judged.get(passage_id[text], 0)
        return self._wrap(matrix)


@dataclass
class OracleReranker:
    """compute_score(pairs) → relevance of the pair (from the labels) minus a tiny length term, like raw logits."""

    data: RetrievalSet
    model_name: str = "oracle-reranker"
    calls: list[int] = field(default_factory=list)

    def compute_score(self, sentence_pairs: list[list[str]], **kwargs) -> list[float]:
        self.calls.append(len(sentence_pairs))
        query_id = {text: qid for qid, text in self.data.query_texts.items()}
        passage_id = {text: pid for pid, text in self.data.passage_texts.items()}
        judgements = self.data.judgements
        return [
            float(judgements[query_id[q]].get(passage_id[p], 0)) * 3.0 - 1.0 - len(p) / 1e4 for q, p in sentence_pairs
        ]
