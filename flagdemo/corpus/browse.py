"""What the app's Projection and Compare tabs need to open big sets in private mode (no gradio here).

The operator names one folder, ``FLAGDEMO_DATA_DIR``; visitors choose among the stored embedding sets and BEIR
folders directly inside it, by name only: a name is looked up in the listing, never joined onto a path, so ``..``,
absolute paths and links that lead out of the folder cannot be opened. Public mode refuses all of it.

A map of up to ``MAX_MAP_POINTS`` points is drawn the way the tools for big embedding sets do: UMAP is fitted on a
sample and the other points are placed with its ``transform`` (the note says so). Its hover texts and colours come
from the records the set was embedded from, when that file lies in the data folder and is unchanged.

Messages name entries, never the server's folders: the data folder's path is cut out of every refusal.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flagdemo import limits
from flagdemo.corpus import CorpusError
from flagdemo.corpus.inputs import BEIR_CORPUS, CorpusInput, open_input
from flagdemo.corpus.store import MANIFEST, open_stored, read_manifest

DATA_DIR_ENV = "FLAGDEMO_DATA_DIR"
MAX_MAP_POINTS = 200_000
FIT_SAMPLE = 5_000
TRANSFORM_CHUNK = 20_000
APP_EMBED_ROWS = 10_000  # the most passages the app embeds itself; bigger corpora are embedded with `flagdemo embed`
MAX_COLOURS = 20
HOVER_CHARS = 120
Progress = Callable[[float, str], None]


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


def find_entry(name: str, kind: str | None = None) -> DataEntry:
    """The listed entry called ``name`` (of ``kind`` if given); any other name (a path, ``..``) is refused."""
    for entry in list_data_dir():
        if entry.name == name and kind in (None, entry.kind):
            return entry
    what = {"embeddings": "stored embedding set", "beir": "BEIR folder"}.get(kind or "", "stored set or BEIR folder")
    raise CorpusError(f"There is no {what} called {str(name)[:80]!r} in the data folder; choose one from the list.")


def entry_path(name: str, kind: str) -> Path:
    """The folder of the listed entry called ``name`` (see ``find_entry``)."""
    return data_dir() / find_entry(name, kind).name


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
    with without_paths():
        return _load_stored(name, max_rows)


def _load_stored(name: str, max_rows: int) -> LoadedSet:
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
    fit_seconds: float = 0.0
    transform_seconds: float = 0.0


def sampled_umap(vectors: np.ndarray, *, sample: int = FIT_SAMPLE, dims: int = 2, n_neighbors: int = 15,
                 min_dist: float = 0.1, seed: int = 42) -> SampledMap:  # fmt: skip
    """UMAP (cosine) fitted on ``sample`` random rows, the others placed with its transform, in chunks."""
    from flagdemo.analysis import jit

    jit.configure()  # before umap, and with it numba, is first imported
    import umap

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
    with warnings.catch_warnings(), jit.PARALLEL_KERNELS:
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        coords[fitted] = reducer.fit_transform(points[fitted])
        fit_seconds = time.perf_counter() - started
        rest = np.setdiff1d(np.arange(count), fitted)
        for start in range(0, len(rest), TRANSFORM_CHUNK):
            rows = rest[start : start + TRANSFORM_CHUNK]
            coords[rows] = reducer.transform(points[rows])
        transform_seconds = time.perf_counter() - started - fit_seconds
    note = (f"UMAP was fitted on a random sample of {len(fitted):,} of {count:,} points; the other "
            f"{count - len(fitted):,} were placed with its transform." if len(rest) else "")  # fmt: skip
    return SampledMap(coords, fitted, note, fit_seconds, transform_seconds)


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


# ---- What the app opens: a map of a stored set or a BEIR folder, a comparison on a BEIR folder ---------------------


@contextlib.contextmanager
def without_paths() -> Iterator[None]:
    """Refusals inside the block name entries, not the server's folders (the data folder's path is cut out)."""
    try:
        yield
    except CorpusError as error:
        message = str(error)
        configured = os.environ.get(DATA_DIR_ENV, "").strip()
        for root in {configured, str(Path(configured).expanduser().resolve())} if configured else ():
            message = message.replace(root.rstrip(os.sep) + os.sep, "").replace(root, "the data folder")
        raise CorpusError(message) from None


def _source_input(name: str) -> tuple[CorpusInput | None, str]:
    """The file the stored set ``name`` was embedded from, if in the data folder and unchanged; else why not."""
    manifest = read_manifest(entry_path(name, "embeddings")) or {}
    source = manifest.get("input", {})
    path = Path(str(source.get("path", "")))
    if not path.is_absolute() or not path.resolve().is_relative_to(data_dir()) or not path.is_file():
        return None, "the file this set was embedded from is not in the data folder"
    stat = path.stat()
    if (stat.st_size, stat.st_mtime_ns) != (source.get("size"), source.get("mtime_ns")):
        return None, "the file this set was embedded from has changed since"
    if source.get("kind") == "beir":
        return open_input(path.parent), ""
    return open_input(path, id_field=source["id_field"], text_field=source["text_field"]), ""


def _texts_input(name: str, kind: str) -> tuple[CorpusInput | None, str]:
    if kind == "beir":
        return open_input(entry_path(name, "beir")), ""
    return _source_input(name)


def colour_columns(name: str, kind: str) -> list[str]:
    """The fields a map of this entry can be coloured by: its records' fields besides the id and the text."""
    with without_paths():
        source, _ = _texts_input(name, kind)
        if source is None:
            return []
        first = next(source.records(1), None)
    skip = {source.id_field, source.text_field}
    return [] if first is None else [key for key in first[2] if key not in skip]


