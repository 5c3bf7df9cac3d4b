"""The pieces both embed engines use (the local loop in ``embed`` and the Ray pipeline in ``ray_job``): the job's
settings, the passage encoder, the shard buffer that keeps input order, and the progress line.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import TextIO

import numpy as np

from flagdemo.corpus import CorpusError
from flagdemo.corpus.store import ShardWriter


@dataclass(frozen=True)
class EmbedSettings:
    """What decides the vectors (model, precision, max length) and how the work is cut (batch, shard)."""

    model: str
    batch_size: int = 32
    shard_rows: int = 10_000
    backend: str | None = None  # a torch device: cpu, cuda, cuda:1, mps; None picks cuda → mps → cpu
    precision: str = "fp32"
    max_length: int | None = None
    # The checkpoint's own fp32 weights: a store is compared with other tools' (sentence-transformers'); "fp16"
    # rounds them on load, as FlagEmbedding's default and the app do (see flagdemo.models.embedders.base.WEIGHTS).
    weights: str = "fp32"

    def check(self) -> None:
        from flagdemo.models.embedders.base import WEIGHTS  # the model layer (torch) loads only when a job runs

        if self.weights not in WEIGHTS:
            raise CorpusError(f"--weights must be one of {', '.join(WEIGHTS)}, not {self.weights!r}.")
        if self.batch_size < 1 or self.shard_rows < 1:
            raise CorpusError("--batch-size and --shard-rows must be whole numbers of at least 1.")
        if self.max_length is not None and self.max_length < 2:
            raise CorpusError(f"--max-length must be at least 2 tokens, not {self.max_length}.")


class PassageEncoder:
    """The model, loaded once, encoding passages exactly as ``encode_corpus`` does (float32 numpy out)."""

    def __init__(self, settings: EmbedSettings) -> None:
        from flagdemo.engine import Engine
        from flagdemo.models.backends.precision import with_precision

        self.settings = settings
        embedder = Engine(devices=settings.backend, weights=settings.weights).load_embedder(settings.model)
        self.embedder = with_precision(embedder, settings.precision)
        self.description = {
            "class": type(embedder).__name__,
            "pooling": embedder.pooling_name,
            "max_length": settings.max_length or embedder.passage_max_length,
            "device": str(embedder.device),
            "dtype": str(embedder.dtype).removeprefix("torch."),
            "weights_dtype": str(embedder.weights_dtype).removeprefix("torch."),
            "weights_note": embedder.weights_note,
            "source": embedder.source.origin,
        }

    def __call__(self, texts: list[str]) -> np.ndarray:
        vectors = self.embedder.encode_corpus(
            texts, batch_size=self.settings.batch_size, max_length=self.settings.max_length, convert_to_numpy=True
        )
        return dense_vectors(vectors, len(texts))


def dense_vectors(encoded, rows: int) -> np.ndarray:
    """(rows, dimension) float32 from an embedder's output; BGE-M3 gives a dict whose dense part is stored."""
    if isinstance(encoded, dict):
        encoded = encoded["dense_vecs"]
    return np.asarray(encoded, dtype=np.float32).reshape(rows, -1)


class Progress:
    """Rows done, rows/s and time left, one line on stderr at most every ``every`` seconds (and at the end)."""

    def __init__(self, total: int, done: int, stream: TextIO | None = None, every: float = 2.0) -> None:
        self.total, self.done, self.start_done = total, done, done
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.started = self.last = time.monotonic()

    def advance(self, rows: int) -> None:
        self.done += rows
        if time.monotonic() - self.last >= self.every:
            self.report()

    def report(self) -> None:
        self.last = time.monotonic()
        elapsed = max(self.last - self.started, 1e-9)
        rate = (self.done - self.start_done) / elapsed
        eta = _duration((self.total - self.done) / rate) if rate > 0 else "unknown"
        print(
            f"embedded {self.done:,} of {self.total:,} rows ({100 * self.done / self.total:.0f}%), "
            f"{rate:,.1f} rows/s, ETA {eta}",
            file=self.stream,
            flush=True,
        )


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def record_encoder(writer: ShardWriter, settings: EmbedSettings, description: dict) -> None:
    """The settings as the model really ran them, kept in the manifest (written with the next shard)."""
    writer.manifest["settings"] = {**asdict(settings), **description}


class ShardBuffer:
    """Collects (id, vector) rows in input order and hands every full shard (and the last one) to the writer."""

    def __init__(self, writer: ShardWriter, shard_rows: int, total: int) -> None:
        self.writer, self.shard_rows, self.total = writer, shard_rows, total
        self.ids: list[str] = []
        self.vectors: list[np.ndarray] = []
        self.held = 0

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        self.ids.extend(ids)
        self.vectors.append(vectors)
        self.held += len(ids)
        while self.held >= self.shard_rows or (self.held and self.writer.rows_done + self.held >= self.total):
            take = min(self.shard_rows, self.held)
            stacked = np.concatenate(self.vectors) if len(self.vectors) > 1 else self.vectors[0]
            self.writer.write(self.ids[:take], stacked[:take])
            self.ids, rest = self.ids[take:], stacked[take:]
            self.vectors = [rest] if len(rest) else []
            self.held -= take
