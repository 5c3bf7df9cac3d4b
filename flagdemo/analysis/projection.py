"""2D / 3D maps of embeddings with UMAP (default), PCA or t-SNE, seeded so the same input gives the same map.

UMAP is JIT-compiled by numba: the first fit in a fresh process takes 10-20 s. Two things keep that off the user's
path: numba's cache goes to a writable folder (:mod:`flagdemo.analysis.jit`, which also serialises the fits), and
:mod:`flagdemo.analysis.warm_up` compiles it in a background thread at app start-up. Corpora too small for a
method are still drawn: parameters shrink or the method falls back to PCA, and the result says so in ``note``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from flagdemo.analysis import jit
from flagdemo.errors import EmptyInputError, InvalidInputError

METHODS = ("umap", "pca", "tsne")
MIN_UMAP_POINTS = 6

jit.configure()  # before umap, and with it numba, is first imported


@dataclass
class Projection:
    """Coordinates of the corpus (and of queries placed in the same map), with what was actually run."""

    coords: np.ndarray
    method: str
    params: dict = field(default_factory=dict)
    query_coords: np.ndarray | None = None
    note: str = ""


def _umap(n_components: int, n_neighbors: int, min_dist: float, seed: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap

    return umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        metric="cosine",
        random_state=seed,
        init="spectral",
    )


def project(
    embeddings: np.ndarray,
    *,
    method: str = "umap",
    dims: int = 2,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    perplexity: float = 30.0,
    seed: int = 42,
    queries: np.ndarray | None = None,
) -> Projection:
    """Project ``embeddings`` (N, D) to ``dims`` coordinates; ``queries`` (M, D) are placed in the same map.

    PCA fits on the corpus and transforms the queries (the map does not move because of them). UMAP and t-SNE fit
    queries and corpus together: t-SNE has no transform, and UMAP's puts new points far from their neighbours when
    the corpus is small.
    """
    method = method.lower().replace("-", "")
    if method not in METHODS:
        raise InvalidInputError(f"Unknown projection method {method!r}: choose one of umap, pca, tsne.")
    if dims not in (2, 3):
        raise InvalidInputError(f"A map has 2 or 3 dimensions, not {dims}.")
    corpus = np.asarray(embeddings, dtype=np.float32)
    if corpus.ndim != 2 or len(corpus) == 0:
        raise EmptyInputError("There is nothing to project: give at least one text.")
    extra = None if queries is None or len(queries) == 0 else np.asarray(queries, dtype=np.float32)
    notes: list[str] = []
    n = len(corpus)

    if method == "umap" and n < MIN_UMAP_POINTS:
        notes.append(f"UMAP needs at least {MIN_UMAP_POINTS} points to build a neighbour graph; {n} given, so PCA.")
        method = "pca"
    if method == "tsne" and n < 4:
        notes.append(f"t-SNE needs at least 4 points; {n} given, so PCA.")
        method = "pca"

    if method == "pca":
        coords, query_coords, params = _pca(corpus, extra, dims, notes)
    elif method == "umap":
        used_neighbors = max(2, min(int(n_neighbors), n - 1))
        if used_neighbors != n_neighbors:
            notes.append(f"n_neighbors lowered from {n_neighbors} to {used_neighbors} for {n} points.")
        reducer = _umap(dims, used_neighbors, float(min_dist), int(seed))
        joined = corpus if extra is None else np.vstack([corpus, extra])
        with warnings.catch_warnings(), jit.PARALLEL_KERNELS:
            warnings.simplefilter("ignore")
            fitted = reducer.fit_transform(joined)
        coords, query_coords = fitted[:n], (fitted[n:] if extra is not None else None)
        if extra is not None:
            notes.append(
                "UMAP placed the queries by fitting them with the corpus: its transform of new points lands them "
                "far from their neighbours on small corpora."
            )
        params = {"n_neighbors": used_neighbors, "min_dist": float(min_dist), "seed": int(seed), "metric": "cosine"}
    else:
        from sklearn.manifold import TSNE

        joined = corpus if extra is None else np.vstack([corpus, extra])
        used_perplexity = float(min(perplexity, (len(joined) - 1) / 3))
        if used_perplexity != perplexity:
            notes.append(f"perplexity lowered from {perplexity:g} to {used_perplexity:.3g} for {len(joined)} points.")
        tsne = TSNE(n_components=dims, perplexity=used_perplexity, random_state=int(seed), init="pca", metric="cosine")
        fitted = tsne.fit_transform(joined)
        coords, query_coords = fitted[:n], (fitted[n:] if extra is not None else None)
        if extra is not None:
            notes.append("t-SNE cannot place new points in a fitted map, so the queries took part in the fit.")
        params = {"perplexity": used_perplexity, "seed": int(seed)}

    return Projection(
        coords=np.asarray(coords, dtype=np.float64),
        method=method,
        params=params,
        query_coords=None if query_coords is None else np.asarray(query_coords, dtype=np.float64),
        note=" ".join(notes),
    )


def _pca(corpus: np.ndarray, extra: np.ndarray | None, dims: int, notes: list[str]):
    """PCA, padded with zero columns when the points span fewer directions than dimensions asked for.

    n centred points span at most n - 1 directions, so a component beyond that would only show rounding noise.
    """
    from sklearn.decomposition import PCA

    usable = min(dims, len(corpus) - 1, corpus.shape[1])
    if usable < dims:
        notes.append(f"Only {usable} independent direction(s) in {len(corpus)} point(s): the other axes are 0.")

    def pad(values: np.ndarray) -> np.ndarray:
        return np.hstack([values, np.zeros((len(values), dims - usable))])

    if usable == 0:
        return pad(np.zeros((len(corpus), 0))), (pad(np.zeros((len(extra), 0))) if extra is not None else None), {}
    pca = PCA(n_components=usable)
    coords = pca.fit_transform(corpus)
    query_coords = pca.transform(extra) if extra is not None else None
    params = {"explained_variance": [float(v) for v in pca.explained_variance_ratio_]}
    return pad(coords), (pad(query_coords) if query_coords is not None else None), params


def warm_up() -> None:
    """Fit a tiny UMAP once so numba compiles (or loads from its cache) before a user asks for a map."""
    points = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    queries = points[:2] + 0.01
    for dims in (2, 3):
        project(points, method="umap", dims=dims, n_neighbors=5, queries=queries)


def colour_groups(colour_by: str, labels: list[str], vectors: np.ndarray) -> list[str]:
    """Colours: the given labels, k-means clusters (k = number of distinct labels, at least 2), or one colour."""
    if colour_by not in ("label", "cluster", "none"):
        raise InvalidInputError(f"Colour by must be one of label, cluster, relevance or none, not {colour_by!r}.")
    if colour_by == "cluster" and len(vectors) >= 2:
        from sklearn.cluster import KMeans

        k = min(len(vectors), max(2, len(set(labels))))
        clusters = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors)
        return [f"cluster {c + 1}" for c in clusters]
    if colour_by == "none":
        return ["text"] * len(labels)
    return list(labels)
