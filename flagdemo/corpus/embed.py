"""The embed job: an input in, a stored set out, resumable, with progress on stderr.

``embed`` checks the input, then either starts a new set or resumes the one in ``out`` (the manifest says which
shards are whole; they are never written again), then runs the local engine or the Ray pipeline (``ray_job``). Both
hand their vectors, in input order, to the same ``ShardWriter``, so the files are the same whichever engine ran.
Vectors are the engine's ``encode_corpus`` vectors: the model is loaded through ``Engine.load_embedder`` (``job``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from flagdemo.corpus import CorpusError, require
from flagdemo.corpus.inputs import CorpusInput
from flagdemo.corpus.job import EmbedSettings, PassageEncoder, Progress, ShardBuffer, record_encoder
from flagdemo.corpus.ray_job import run_ray
from flagdemo.corpus.store import (
    FORMAT,
    MANIFEST,
    ShardWriter,
    now,
    read_manifest,
    remove_leftovers,
    write_json_atomic,
)

ENGINES = ("local", "ray")
ENCODE_ROWS_PER_BATCH = 8  # the local engine encodes batch_size × this many rows per call, then reports progress


def model_revision(model: str) -> str | None:
    """What pins the weights: the hub commit of a cached hub model, the package and version of a bundled one; None
    for a local folder (its path is the model name)."""
    from importlib import metadata

    from flagdemo.models.sources import resolve_source

    source = resolve_source(model)
    if source.origin == "bundled" and source.entry is not None and source.entry.bundled:
        return f"{source.entry.bundled} {metadata.version(source.entry.bundled)}"
    if source.origin == "hub":
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(source.path, revision=source.revision, local_files_only=True)).name
        except Exception:  # not fully cached (it downloads when loaded): the requested revision is all we know
            return source.revision
    return None


def job_identity(corpus: CorpusInput, rows: int, settings: EmbedSettings) -> dict:
    """What a resumed run must share with the first one, or its shards would not belong together."""
    return {
        "model": settings.model,
        "precision": settings.precision,
        "weights": settings.weights,
        "max_length": settings.max_length,
        "shard_rows": settings.shard_rows,
        "input": {
            **corpus.fingerprint().as_dict(),
            "kind": corpus.kind,
            "id_field": corpus.id_field,
            "text_field": corpus.text_field,
            "rows": rows,
        },
    }


WEIGHTS_WORDS = {
    "fp32": "weights: the checkpoint's own fp32 values (--weights fp16 rounds them as FlagEmbedding does)",
    "fp16": "weights: rounded to fp16 on load, as FlagEmbedding's default (use_fp16=True); the vectors are "
    "FlagEmbedding's, up to ~1e-4 from sentence-transformers' (--weights fp32 keeps the checkpoint's values)",
}


def stored_setting(manifest: dict, key: str):
    """A setting of a store's manifest; stores written before the weights were recorded rounded them to fp16."""
    return manifest.get(key, "fp16" if key == "weights" else None)


def _differences(old: dict, new: dict) -> list[str]:
    names = {
        "model": "the model",
        "precision": "the precision",
        "weights": "the weights",
        "max_length": "the maximum length",
        "shard_rows": "the shard size",
    }
    found = [
        f"{label} ({stored_setting(old, key)!r} then, {new[key]!r} now)"
        for key, label in names.items()
        if stored_setting(old, key) != new[key]
    ]
    old_input, new_input = old.get("input", {}), new["input"]
    if old_input.get("path") != new_input["path"]:
        found.append(f"the input ({old_input.get('path')} then, {new_input['path']} now)")
    elif any(old_input.get(key) != new_input[key] for key in ("size", "mtime_ns", "rows")):
        found.append("the input file, which was changed since")
    elif any(old_input.get(key) != new_input[key] for key in ("kind", "id_field", "text_field")):
        found.append("the id or text field")
    return found