@dataclass
class CorpusMap:
    """A map ready to draw: one coordinate, hover text and colour value (None: one colour) per point."""

    coords: np.ndarray
    hover: list[str]
    colours: list[str] | None
    title: str
    notes: list[str] = field(default_factory=list)


def _shown(value: object) -> str:
    return "(none)" if value is None or value == "" else str(value)


def _colour_values(records: Sequence[dict], column: str) -> list[str]:
    if records and column not in records[0]:
        raise CorpusError(f"The records have no field {column!r}; choose one of the listed columns.")
    values = [_shown(record.get(column)) for record in records]
    distinct = len(set(values))
    if distinct > MAX_COLOURS:
        raise CorpusError(
            f"The column {column!r} has {distinct:,} different values; a map colours by at most {MAX_COLOURS} "
            "(choose a column of categories)."
        )
    return values


def open_map(
    name: str,
    kind: str,
    *,
    model: str | None = None,
    colour_by: str = "",
    max_points: int = MAX_MAP_POINTS,
    sample: int = FIT_SAMPLE,
    seed: int = 42,
    progress: Progress | None = None,
) -> CorpusMap:
    """The map of a stored set (its vectors as stored) or of a BEIR folder (its first passages embedded now with
    ``model``, at most ``APP_EMBED_ROWS``), UMAP fitted on ``sample`` points and the rest transformed."""
    if not 1 <= max_points <= MAX_MAP_POINTS:
        raise CorpusError(f"A map shows between 1 and {MAX_MAP_POINTS:,} points, not {max_points:,}.")
    say = progress or (lambda _fraction, _words: None)
    with without_paths():
        notes: list[str] = []
        if kind == "embeddings":
            say(0.05, f"Reading the stored set {name}")
            loaded = load_stored(name, max_points)
            ids, vectors, model_name = loaded.ids, loaded.vectors, loaded.model
            notes += [loaded.note] if loaded.note else []
            source, why = _source_input(name)
        elif kind == "beir":
            ids, vectors, model_name, source = _embed_beir(name, model, min(max_points, APP_EMBED_ROWS), notes, say)
            why = ""
        else:
            raise CorpusError(f"Choose a stored set or a BEIR folder, not {kind!r}.")
        hover, colours = [str(row_id) for row_id in ids], None
        if source is not None:
            records = list(source.records(len(ids)))
            if [row_id for row_id, _, _ in records] != ids:
                raise CorpusError(f"The records of {name} are not in the order they were embedded in.")
            hover = [f"{row_id}: {text[:HOVER_CHARS]}{'…' if len(text) > HOVER_CHARS else ''}"
                     for row_id, text, _ in records]  # fmt: skip
            colours = _colour_values([record for _, _, record in records], colour_by) if colour_by else None
        elif colour_by:
            raise CorpusError(f"The map cannot colour by {colour_by!r}: {why}.")
        else:
            notes.append(f"Hover shows ids only: {why}.")
        say(0.5, f"Fitting UMAP on {min(sample, len(ids)):,} of {len(ids):,} points")
        fitted = sampled_umap(vectors, sample=sample, seed=seed, n_neighbors=min(15, max(2, len(ids) - 2)))
    notes.insert(0, fitted.note or f"UMAP was fitted on all {len(ids):,} points.")
    title = f"{name} · {model_name} · {len(ids):,} points"
    return CorpusMap(fitted.coords, hover, colours, title, notes)


