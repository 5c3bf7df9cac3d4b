"""Top-k search over a stored set: exact in chunks with bounded memory, or through a faiss index.

Exact: the queries (in blocks of ``QUERY_BLOCK``) are scored against one shard at a time and merged into a running
top-k, so memory is one shard plus ``queries × k``, whatever the set's size. Ties keep the lower row first.
Approximate: an inverted-file index (faiss ``IndexIVFFlat``, inner product) built once from the shards and saved
beside them with its recall@10 against exact search, measured when it is built and printed with every answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flagdemo.corpus import CorpusError, require
from flagdemo.corpus.store import StoredSet, now, write_json_atomic

QUERY_BLOCK = 256
INDEX_FILE = "index.faiss"
INDEX_INFO = "index.json"


@dataclass
class Hits:
    """Best-first rows and scores per query: ``rows`` (Q, k) int64 (-1 where fewer than k rows), ``scores`` (Q, k)."""

    rows: np.ndarray
    scores: np.ndarray


def _merge(best_rows, best_scores, rows, scores, k):
    """Keep the k best of two candidate sets per query; equal scores keep the lower row first."""
    all_rows = np.concatenate([best_rows, rows], axis=1)
    all_scores = np.concatenate([best_scores, scores], axis=1)
    order = np.lexsort((np.where(all_rows < 0, np.iinfo(np.int64).max, all_rows), -all_scores), axis=1)[:, :k]
    return np.take_along_axis(all_rows, order, axis=1), np.take_along_axis(all_scores, order, axis=1)


def exact_top_k(queries: np.ndarray, chunks: Iterable[np.ndarray], k: int) -> Hits:
    """Inner-product top-k of ``queries`` (Q, D) over the row-ordered ``chunks`` (each (n, D)); see the module."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    count = len(queries)
    best_rows = np.full((count, k), -1, dtype=np.int64)
    best_scores = np.full((count, k), -np.inf, dtype=np.float32)
    offset = 0
    for given in chunks:
        chunk = np.ascontiguousarray(given, dtype=np.float32)
        if chunk.shape[1] != queries.shape[1]:
            raise CorpusError(f"The queries have dimension {queries.shape[1]}, the stored vectors {chunk.shape[1]}.")
        take = min(k, len(chunk))
        for start in range(0, count, QUERY_BLOCK):
            block = slice(start, start + QUERY_BLOCK)
            scores = queries[block] @ chunk.T
            if take < len(chunk):
                candidates = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            else:
                candidates = np.broadcast_to(np.arange(len(chunk)), scores.shape)
            candidate_scores = np.take_along_axis(scores, candidates, axis=1)
            best_rows[block], best_scores[block] = _merge(
                best_rows[block], best_scores[block], candidates + offset, candidate_scores, k
            )
        offset += len(chunk)
    return Hits(best_rows, best_scores)


def search_stored(stored: StoredSet, queries: np.ndarray, k: int) -> tuple[list[list[str]], np.ndarray]:
    """Exact top-k ids and scores per query over a stored set."""
    hits = exact_top_k(queries, (vectors for _, vectors in stored.chunks()), k)
    return _with_ids(stored, hits)


def _with_ids(stored: StoredSet, hits: Hits) -> tuple[list[list[str]], np.ndarray]:
    ids = stored.ids_at(hits.rows[hits.rows >= 0].ravel().tolist())
    return [[ids[row] for row in query_rows if row >= 0] for query_rows in hits.rows.tolist()], hits.scores


