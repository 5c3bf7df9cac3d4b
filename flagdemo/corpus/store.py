"""A stored embedding set: Parquet shards (``id`` string, ``embedding`` list<float32>) plus ``manifest.json``.

Shard ``part-00007.parquet`` holds input rows ``7 * shard_rows`` onward, in input order. A shard is written under a
temporary name, flushed to disk and renamed; only then is it added to the manifest, itself replaced atomically. So
after any interruption (even ``kill -9``) the manifest lists exactly the shards that are whole, a shard file it does
not list is rewritten by the next run, and readers only ever open listed shards. ``complete`` turns true with the
last shard; every reader refuses an incomplete set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flagdemo.corpus import CorpusError, require

MANIFEST = "manifest.json"
FORMAT = "flagdemo-embeddings/1"
TEMP_SUFFIX = ".tmp"


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems cannot open a directory; the rename is still atomic
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_json_atomic(path: Path, payload: dict) -> None:
    """Replace ``path`` with ``payload`` so that a reader sees the old or the new file, never a part of one."""
    temp = path.with_name("." + path.name + TEMP_SUFFIX)
    with temp.open("w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


def read_manifest(folder: Path) -> dict | None:
    """The manifest in ``folder``, None when there is none; a sentence when it is not a flagdemo manifest."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorpusError(f"{path} is not readable JSON ({error}); it is not a flagdemo embedding set.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorpusError(f"{path} is not a flagdemo embedding manifest (format {FORMAT!r}).")
    return manifest


def embedding_array(vectors: np.ndarray):
    """A pyarrow list<float32> array with one row per vector (the shard's ``embedding`` column)."""
    pa = require("pyarrow", "Writing Parquet")
    rows, dimension = vectors.shape
    values = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), type=pa.float32())
    offsets = pa.array(np.arange(0, (rows + 1) * dimension, dimension, dtype=np.int32), type=pa.int32())
    return pa.ListArray.from_arrays(offsets, values)


class ShardWriter:
    """Writes shards in order and keeps the manifest in step (see the module docstring)."""

    def __init__(self, folder: Path, manifest: dict) -> None:
        self.folder = folder
        self.manifest = manifest
        self.parquet = require("pyarrow.parquet", "Writing Parquet")
        self.pa = require("pyarrow", "Writing Parquet")

    @property
    def rows_done(self) -> int:
        return sum(shard["rows"] for shard in self.manifest["shards"])

    def write(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add the next shard (the input rows right after the ones already stored)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(ids):
            raise CorpusError(f"Got {len(ids)} ids but embeddings of shape {vectors.shape}.")
        dimension = self.manifest.get("dimension")
        if dimension is not None and vectors.shape[1] != dimension:
            raise CorpusError(
                f"The model gives {vectors.shape[1]}-dimensional vectors but {self.folder} holds {dimension}-"
                "dimensional ones: it was embedded with other settings. Use another --out folder."
            )
        index = len(self.manifest["shards"])
        first_row = self.rows_done
        name = shard_name(index)
        table = self.pa.table(
            {"id": self.pa.array(list(ids), type=self.pa.string()), "embedding": embedding_array(vectors)}
        )
        temp = self.folder / ("." + name + TEMP_SUFFIX)
        with temp.open("wb") as handle:
            self.parquet.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.folder / name)
        _fsync_dir(self.folder)
        self.manifest["shards"].append({"file": name, "rows": len(ids), "first_row": first_row})
        self.manifest["dimension"] = int(vectors.shape[1])
        self.manifest["rows"] = first_row + len(ids)
        self.manifest["complete"] = self.manifest["rows"] == self.manifest["input"]["rows"]
        self.manifest["updated"] = now()
        write_json_atomic(self.folder / MANIFEST, self.manifest)


