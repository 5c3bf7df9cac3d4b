"""Corpus scale: embed, search and evaluate whole corpora from the command line (``flagdemo embed|search|index|eval``).

- ``inputs``: reads .jsonl / .csv / .parquet files and BEIR folders as a stream of (id, text) rows, and checks them.
- ``store``: the stored set on disk: Parquet shards (``id`` string, ``embedding`` float32 list) plus ``manifest.json``,
  written shard by shard under a temporary name and renamed, so an interrupted job resumes and a half-written shard is
  never read.
- ``embed``: the embedding job, run locally or (``ray_job``) as a Ray Data pipeline; both write through one writer.
- ``search``: exact top-k in chunks with bounded memory, and a faiss index with its recall against exact.
- ``beir``: retrieval (and reranking) on a BEIR folder, a TREC run file and trec_eval's measures.
- ``browse``: what the app needs to open stored sets from a data directory (listing, loading with a row cap, a
  projection fitted on a sample).

pyarrow (and Ray, faiss) come with the ``scale`` extra; ``require`` turns a missing one into a sentence.
"""

from __future__ import annotations

import importlib

from flagdemo.errors import FlagDemoError

INSTALL_HINT = 'pip install "flagdemo[scale]" (or pip install -r requirements-scale.txt)'


class CorpusError(FlagDemoError):
    """Bad corpus input or a stored set that cannot be used; the message says what to do."""


def require(module: str, purpose: str):
    """Import an optional dependency of the scale extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise CorpusError(
            f"{purpose} needs the Python package {module.split('.', maxsplit=1)[0]!r}: {INSTALL_HINT}."
        ) from error
