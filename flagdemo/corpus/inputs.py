"""Corpus input: a .jsonl, .csv or .parquet file, or a BEIR folder, read as a stream of (id, text) rows.

Rows are read in file order, a batch at a time, so memory does not grow with the corpus. ``scan`` reads the whole
input once before any model runs: it counts the rows (for the progress line and the shard plan) and refuses bad
input with a sentence — missing columns (naming the ones found), missing or duplicate ids, empty texts, a file that
is not what its name says. Only the ids are kept while scanning, to find duplicates.

A BEIR folder is read from its ``corpus.jsonl`` (``_id``, ``title``, ``text``); title and text are joined the way
BEIR's own evaluation does: ``(title + " " + text).strip()`` when the row has a title field, else ``text.strip()``.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flagdemo.corpus import CorpusError, require

FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
BEIR_CORPUS = "corpus.jsonl"
READ_ROWS = 1024  # rows per batch handed out by ``CorpusInput.batches``


@dataclass(frozen=True)
class Fingerprint:
    """What identifies an input file for resuming: the same path, size and modification time."""

    path: str
    size: int
    mtime_ns: int

    def as_dict(self) -> dict:
        return {"path": self.path, "size": self.size, "mtime_ns": self.mtime_ns}


@dataclass(frozen=True)
class CorpusInput:
    """One input and how to read it: ``kind`` 'jsonl' | 'csv' | 'parquet' | 'beir', and its id and text fields."""

    path: Path
    kind: str
    id_field: str
    text_field: str

    @property
    def data_file(self) -> Path:
        return self.path / BEIR_CORPUS if self.kind == "beir" else self.path

    def fingerprint(self) -> Fingerprint:
        stat = self.data_file.stat()
        return Fingerprint(str(self.data_file.resolve()), stat.st_size, stat.st_mtime_ns)

    # ---- reading -----------------------------------------------------------------------------------------------

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[str, str]]:
        """(id, text) of data rows ``start`` to ``stop`` (0-based, stop excluded), each checked."""
        for index, record in enumerate(self._records(start), start=start):
            if stop is not None and index >= stop:
                return
            yield self._row(record, index)

    def batches(self, start: int = 0, stop: int | None = None, size: int = READ_ROWS):
        """Rows ``start`` to ``stop`` as (ids, texts) lists of at most ``size`` rows."""
        ids: list[str] = []
        texts: list[str] = []
        for row_id, text in self.rows(start, stop):
            ids.append(row_id)
            texts.append(text)
            if len(ids) == size:
                yield ids, texts
                ids, texts = [], []
        if ids:
            yield ids, texts

    def records(self, stop: int) -> Iterator[tuple[str, str, dict]]:
        """(id, text, every field of the record) of the first ``stop`` rows: what a map shows on hover and colours
        by (a BEIR row's text is its title and text joined)."""
        for index, record in enumerate(self._records(0, every_field=True)):
            if index >= stop:
                return
            row_id, text = self._row(record, index)
            yield row_id, text, record

    def scan(self, progress=None) -> int:
        """Read everything once and check it (see the module docstring); returns the number of rows."""
        seen: set[str] = set()
        count = 0
        for count, (row_id, _text) in enumerate(self.rows(), start=1):
            if row_id in seen:
                raise CorpusError(f"{self._where(count - 1)} repeats the id {row_id!r}: every id must be unique.")
            seen.add(row_id)
            if progress is not None and count % 100_000 == 0:
                progress(count)
        if count == 0:
            raise CorpusError(f"{self.data_file} holds no rows: there is nothing to embed.")
        return count

    def _records(self, start: int, *, every_field: bool = False) -> Iterator[dict]:
        """Records from data row ``start`` on; JSON Lines and Parquet skip the rows before it without parsing them
        (a Ray read task or a resumed run starts deep into the file). Parquet reads only the id and text columns
        unless ``every_field``."""
        fields = (self.id_field, self.text_field)
        if self.kind in ("jsonl", "beir"):
            yield from _jsonl_records(self.data_file, start)
        elif self.kind == "csv":
            yield from itertools.islice(_csv_records(self.data_file, fields), start, None)
        else:
            yield from _parquet_records(self.data_file, fields, start, every_field=every_field)

    def _row(self, record: dict, index: int) -> tuple[str, str]:
        if self.kind == "beir":
            self._require_fields(record, index, ("_id", "text"))
            title, text = record.get("title"), record["text"]
            if not isinstance(text, str) or (title is not None and not isinstance(title, str)):
                raise CorpusError(f"{self._where(index)} has a title or text that is not a string.")
            text = (title + " " + text).strip() if "title" in record else text.strip()
            row_id = record["_id"]
        else:
            self._require_fields(record, index, (self.id_field, self.text_field))
            row_id, text = record[self.id_field], record[self.text_field]
            if not isinstance(text, str):
                raise CorpusError(f"{self._where(index)} has a {self.text_field!r} that is not a string: {text!r}.")
        if isinstance(row_id, bool) or not isinstance(row_id, str | int) or str(row_id).strip() == "":
            raise CorpusError(f"{self._where(index)} has no usable id ({row_id!r}); every row needs a non-empty id.")
        if not text.strip():
            raise CorpusError(f"{self._where(index)} (id {str(row_id)!r}) has an empty text; remove it or fill it in.")
        return str(row_id), text

    def _require_fields(self, record: dict, index: int, fields: tuple[str, ...]) -> None:
        missing = [name for name in fields if name not in record or record[name] is None]
        if not missing:
            return
        found = ", ".join(repr(name) for name in record) or "none"
        hint = " Name the right ones with --id-field / --text-field." if self.kind != "beir" else ""
        raise CorpusError(
            f"{self._where(index)} has no {' or '.join(repr(m) for m in missing)} field; its fields are {found}.{hint}"
        )

    def _where(self, index: int) -> str:
        return f"Row {index + 1} of {self.data_file.name}"


def open_input(path: str | os.PathLike, *, id_field: str | None = None, text_field: str | None = None) -> CorpusInput:
    """A ``CorpusInput`` for ``path``: a .jsonl / .csv / .parquet file or a BEIR folder (with corpus.jsonl)."""
    location = Path(path).expanduser()
    if location.is_dir():
        if not (location / BEIR_CORPUS).is_file():
            raise CorpusError(f"The folder {path} has no {BEIR_CORPUS}, so it is not a BEIR folder.")
        if id_field or text_field:
            raise CorpusError("A BEIR folder has fixed fields (_id, title, text); drop --id-field / --text-field.")
        return CorpusInput(location, "beir", "_id", "text")
    if not location.exists():
        raise CorpusError(f"The input {path} does not exist.")
    kind = FORMATS.get(location.suffix.lower())
    if kind is None:
        raise CorpusError(f"The input {path} is not a .jsonl, .csv or .parquet file, nor a BEIR folder.")
    return CorpusInput(location, kind, id_field or "id", text_field or "text")


def _jsonl_records(path: Path, start: int = 0) -> Iterator[dict]:
    with path.open("r", encoding="utf-8") as handle:
        skipped = 0
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if skipped < start:
                skipped += 1
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise CorpusError(f"Line {line_number} of {path.name} is not valid JSON ({error.msg}).") from None
            if not isinstance(record, dict):
                raise CorpusError(f"Line {line_number} of {path.name} is not a JSON object with named fields.")
            yield record


def _csv_records(path: Path, fields: tuple[str, ...]) -> Iterator[dict]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open("r", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [name for name in fields if name not in header]
        if missing:
            found = ", ".join(repr(name) for name in header) or "none"
            raise CorpusError(
                f"{path.name} has no {' or '.join(repr(m) for m in missing)} column; its columns are {found}. "
                "Name the right ones with --id-field / --text-field."
            )
        try:
            yield from reader
        except csv.Error as error:
            raise CorpusError(
                f"{path.name} is not a readable CSV file near line {reader.line_num}: {error}."
            ) from None


def _parquet_records(
    path: Path, fields: tuple[str, ...], start: int = 0, *, every_field: bool = False
) -> Iterator[dict]:
    parquet = require("pyarrow.parquet", "Reading Parquet")
    try:
        file = parquet.ParquetFile(path)
        names = file.schema_arrow.names
    except Exception as error:  # pyarrow raises ArrowInvalid / OSError subclasses for damaged files
        raise CorpusError(f"{path.name} is not a readable Parquet file ({error}).") from None
    missing = [name for name in fields if name not in names]
    if missing:
        found = ", ".join(repr(name) for name in names) or "none"
        raise CorpusError(
            f"{path.name} has no {' or '.join(repr(m) for m in missing)} column; its columns are {found}. "
            "Name the right ones with --id-field / --text-field."
        )
    groups, first_row = [], 0  # the row groups from the one holding ``start``, and the row that group begins at
    for group in range(file.num_row_groups):
        rows = file.metadata.row_group(group).num_rows
        if first_row + rows > start or groups:
            groups.append(group)
        else:
            first_row += rows
    try:
        batches = file.iter_batches(
            batch_size=READ_ROWS, row_groups=groups, columns=None if every_field else list(dict.fromkeys(fields))
        )
        records = (record for batch in batches for record in batch.to_pylist())
        yield from itertools.islice(records, start - first_row, None)
    except CorpusError:
        raise
    except Exception as error:
        raise CorpusError(f"{path.name} is damaged and could not be read to the end ({error}).") from None