def recall_at_k(approximate: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    """Mean share of each query's exact top-k rows that the approximate top-k also found."""
    found = [
        len(set(a[:k]) & set(e[:k]) - {-1}) / max(1, len(set(e[:k]) - {-1}))
        for a, e in zip(approximate, exact, strict=True)
    ]
    return float(np.mean(found))


class VectorIndex:
    """A faiss IVF-Flat index over unit vectors (inner product = cosine), with the rows in stored order."""

    def __init__(self, index, info: dict) -> None:
        self.index, self.info = index, info

    @classmethod
    def build(
        cls,
        chunks: Iterable[np.ndarray],
        rows: int,
        dimension: int,
        *,
        lists: int | None = None,
        probes: int = 16,
        train_rows: int = 100_000,
        seed: int = 0,
    ) -> VectorIndex:
        """Train the coarse quantiser on up to ``train_rows`` vectors, then add every chunk in order."""
        faiss = require("faiss", "An approximate index")
        lists = lists or max(1, min(int(4 * math.sqrt(rows)), rows // 39 or 1))  # faiss wants ≥ 39 points a list
        remaining = iter(chunks)
        first: list[np.ndarray] = []  # the first chunks both train the quantiser and are added afterwards
        for chunk in remaining:
            first.append(np.ascontiguousarray(chunk, dtype=np.float32))
            if sum(len(item) for item in first) >= train_rows:
                break
        sample = np.concatenate(first)
        if len(sample) > train_rows:
            sample = sample[np.random.default_rng(seed).choice(len(sample), train_rows, replace=False)]
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(sample)
        for chunk in [*first, *remaining]:
            index.add(np.ascontiguousarray(chunk, dtype=np.float32))
        index.nprobe = min(probes, lists)
        info = {
            "kind": "faiss IndexIVFFlat (inner product)",
            "lists": lists,
            "probes": index.nprobe,
            "rows": rows,
            "dimension": dimension,
            "built": now(),
        }
        return cls(index, info)

    def search(self, queries: np.ndarray, k: int) -> Hits:
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return Hits(rows.astype(np.int64), scores)

    def measure_recall(self, queries: np.ndarray, exact: Hits, k: int = 10) -> float:
        recall = recall_at_k(self.search(queries, k).rows, exact.rows, k)
        self.info.update({"recall_at_10": round(recall, 4), "recall_queries": len(queries)})
        return recall

    def save(self, folder: Path) -> None:
        faiss = require("faiss", "An approximate index")
        temp = folder / (".tmp-" + INDEX_FILE)
        faiss.write_index(self.index, str(temp))
        temp.replace(folder / INDEX_FILE)
        write_json_atomic(folder / INDEX_INFO, self.info)

    @classmethod
    def load(cls, stored: StoredSet) -> VectorIndex:
        faiss = require("faiss", "An approximate index")
        info_path = stored.folder / INDEX_INFO
        if not info_path.is_file() or not (stored.folder / INDEX_FILE).is_file():
            raise CorpusError(f"{stored.folder} has no index yet: build one with `flagdemo index {stored.folder}`.")
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if info.get("rows") != stored.rows or info.get("dimension") != stored.dimension:
            raise CorpusError(
                f"The index in {stored.folder} was built for another version of the set; build it again."
            )
        try:
            index = faiss.read_index(str(stored.folder / INDEX_FILE))
        except RuntimeError as error:
            raise CorpusError(f"The index in {stored.folder} is damaged ({error}); build it again.") from None
        index.nprobe = int(info["probes"])
        return cls(index, info)


def build_stored_index(
    stored: StoredSet, *, lists: int | None = None, probes: int = 16, check_queries: int = 200, seed: int = 0
) -> VectorIndex:
    """Build, measure (recall@10 against exact for ``check_queries`` stored vectors used as queries) and save."""
    index = VectorIndex.build(
        (vectors for _, vectors in stored.chunks()),
        stored.rows,
        stored.dimension,
        lists=lists,
        probes=probes,
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(stored.rows, min(check_queries, stored.rows), replace=False))
    queries = _rows_of(stored, chosen)
    exact = exact_top_k(queries, (vectors for _, vectors in stored.chunks()), 10)
    index.measure_recall(queries, exact)
    index.save(stored.folder)
    return index


def _rows_of(stored: StoredSet, rows: np.ndarray) -> np.ndarray:
    """The stored vectors of the given sorted row numbers."""
    picked, offset = [], 0
    for _, vectors in stored.chunks():
        inside = rows[(rows >= offset) & (rows < offset + len(vectors))] - offset
        picked.append(vectors[inside])
        offset += len(vectors)
    return np.concatenate(picked)


def search_index(stored: StoredSet, index: VectorIndex, queries: np.ndarray, k: int):
    return _with_ids(stored, index.search(queries, k))
