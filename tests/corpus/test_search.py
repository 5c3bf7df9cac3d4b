"""Exact chunked top-k against brute force, `flagdemo search`, and the faiss index with its measured recall."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from flagdemo.corpus.search import VectorIndex, exact_top_k, recall_at_k
from tests.corpus.conftest import corpus_rows, run_cli, stored_arrays


def brute_force(queries, matrix, k):
    scores = queries @ matrix.T
    order = np.lexsort((np.broadcast_to(np.arange(len(matrix)), scores.shape), -scores), axis=1)[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def test_exact_top_k_in_uneven_chunks_equals_brute_force():
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((500, 8)).astype(np.float32)
    matrix[250] = matrix[20]  # a tie: the lower row must come first
    queries = np.vstack([rng.standard_normal((29, 8)), matrix[20:21]]).astype(np.float32)
    bounds = [0, 7, 107, 110, 500]  # a chunk smaller than k included
    hits = exact_top_k(queries, (matrix[a:b] for a, b in itertools.pairwise(bounds)), 10)
    rows, scores = brute_force(queries, matrix, 10)
    assert np.array_equal(hits.rows, rows)
    assert np.allclose(hits.scores, scores, atol=1e-5)
    assert hits.rows[-1, 0] == 20 and hits.rows[-1, 1] == 250


def test_k_beyond_the_set_is_padded():
    matrix = np.eye(3, dtype=np.float32)
    hits = exact_top_k(matrix[:1], [matrix], 5)
    assert hits.rows.tolist() == [[0, 1, 2, -1, -1]]


def test_search_command(tmp_path, tiny_model, corpus_jsonl, capsys):
    out = tmp_path / "set"
    assert run_cli(capsys, "embed", corpus_jsonl, "--model", tiny_model, "--out", out, "--shard-rows", "15")[0] == 0
    query = corpus_rows(50)[3]["text"]
    status, text, err = run_cli(capsys, "search", out, query, "-k", "4", "--json")
    assert status == 0, err
    answer = json.loads(text)
    assert answer["search"] == "exact search over 50 rows"
    hits = answer["results"][0]["hits"]
    ids, matrix = stored_arrays(out)
    from flagdemo.engine import Engine

    query_vector = Engine().load_embedder(tiny_model).encode_queries([query])
    rows, scores = brute_force(query_vector.astype(np.float32), matrix, 4)
    assert [hit["id"] for hit in hits] == [ids[row] for row in rows[0]]
    assert hits[0]["id"] == "doc-0003" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert np.allclose([hit["score"] for hit in hits], scores[0], atol=1e-6)

    status, text, _ = run_cli(capsys, "search", out, "--model", tiny_model, query, "-k", "2")
    lines = text.splitlines()
    assert status == 0 and lines[0] == "exact search over 50 rows" and lines[3].split()[-1] == "doc-0003"

    status, text, err = run_cli(capsys, "index", out, "--lists", "2", "--probes", "2", "--check-queries", "20")
    assert status == 0, err
    assert "recall@10 1.000 against exact search on 20 stored vectors used as queries" in text
    status, text, err = run_cli(capsys, "search", out, query, "-k", "3", "--approximate")
    assert status == 0, err
    assert text.startswith("approximate (faiss IndexIVFFlat (inner product), 2 of 2 lists): recall@10 1.000")
    assert text.splitlines()[3].split()[-1] == "doc-0003"


def clustered(count: int, dimension: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dimension))
    points = centres[rng.integers(0, 40, count)] + 0.3 * rng.standard_normal((count, dimension))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_index_recall_is_measured_against_exact():
    vectors = clustered(4000, 32, seed=1)
    chunks = [vectors[i : i + 1000] for i in range(0, 4000, 1000)]
    queries = clustered(100, 32, seed=2)
    exact = exact_top_k(queries, chunks, 10)

    everything = VectorIndex.build(chunks, 4000, 32, lists=16, probes=16)
    assert everything.measure_recall(queries, exact) == 1.0  # every list probed: exact

    few = VectorIndex.build(chunks, 4000, 32, lists=64, probes=1)
    recall = few.measure_recall(queries, exact)
    found = few.search(queries, 10).rows
    independent = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found, exact.rows, strict=True)])
    assert recall == pytest.approx(independent) and 0.2 < recall < 1.0
    assert few.info["recall_at_10"] == round(recall, 4) and few.info["recall_queries"] == 100
    assert recall_at_k(exact.rows, exact.rows) == 1.0
