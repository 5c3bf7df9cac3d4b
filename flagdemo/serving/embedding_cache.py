"""A bounded, thread-safe cache of text embeddings, so a text the app has already encoded is never encoded again.

Key: (model, revision, settings, SHA-256 of the text as the model sees it). "Settings" is everything that changes the
vector: embedder class, pooling, normalisation, ``truncate_dim``, max length, weights/compute dtype, device and the
precision mode, and the mode's instruction (part of the hashed text, since instructions are applied before hashing).
Only the missing texts are encoded, de-duplicated, in one call; a hit returns the very values stored at the first
encode. Note that which texts share a batch changes float rounding in the last bits (≲1e-6), so a text encoded
alone and in a large batch can differ at that level, exactly as in FlagEmbedding itself.

Bounds (least-recently-used eviction): ``FLAGDEMO_EMBED_CACHE_ENTRIES`` (default 200000 vectors) and
``FLAGDEMO_EMBED_CACHE_MB`` (default 256 MiB of vector data). Setting either to 0 disables caching.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from flagdemo.errors import InvalidInputError
from flagdemo.limits import env_number
from flagdemo.models.backends.precision import check_precision, default_precision, with_precision
from flagdemo.models.embedders.base import BaseEmbedder, as_text_list

DEFAULT_MAX_ENTRIES = 200_000
DEFAULT_MAX_MB = 256
MODES = ("query", "passage", "raw")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def embedder_settings(embedder: BaseEmbedder, *, max_length: int, precision: str) -> tuple:
    """Everything besides the text that changes an embedding (the instruction is inside the hashed text)."""
    return (
        type(embedder).__name__,
        embedder.pooling_name,
        embedder.normalize_embeddings,
        embedder.truncate_dim,
        int(max_length),
        str(getattr(embedder, "weights_dtype", embedder.dtype)),
        str(embedder.dtype),
        str(embedder.device),
        precision,
    )


class EmbeddingCache:
    """LRU cache of float32 vectors; ``encode`` is the one entry point the app needs."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_MB * 2**20) -> None:
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes)
        self._vectors: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @classmethod
    def from_env(cls) -> EmbeddingCache:
        entries = env_number("FLAGDEMO_EMBED_CACHE_ENTRIES", DEFAULT_MAX_ENTRIES, integer=False, allow_zero=True)
        megabytes = env_number("FLAGDEMO_EMBED_CACHE_MB", DEFAULT_MAX_MB, integer=False, allow_zero=True)
        return cls(max_entries=int(entries), max_bytes=int(megabytes * 2**20))

    def __len__(self) -> int:
        return len(self._vectors)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()
            self._nbytes = 0

    def encode(
        self,
        embedder: BaseEmbedder,
        texts: list[str] | str,
        *,
        mode: str = "passage",
        max_length: int | None = None,
        batch_size: int | None = None,
        precision: str | None = None,
    ) -> np.ndarray:
        """Dense float32 embeddings (N, D) of ``texts`` as ``encode_detailed(texts, mode=mode)`` gives them, reusing
        every vector already cached; ``precision`` 'bf16' / 'int8' runs the misses in that approximate mode
        (default: ``FLAGDEMO_PRECISION``, else exact fp32)."""
        items, _ = as_text_list(texts, "texts")
        precision = default_precision() if precision is None else check_precision(precision)
        if mode not in MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
        instruction, instruction_format, default_length = embedder._mode_settings(mode)
        seen = embedder._apply_instruction(items, instruction, instruction_format)
        max_length = default_length if max_length is None else max_length
        prefix = (embedder.source.path, embedder.source.revision, embedder_settings(
            embedder, max_length=max_length, precision=precision
        ))  # fmt: skip
        keys = [(*prefix, text_hash(text)) for text in seen]
        found = self._lookup(keys)
        missing = [index for index, vector in enumerate(found) if vector is None]
        if missing:
            unique: dict[tuple, int] = {}  # one encode per distinct text
            for index in missing:
                unique.setdefault(keys[index], index)
            runner = with_precision(embedder, precision)
            computed = runner.encode_detailed(
                [items[index] for index in unique.values()], mode=mode, max_length=max_length, batch_size=batch_size
            ).embeddings
            fresh = {key: np.array(row, dtype=np.float32) for key, row in zip(unique, computed, strict=True)}
            for vector in fresh.values():
                vector.setflags(write=False)
            self._store(fresh)
            found = [fresh[keys[i]] if vector is None else vector for i, vector in enumerate(found)]
        return np.stack(found)

    def _lookup(self, keys: list[tuple]) -> list[np.ndarray | None]:
        found: list[np.ndarray | None] = []
        with self._lock:
            for key in keys:
                vector = self._vectors.get(key)
                if vector is not None:
                    self._vectors.move_to_end(key)
                    self.hits += 1
                else:
                    self.misses += 1
                found.append(vector)
        return found

    def _store(self, fresh: dict[tuple, np.ndarray]) -> None:
        with self._lock:
            for key, vector in fresh.items():
                if key in self._vectors:
                    continue
                self._vectors[key] = vector
                self._nbytes += vector.nbytes
            while self._vectors and (len(self._vectors) > self.max_entries or self._nbytes > self.max_bytes):
                _, evicted = self._vectors.popitem(last=False)
                self._nbytes -= evicted.nbytes


EMBEDDING_CACHE = EmbeddingCache.from_env()
