"""Small corpora in every input format, a BEIR folder made from the labelled set, and helpers to run the command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from flagdemo.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_model(tiny_dir) -> str:
    return str(tiny_dir / "bert-embedder")


def corpus_rows(count: int) -> list[dict]:
    """Short, distinct passages (ids are strings with a number, as in real corpora)."""
    topics = ["bread", "comets", "budgets", "tomatoes", "compilers", "sleep", "trains", "castles"]
    return [
        {"id": f"doc-{i:04d}", "text": f"Passage {i} is about {topics[i % len(topics)]} and little else."}
        for i in range(count)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture
def corpus_jsonl(tmp_path) -> Path:
    return write_jsonl(tmp_path / "corpus.jsonl", corpus_rows(50))


@pytest.fixture(scope="session")
def beir_folder(tmp_path_factory) -> Path:
    """The labelled set as a BEIR folder: 12 queries with test qrels (8 with dev qrels), every passage, half of them
    with a title; one passage shares its id with a query (BEIR leaves such a passage out of that query's results)."""
    from flagdemo.data.datasets import load_retrieval_set

    retrieval = load_retrieval_set()
    folder = tmp_path_factory.mktemp("beir")
    passages = []
    for number, (pid, text) in enumerate(zip(retrieval.passages["id"], retrieval.passages["text"], strict=True)):
        row = {"_id": pid, "text": text}
        if number % 2 == 0:
            row["title"] = f"Note {number}"
        passages.append(row)
    query_ids = list(retrieval.queries["id"][:12])
    passages[5]["_id"] = query_ids[0]
    write_jsonl(folder / "corpus.jsonl", passages)
    write_jsonl(folder / "queries.jsonl", [{"_id": q, "text": retrieval.query_texts[q]} for q in query_ids])
    (folder / "qrels").mkdir()
    for split, chosen in (("test", query_ids), ("dev", query_ids[:8])):
        lines = ["query-id\tcorpus-id\tscore"]
        for q in chosen:
            lines += [f"{q}\t{doc}\t{rel}" for doc, rel in retrieval.judgements[q].items()]
        lines.append(f"{query_ids[0]}\t{query_ids[0]}\t2")  # the passage with the query's own id: judged, dropped
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``flagdemo ARGS`` in this process: (exit status, stdout, stderr)."""
    status = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def stored_arrays(folder: Path) -> tuple[list[str], np.ndarray]:
    from flagdemo.corpus.store import open_stored

    ids, vectors = [], []
    for chunk_ids, chunk in open_stored(folder).chunks():
        ids += chunk_ids
        vectors.append(chunk)
    return ids, np.concatenate(vectors)


def reference_vectors(model: str, texts: list[str], weights: str = "fp32") -> np.ndarray:
    """What the engine's encode_corpus gives for these texts, in one call, with the store's default weights."""
    from flagdemo.engine import Engine

    return np.asarray(Engine(weights=weights).load_embedder(model).encode_corpus(texts), dtype=np.float32)
