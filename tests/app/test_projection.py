"""Projections: shapes, seeding, queries in the same map, and small corpora that fall back and say so."""

from __future__ import annotations

import numpy as np
import pytest

from flagdemo.analysis import projection
from flagdemo.errors import EmptyInputError, InvalidInputError


@pytest.fixture(scope="module")
def clusters():
    """Two well-separated clusters of 12 points each in 16 dimensions."""
    rng = np.random.default_rng(1)
    centres = np.zeros((2, 16))
    centres[0, 0], centres[1, 1] = 5.0, 5.0
    points = np.vstack([centres[i] + rng.normal(scale=0.3, size=(12, 16)) for i in range(2)])
    return points.astype(np.float32)


def test_pca_is_exact_on_a_plane():
    points = np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], dtype=float)
    result = projection.project(points, method="pca", dims=2)
    assert result.method == "pca"
    np.testing.assert_allclose(np.linalg.norm(result.coords, axis=1), 1.0, atol=1e-6)
    assert sum(result.params["explained_variance"]) == pytest.approx(1.0)


def test_umap_is_seeded_and_places_queries(clusters):
    first = projection.project(clusters, method="umap", n_neighbors=5, seed=7, queries=clusters[:2] + 0.01)
    again = projection.project(clusters, method="umap", n_neighbors=5, seed=7, queries=clusters[:2] + 0.01)
    assert first.coords.shape == (24, 2) and first.query_coords.shape == (2, 2)
    np.testing.assert_allclose(first.coords, again.coords)
    np.testing.assert_allclose(first.query_coords, again.query_coords)
    assert "fitting them with the corpus" in first.note
    # The clusters stay apart: every point is nearer its own cluster's centre.
    a, b = first.coords[:12].mean(axis=0), first.coords[12:].mean(axis=0)
    assert all(np.linalg.norm(p - a) < np.linalg.norm(p - b) for p in first.coords[:12])
    assert np.linalg.norm(first.query_coords[0] - a) < np.linalg.norm(first.query_coords[0] - b)


def test_umap_in_3d(clusters):
    assert projection.project(clusters, dims=3, n_neighbors=5).coords.shape == (24, 3)


def test_umap_shrinks_n_neighbors_for_small_corpora(clusters):
    result = projection.project(clusters[:8], method="umap", n_neighbors=15)
    assert result.method == "umap"
    assert result.params["n_neighbors"] == 7
    assert "n_neighbors lowered from 15 to 7" in result.note


def test_tiny_corpus_falls_back_to_pca_and_says_so(clusters):
    result = projection.project(clusters[:3], method="umap", dims=3)
    assert result.method == "pca"
    assert "UMAP needs at least" in result.note
    assert result.coords.shape == (3, 3)
    assert "Only 2 independent direction" in result.note  # 3 points span at most a plane: third axis is 0
    np.testing.assert_allclose(result.coords[:, 2], 0.0)


def test_tsne_lowers_perplexity_and_fits_queries_with_the_corpus(clusters):
    result = projection.project(clusters[:10], method="t-SNE", perplexity=30, queries=clusters[10:12])
    assert result.method == "tsne"
    assert result.coords.shape == (10, 2) and result.query_coords.shape == (2, 2)
    assert "perplexity lowered" in result.note and "took part in the fit" in result.note


def test_bad_arguments_are_sentences(clusters):
    with pytest.raises(InvalidInputError, match="choose one of umap, pca, tsne"):
        projection.project(clusters, method="mds")
    with pytest.raises(InvalidInputError, match="2 or 3 dimensions"):
        projection.project(clusters, dims=4)
    with pytest.raises(EmptyInputError):
        projection.project(np.zeros((0, 4)))


def test_a_single_point_sits_at_the_origin():
    result = projection.project(np.ones((1, 8)), method="umap", queries=np.zeros((1, 8)))
    np.testing.assert_allclose(result.coords, [[0.0, 0.0]])
    assert result.query_coords.shape == (1, 2)
    assert "Only 0 independent direction" in result.note