def _embed_beir(name: str, model: str | None, cap: int, notes: list[str], say: Progress):
    from flagdemo.corpus.job import EmbedSettings, PassageEncoder

    if not model:
        raise CorpusError("Choose the embedder that should embed the BEIR folder's passages.")
    corpus = open_input(entry_path(name, "beir"))
    rows = [(row_id, text) for row_id, text, _ in corpus.records(cap + 1)]
    if len(rows) > cap:
        rows = rows[:cap]
        notes.append(
            f"Only the first {cap:,} passages were embedded here; for a bigger map, store the folder's embeddings "
            "with `flagdemo embed` and open the stored set."
        )
    encoder = PassageEncoder(EmbedSettings(model=model))
    parts, step = [], 256
    for start in range(0, len(rows), step):
        say(0.05 + 0.4 * start / len(rows), f"Embedding passages {start + 1:,} to {min(start + step, len(rows)):,}")
        parts.append(encoder([text for _, text in rows[start : start + step]]))
    return [row_id for row_id, _ in rows], np.concatenate(parts), model, corpus


def beir_splits(name: str) -> list[str]:
    """The qrels splits of the BEIR folder ``name`` (``qrels/<split>.tsv``)."""
    with without_paths():
        qrels = entry_path(name, "beir") / "qrels"
    return sorted(path.stem for path in qrels.glob("*.tsv")) if qrels.is_dir() else []


def _stored_for(corpus_file: Path, model: str) -> str | None:
    """A complete stored set in the data folder embedded from ``corpus_file`` with ``model``, by name."""
    for entry in list_data_dir():
        if entry.kind == "embeddings" and entry.model == model:
            manifest = read_manifest(data_dir() / entry.name) or {}
            if manifest.get("input", {}).get("path") == str(corpus_file.resolve()):
                return entry.name
    return None


@dataclass
class BeirComparison:
    """One row per embedder: where its passage vectors came from, the four measures, the seconds it took."""

    table: pd.DataFrame
    queries: int
    split: str


def compare_on_beir(name: str, models: Sequence[str], *, split: str = "test", progress: Progress | None = None):
    """Evaluate each embedder on the BEIR folder ``name`` (``beir.evaluate``): with its stored set from the data
    folder when there is one, else by embedding the corpus now (at most ``APP_EMBED_ROWS`` passages)."""
    from flagdemo.corpus.beir import MEASURES, evaluate

    say = progress or (lambda _fraction, _words: None)
    rows, queries = [], 0
    with without_paths():
        folder = entry_path(name, "beir")
        for number, model in enumerate(dict.fromkeys(models)):
            stored = _stored_for(folder / BEIR_CORPUS, model)
            if stored is None:
                passages = sum(1 for _ in open_input(folder).records(APP_EMBED_ROWS + 1))
                if passages > APP_EMBED_ROWS:
                    raise CorpusError(
                        f"{name} holds more than {APP_EMBED_ROWS:,} passages: store their embeddings with "
                        f"{model} first (`flagdemo embed`), then compare here."
                    )
            say(0.05 + 0.9 * number / len(models), f"Evaluating {model} on {name}")
            started = time.perf_counter()
            result = evaluate(folder, model=model, embeddings=None if stored is None else str(data_dir() / stored),
                              split=split, say=lambda _words: None)  # fmt: skip
            seconds = time.perf_counter() - started
            queries = result["queries"]
            source = f"stored set {stored}" if stored else "embedded now"
            rows.append({"embedder": model, "passage vectors": source, **{m: result[m] for m in MEASURES},
                         "seconds": seconds})  # fmt: skip
    return BeirComparison(pd.DataFrame(rows), queries, split)
