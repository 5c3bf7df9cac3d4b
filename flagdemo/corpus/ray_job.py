"""``--engine ray``: the embed job as a Ray Data pipeline, on a local Ray or a cluster.

read (one read task per pending shard: the workers read their rows of the input themselves) → ``map_batches`` with
``RayEmbedder``, a callable class that loads the model once per actor, in an actor pool of ``--workers`` actors with
``--gpus-per-worker`` GPUs each → the driver's ``ShardWriter``. The dataset keeps input order, and each row carries
its input row number, checked on arrival, so every row is stored once and in place. The driver writes the shards
(the resumable, atomic part) into ``--out`` on its own disk; the input must be readable at the same path on every
node (a shared filesystem), and every node needs flagdemo installed.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from flagdemo.corpus import CorpusError, require
from flagdemo.corpus.inputs import READ_ROWS, CorpusInput
from flagdemo.corpus.job import EmbedSettings, PassageEncoder, Progress, ShardBuffer, record_encoder
from flagdemo.corpus.store import ShardWriter


def _read_rows(corpus: CorpusInput, start: int, stop: int):
    """One read task: input rows ``start`` to ``stop`` as Arrow tables of row number, id and text."""
    import pyarrow as pa

    row = start
    for ids, texts in corpus.batches(start, stop, size=READ_ROWS):
        numbers = np.arange(row, row + len(ids), dtype=np.int64)
        row += len(ids)
        yield pa.table({"row": numbers, "id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string())})


class RayEmbedder:
    """The map_batches callable: one model per actor, loaded in ``__init__``, reused for every batch.

    ``bound`` makes a subclass carrying the settings, shipped with the class itself: constructor arguments would sit
    in the object store, where a restarted actor may no longer find them.
    """

    settings: EmbedSettings

    def __init__(self) -> None:
        self.encoder = PassageEncoder(self.settings)

    @classmethod
    def bound(cls, settings: EmbedSettings) -> type[RayEmbedder]:
        return type(cls.__name__, (cls,), {"settings": settings})

    def __call__(self, batch: dict) -> dict:
        texts = [str(text) for text in batch["text"]]
        return {"row": batch["row"], "id": batch["id"], "embedding": self.encoder(texts)}


def _shard_source(corpus: CorpusInput, first_row: int, total: int, shard_rows: int):
    data = require("ray.data", "--engine ray")
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class PendingShards(Datasource):
        """The input rows not stored yet, one read task per shard."""

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list:
            tasks = []
            for start in range(first_row, total, shard_rows):
                stop = min(start + shard_rows, total)
                metadata = BlockMetadata(
                    num_rows=stop - start, size_bytes=None, exec_stats=None, input_files=[str(corpus.data_file)]
                )
                tasks.append(ReadTask(functools.partial(_read_rows, corpus, start, stop), metadata))
            return tasks

    return data.read_datasource(PendingShards(), override_num_blocks=max(1, -(-(total - first_row) // shard_rows)))


def connect(address: str | None, workers: int, gpus: float):
    """Join the cluster at ``address``, or start a local Ray sized for the actor pool; True when we started it."""
    ray = require("ray", "--engine ray")
    if ray.is_initialized():
        return False
    try:
        quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(
                num_cpus=workers + 1,
                num_gpus=None if gpus == 0 else int(np.ceil(gpus * workers)),
                include_dashboard=False,
                **quiet,
            )
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise CorpusError(f"Could not start or join {where}: {error}") from None
    return True


def run_ray(
    corpus: CorpusInput,
    writer: ShardWriter,
    settings: EmbedSettings,
    progress: Progress,
    *,
    address: str | None,
    workers: int,
    gpus: float,
) -> None:
    ray = require("ray", "--engine ray")
    started = connect(address, workers, gpus)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        settings_for_workers = settings if gpus == 0 or settings.backend else _on_gpu(settings)
        dataset = _shard_source(corpus, writer.rows_done, progress.total, settings.shard_rows).map_batches(
            RayEmbedder.bound(settings_for_workers),
            batch_size=settings.batch_size * 8,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_gpus=gpus or None,
            num_cpus=1,
        )
        record_encoder(writer, settings_for_workers, {"workers": workers, "gpus_per_worker": gpus})
        buffer = ShardBuffer(writer, settings.shard_rows, progress.total)
        expected = writer.rows_done
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            rows = np.asarray(batch["row"], dtype=np.int64)
            if not np.array_equal(rows, np.arange(expected, expected + len(rows))):
                raise CorpusError(f"Ray returned rows out of order (expected row {expected}, got {rows[:1]}).")
            expected += len(rows)
            buffer.add([str(value) for value in batch["id"]], np.asarray(batch["embedding"], dtype=np.float32))
            progress.advance(len(rows))
    finally:
        if started:
            ray.shutdown()


def _on_gpu(settings: EmbedSettings) -> EmbedSettings:
    from dataclasses import replace

    return replace(settings, backend="cuda")