def prepare(corpus: CorpusInput, rows: int, out: Path, settings: EmbedSettings, engine: str) -> tuple[dict, list[str]]:
    """A new manifest, or the one of the interrupted job in ``out`` (refused when it was another job); plus the
    names of leftover files removed."""
    identity = job_identity(corpus, rows, settings)
    if out.exists() and not out.is_dir():
        raise CorpusError(f"--out {out} is a file; give a folder for the embedding set.")
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(out)
    if manifest is None and any(out.iterdir()):
        raise CorpusError(f"--out {out} is not empty and holds no embedding set; give an empty or new folder.")
    if manifest is None or not manifest["shards"]:  # nothing embedded yet: (re)start with these settings
        manifest = {
            "format": FORMAT,
            **identity,
            "revision": None,
            "engine": engine,
            "settings": {},
            "dimension": None,
            "rows": 0,
            "complete": False,
            "created": now(),
            "updated": now(),
            "shards": [],
        }
        write_json_atomic(out / MANIFEST, manifest)
        return manifest, remove_leftovers(out, manifest)
    differences = _differences(manifest, identity)
    if differences:
        raise CorpusError(
            f"{out} already holds embeddings from another job: {'; '.join(differences)} differ. "
            "Use another --out folder, or delete this one to start again."
        )
    return manifest, remove_leftovers(out, manifest)


def embed(
    corpus: CorpusInput,
    out: str | Path,
    settings: EmbedSettings,
    *,
    engine: str = "local",
    ray_address: str | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    stream: TextIO | None = None,
) -> dict:
    """Run (or finish) the job; returns the final manifest. See the module docstring."""
    settings.check()
    if engine not in ENGINES:
        raise CorpusError(f"--engine must be 'local' or 'ray', not {engine!r}.")
    if workers < 1 or gpus_per_worker < 0:
        raise CorpusError("--workers must be at least 1 and --gpus-per-worker at least 0.")
    if engine == "ray":
        require("ray.data", "--engine ray")  # before any work: say how to install it
    stream = stream if stream is not None else sys.stderr
    print(f"checking {corpus.data_file} …", file=stream, flush=True)
    rows = corpus.scan(lambda count: print(f"checked {count:,} rows …", file=stream, flush=True))
    folder = Path(out).expanduser()
    manifest, removed = prepare(corpus, rows, folder, settings, engine)
    if removed:
        print(f"removed {len(removed)} unfinished file(s) of an interrupted run: {', '.join(removed)}", file=stream)
    if manifest["complete"]:
        print(f"{folder} is already complete: {manifest['rows']:,} rows; nothing to do.", file=stream)
        return manifest
    writer = ShardWriter(folder, manifest)
    if writer.rows_done:
        print(f"resuming: {writer.rows_done:,} of {rows:,} rows were already embedded.", file=stream, flush=True)
    manifest["engine"] = engine
    manifest["revision"] = model_revision(settings.model)
    print(WEIGHTS_WORDS[settings.weights], file=stream, flush=True)
    progress = Progress(rows, writer.rows_done, stream)
    if engine == "local":
        run_local(corpus, writer, settings, progress)
    else:
        run_ray(corpus, writer, settings, progress, address=ray_address, workers=workers, gpus=gpus_per_worker)
    progress.report()
    if not manifest["complete"]:  # the input shrank while we read it
        raise CorpusError(f"{corpus.data_file} ended after {manifest['rows']:,} rows, but had {rows:,} when checked.")
    print(f"wrote {manifest['rows']:,} embeddings of dimension {manifest['dimension']} to {folder}", file=stream)
    return manifest


def run_local(corpus: CorpusInput, writer: ShardWriter, settings: EmbedSettings, progress: Progress) -> None:
    encoder = PassageEncoder(settings)
    record_encoder(writer, settings, encoder.description)
    buffer = ShardBuffer(writer, settings.shard_rows, progress.total)
    for ids, texts in corpus.batches(writer.rows_done, size=settings.batch_size * ENCODE_ROWS_PER_BATCH):
        buffer.add(ids, encoder(texts))
        progress.advance(len(ids))