def remove_leftovers(folder: Path, manifest: dict) -> list[str]:
    """Delete temporary files and shard files the manifest does not list (an interrupted run's); their names."""
    listed = {shard["file"] for shard in manifest["shards"]}
    removed = []
    for path in folder.iterdir():
        stray_shard = path.name.startswith("part-") and path.suffix == ".parquet" and path.name not in listed
        if path.name.endswith(TEMP_SUFFIX) or stray_shard:
            path.unlink()
            removed.append(path.name)
    return sorted(removed)


@dataclass
class StoredSet:
    """A complete stored set, read one shard at a time."""

    folder: Path
    manifest: dict

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"])

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    def chunks(self, *, with_vectors: bool = True) -> Iterator[tuple[list[str], np.ndarray | None]]:
        """(ids, vectors (rows, dimension) float32) per shard, in row order; every shard checked on the way."""
        parquet = require("pyarrow.parquet", "Reading Parquet")
        columns = ["id", "embedding"] if with_vectors else ["id"]
        for shard in self.manifest["shards"]:
            path = self.folder / shard["file"]
            try:
                table = parquet.read_table(path, columns=columns)
            except FileNotFoundError:
                raise CorpusError(
                    f"The shard {shard['file']} listed in {self.folder}/{MANIFEST} is missing."
                ) from None
            except (
                Exception
            ) as error:  # pyarrow's ArrowInvalid / OSError for a damaged file, KeyError-like for columns
                raise CorpusError(
                    f"The shard {shard['file']} in {self.folder} is damaged or not a shard ({error})."
                ) from None
            if table.num_rows != shard["rows"]:
                raise CorpusError(
                    f"The shard {shard['file']} in {self.folder} has {table.num_rows} rows, the manifest says "
                    f"{shard['rows']}: the set was changed after it was written."
                )
            ids = [str(value) for value in table.column("id").to_pylist()]
            yield ids, (self._vectors(table, shard["file"]) if with_vectors else None)

    def _vectors(self, table, name: str) -> np.ndarray:
        pc = require("pyarrow.compute", "Reading Parquet")
        column = table.column("embedding").combine_chunks()
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != self.dimension).any():
            found = sorted(set(int(value) for value in lengths if value != self.dimension))[:3]
            raise CorpusError(
                f"The shard {name} in {self.folder} holds vectors of dimension {found}, but the manifest says "
                f"{self.dimension}: the set was mixed with another one."
            )
        values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        return values.reshape(len(lengths), self.dimension)

    def ids_at(self, rows: Sequence[int]) -> dict[int, str]:
        """The ids of the given row numbers, reading only the id column of the shards that hold them."""
        wanted = sorted(set(int(row) for row in rows))
        found: dict[int, str] = {}
        position = 0
        shards = self.manifest["shards"]
        parquet = require("pyarrow.parquet", "Reading Parquet")
        for shard in shards:
            first, last = shard["first_row"], shard["first_row"] + shard["rows"]
            inside = []
            while position < len(wanted) and wanted[position] < last:
                inside.append(wanted[position])
                position += 1
            if inside:
                column = parquet.read_table(self.folder / shard["file"], columns=["id"]).column("id")
                for row in inside:
                    found[row] = str(column[row - first].as_py())
        return found


def open_stored(folder: str | os.PathLike) -> StoredSet:
    """The complete stored set in ``folder``, or a sentence saying why it cannot be used."""
    location = Path(folder).expanduser()
    if not location.is_dir():
        raise CorpusError(f"There is no embedding set at {folder}: the folder does not exist.")
    manifest = read_manifest(location)
    if manifest is None:
        raise CorpusError(f"{folder} has no {MANIFEST}, so it is not a flagdemo embedding set.")
    if not manifest.get("complete"):
        raise CorpusError(
            f"The embedding set in {folder} is incomplete: {manifest.get('rows', 0)} of "
            f"{manifest['input']['rows']} rows are embedded. Run the same `flagdemo embed` command again to finish it."
        )
    return StoredSet(location, manifest)
