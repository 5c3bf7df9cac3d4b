"""Every bad input gets one sentence on stderr and exit status 2: no stack trace, no partial set passed off as done."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.corpus.conftest import REPO, corpus_rows, run_cli, write_csv, write_jsonl, write_parquet


def refused(capsys, *args) -> str:
    status, out, err = run_cli(capsys, *args)
    assert status == 2, (out, err)
    assert "Traceback" not in err and out == ""
    last = err.strip().splitlines()[-1]  # progress lines may come first; the refusal is the last line
    assert last.startswith("flagdemo ") and last.endswith("."), err
    return last


def embed_refused(capsys, source, tmp_path, model, *extra) -> str:
    err = refused(capsys, "embed", source, "--model", model, "--out", tmp_path / "out", *extra)
    manifest = tmp_path / "out" / "manifest.json"
    assert not manifest.exists() or json.loads(manifest.read_text())["complete"] is False
    return err


def test_missing_file(tmp_path, tiny_model, capsys):
    err = embed_refused(capsys, tmp_path / "nowhere.jsonl", tmp_path, tiny_model)
    assert "nowhere.jsonl does not exist" in err


def test_unsupported_file_type(tmp_path, tiny_model, capsys):
    source = tmp_path / "corpus.txt"
    source.write_text("hello\n")
    assert "is not a .jsonl, .csv or .parquet file" in embed_refused(capsys, source, tmp_path, tiny_model)


@pytest.mark.parametrize("writer", [write_jsonl, write_csv, write_parquet], ids=["jsonl", "csv", "parquet"])
def test_wrong_columns_are_named(writer, tmp_path, tiny_model, capsys):
    rows = [{"doc": row["id"], "body": row["text"]} for row in corpus_rows(5)]
    source = writer(tmp_path / f"corpus.{writer.__name__.removeprefix('write_')}", rows)
    err = embed_refused(capsys, source, tmp_path, tiny_model)
    assert "no 'id'" in err and "'doc', 'body'" in err and "--id-field" in err


def test_duplicate_ids(tmp_path, tiny_model, capsys):
    rows = corpus_rows(6)
    rows[4]["id"] = rows[1]["id"]
    err = embed_refused(capsys, write_jsonl(tmp_path / "c.jsonl", rows), tmp_path, tiny_model)
    assert "Row 5 of c.jsonl repeats the id 'doc-0001'" in err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_empty_text(tmp_path, tiny_model, capsys):
    rows = corpus_rows(6)
    rows[2]["text"] = "   "
    err = embed_refused(capsys, write_jsonl(tmp_path / "c.jsonl", rows), tmp_path, tiny_model)
    assert "Row 3 of c.jsonl (id 'doc-0002') has an empty text" in err


def test_bad_json_line(tmp_path, tiny_model, capsys):
    source = tmp_path / "c.jsonl"
    source.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n')
    assert "Line 2 of c.jsonl is not valid JSON" in embed_refused(capsys, source, tmp_path, tiny_model)


def test_corrupt_parquet_input(tmp_path, tiny_model, capsys):
    source = write_parquet(tmp_path / "c.parquet", corpus_rows(20))
    source.write_bytes(source.read_bytes()[:-40])
    assert "c.parquet is not a readable Parquet file" in embed_refused(capsys, source, tmp_path, tiny_model)


def test_unknown_model(tmp_path, corpus_jsonl, capsys):
    err = embed_refused(capsys, corpus_jsonl, tmp_path, str(tmp_path / "no-such-model"))
    assert "does not exist" in err


def test_another_job_in_the_same_folder(tmp_path, tiny_model, corpus_jsonl, capsys):
    assert run_cli(capsys, "embed", corpus_jsonl, "--model", tiny_model, "--out", tmp_path / "out")[0] == 0
    err = refused(capsys, "embed", corpus_jsonl, "--model", tiny_model, "--out", tmp_path / "out", "--shard-rows", "7")
    assert "already holds embeddings from another job: the shard size (10000 then, 7 now)" in err


def test_folder_with_other_files(tmp_path, tiny_model, corpus_jsonl, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert "is not empty and holds no embedding set" in embed_refused(capsys, corpus_jsonl, tmp_path, tiny_model)


def test_ray_missing_says_how_to_install(tmp_path, tiny_model, corpus_jsonl, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as it does where the extra is missing
    monkeypatch.setitem(sys.modules, "ray.data", None)
    err = embed_refused(capsys, corpus_jsonl, tmp_path, tiny_model, "--engine", "ray")
    assert "--engine ray needs the Python package 'ray'" in err and 'pip install "flagdemo[scale]"' in err


@pytest.fixture
def stored(tmp_path, tiny_model, corpus_jsonl, capsys):
    out = tmp_path / "set"
    assert run_cli(capsys, "embed", corpus_jsonl, "--model", tiny_model, "--out", out, "--shard-rows", "20")[0] == 0
    return out


def test_corrupt_shard(stored, tiny_model, capsys):
    shard = stored / "part-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:100])
    assert "The shard part-00001.parquet in" in refused(capsys, "search", stored, "--model", tiny_model, "bread")


def test_missing_shard(stored, tiny_model, capsys):
    (stored / "part-00002.parquet").unlink()
    err = refused(capsys, "search", stored, "--model", tiny_model, "bread")
    assert "The shard part-00002.parquet listed in" in err and "is missing" in err


def test_dimension_not_matching_the_manifest(stored, tiny_model, capsys):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flagdemo.corpus.store import embedding_array

    ids = [f"x{i}" for i in range(20)]
    table = pa.table({"id": ids, "embedding": embedding_array(np.ones((20, 8), dtype=np.float32))})
    pq.write_table(table, stored / "part-00001.parquet")
    err = refused(capsys, "search", stored, "--model", tiny_model, "bread")
    assert "holds vectors of dimension [8], but the manifest says 16" in err


def test_not_a_stored_set(tmp_path, tiny_model, capsys):
    (tmp_path / "empty").mkdir()
    assert "has no manifest.json" in refused(capsys, "search", tmp_path / "empty", "--model", tiny_model, "q")
    assert "does not exist" in refused(capsys, "search", tmp_path / "none", "--model", tiny_model, "q")


def test_search_with_another_model(stored, tiny_dir, capsys):
    err = refused(capsys, "search", stored, "--model", str(tiny_dir / "xlmr-m3"), "bread")
    assert "was embedded with" in err and "search it with that model" in err


def test_no_index_yet(stored, tiny_model, capsys):
    err = refused(capsys, "search", stored, "--model", tiny_model, "--approximate", "bread")
    assert "has no index yet: build one with `flagdemo index" in err


def test_eval_bad_split(beir_folder, tiny_model, capsys):
    err = refused(capsys, "eval", beir_folder, "--model", tiny_model, "--split", "train")
    assert "has no qrels/train.tsv; splits found: dev, test." in err


def test_eval_embeddings_of_another_corpus(beir_folder, stored, tiny_model, capsys):
    err = refused(capsys, "eval", beir_folder, "--model", tiny_model, "--embeddings", stored)
    assert "was not made from" in err


def test_a_real_process_prints_one_sentence(tmp_path, tiny_model):
    """Through the module entry point in a fresh interpreter (as the console script runs it)."""
    rows = corpus_rows(4)
    rows[3]["id"] = rows[0]["id"]
    source = write_jsonl(tmp_path / "dup.jsonl", rows)
    command = [sys.executable, "-m", "flagdemo.cli", "embed", source, "--model", tiny_model, "--out", tmp_path / "o"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"checking {source} …",
        "flagdemo embed: Row 4 of dup.jsonl repeats the id 'doc-0000': every id must be unique.",
    ]


def test_help_lists_every_command(capsys):
    from flagdemo.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert all(command in text for command in ("embed", "search", "index", "eval"))
