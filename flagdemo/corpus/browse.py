"""What the app's Projection and Compare tabs need to open big sets in private mode (no gradio here).

The operator names one folder, ``FLAGDEMO_DATA_DIR``; visitors choose among the stored embedding sets and BEIR
folders directly inside it, by name only: a name is looked up in the listing, never joined onto a path, so ``..``,
absolute paths and links that lead out of the folder cannot be opened. Public mode refuses all of it.

A map of up to ``MAX_MAP_POINTS`` points is drawn the way the tools for big embedding sets do: UMAP is fitted on a
sample and the other points are placed with its ``transform`` (the note says so).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flagdemo import limits
from flagdemo.corpus import CorpusError
from flagdemo.corpus.inputs import BEIR_CORPUS
from flagdemo.corpus.store import MANIFEST, open_stored, read_manifest

DATA_DIR_ENV = "FLAGDEMO_DATA_DIR"
MAX_MAP_POINTS = 200_000
FIT_SAMPLE = 5_000
TRANSFORM_CHUNK = 20_000


@dataclass(frozen=True)
class DataEntry:
    """One openable item of the data folder: ``kind`` 'embeddings' (a complete stored set) or 'beir'."""

    name: str
    kind: str
    rows: int | None = None
    model: str | None = None
    dimension: int | None = None

    @property
    def label(self) -> str:
        if self.kind == "beir":
            return f"{self.name} (BEIR folder)"
        return f"{self.name} ({self.rows:,} × {self.dimension}, {self.model})"


def data_dir() -> Path:
    """The configured data folder, or a sentence saying why there is none to open."""
    if limits.public_mode():
        raise CorpusError("Opening stored sets is switched off on this public app.")
    configured = os.environ.get(DATA_DIR_ENV, "").strip()
    if not configured:
        raise CorpusError(f"No data folder is configured: set {DATA_DIR_ENV} to a folder of stored sets.")
    root = Path(configured).expanduser().resolve()
    if not root.is_dir():
        raise CorpusError(f"The data folder set in {DATA_DIR_ENV} does not exist.")
    return root


def list_data_dir() -> list[DataEntry]:
    """Complete stored sets and BEIR folders directly inside the data folder, by name; anything else is skipped."""
    root = data_dir()
    entries = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.is_dir() or not path.resolve().is_relative_to(root):
            continue
        if (path / MANIFEST).is_file():
            try:
                manifest = read_manifest(path)
            except CorpusError:
                continue
            if manifest and manifest.get("complete"):
                entries.append(DataEntry(path.name, "embeddings", manifest["rows"], manifest["model"],
                                         manifest["dimension"]))  # fmt: skip
        elif (path / BEIR_CORPUS).is_file():
            entries.append(DataEntry(path.name, "beir"))
    return entries


def entry_path(name: str, kind: str) -> Path:
    """The folder of the listed entry called ``name``; any other name (a path, ``..``) is refused."""
    for entry in list_data_dir():
        if entry.name == name and entry.kind == kind:
            return data_dir() / entry.name
    what = "stored embedding set" if kind == "embeddings" else "BEIR folder"
    raise CorpusError(f"There is no {what} called {name!r} in the data folder; choose one from the list.")


@dataclass
class LoadedSet:
    """The first ``len(ids)`` rows of a stored set, and a note when that is not all of it."""

    ids: list[str]
    vectors: np.ndarray
    total_rows: int
    model: str
    note: str = ""


def load_stored(name: str, max_rows: int = MAX_MAP_POINTS) -> LoadedSet:
    """At most ``max_rows`` rows of the stored set ``name``, read shard by shard."""
    if max_rows < 1:
        raise CorpusError("At least one row must be loaded.")
    stored = open_stored(entry_path(name, "embeddings"))
    ids: list[str] = []
    parts: list[np.ndarray] = []
    for chunk_ids, vectors in stored.chunks():
        room = max_rows - len(ids)
        ids += chunk_ids[:room]
        parts.append(vectors[:room])
        if len(ids) >= max_rows:
            break
    note = "" if len(ids) == stored.rows else f"Showing the first {len(ids):,} of {stored.rows:,} rows."
    return LoadedSet(ids, np.concatenate(parts), stored.rows, stored.model, note)


@dataclass
class SampledMap:
    coords: np.ndarray
    fitted_rows: np.ndarray  # which rows the map was fitted on; the rest were transformed
    note: str


def sampled_umap(vectors: np.ndarray, *, sample: int = FIT_SAMPLE, dims: int = 2, n_neighbors: int = 15,
                 min_dist: float = 0.1, seed: int = 42) -> SampledMap:  # fmt: skip
    """UMAP (cosine) fitted on ``sample`` random rows, the others placed with its transform, in chunks."""
    import umap

    from flagdemo import projection  # noqa: F401 - sets numba's cache folder before UMAP compiles

    points = np.asarray(vectors, dtype=np.float32)
    count = len(points)
    if count > MAX_MAP_POINTS:
        raise CorpusError(f"A map shows at most {MAX_MAP_POINTS:,} points; {count:,} were given.")
    if count <= n_neighbors + 1:
        raise CorpusError(f"UMAP needs more than {n_neighbors + 1} points; {count} were given.")
    fitted = np.sort(np.random.default_rng(seed).choice(count, min(sample, count), replace=False))
    reducer = umap.UMAP(n_components=dims, n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine",
                        random_state=seed)  # fmt: skip
    coords = np.empty((count, dims), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coords[fitted] = reducer.fit_transform(points[fitted])
        rest = np.setdiff1d(np.arange(count), fitted)
        for start in range(0, len(rest), TRANSFORM_CHUNK):
            rows = rest[start : start + TRANSFORM_CHUNK]
            coords[rows] = reducer.transform(points[rows])
    note = (f"UMAP was fitted on a random sample of {len(fitted):,} of {count:,} points; the other "
            f"{count - len(fitted):,} were placed with its transform." if len(rest) else "")  # fmt: skip
    return SampledMap(coords, fitted, note)


def map_figure(coords: np.ndarray, hover: list[str], colour: list[str] | None = None, title: str = ""):
    """A WebGL (``scattergl``) scatter of up to ``MAX_MAP_POINTS`` points: one trace per colour value, hover text."""
    import plotly.graph_objects as go

    if len(coords) > MAX_MAP_POINTS or len(hover) != len(coords):
        raise CorpusError(f"A map needs one hover text per point and at most {MAX_MAP_POINTS:,} points.")
    groups = np.asarray(colour if colour is not None else [""] * len(coords), dtype=object)
    figure = go.Figure()
    for value in dict.fromkeys(groups.tolist()):
        rows = np.flatnonzero(groups == value)
        figure.add_trace(go.Scattergl(x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=str(value),
                                      text=[hover[row] for row in rows], hoverinfo="text",
                                      marker={"size": 3 if len(coords) > 20_000 else 6}))  # fmt: skip
    figure.update_layout(title=title, showlegend=colour is not None, xaxis_title="UMAP 1", yaxis_title="UMAP 2")
    return figure
