"""--engine ray on a real local Ray (2 CPUs, one actor, started once for the session's only Ray test): a Ray run that
finishes a set the local engine began writes the same files and vectors as the local engine."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.corpus.conftest import corpus_rows, run_cli, stored_arrays, write_jsonl

ray = pytest.importorskip("ray", reason="the scale extra (requirements-scale.txt) is not installed")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def test_ray_finishes_a_local_set_with_the_same_files_and_vectors(local_ray, tmp_path, tiny_model, capsys):
    """One Ray run (each starts its own actors, which load the model): a set begun by the local engine (2 of its 5
    shards) is finished by Ray, reading only the rows not stored yet; every shard Ray wrote, the short last one too,
    has the local engine's schema and rows, its vectors within 1e-5 of the local ones."""
    import pyarrow.parquet as pq

    rows = corpus_rows(45)
    source = write_jsonl(tmp_path / "c.jsonl", rows)
    common = ["--model", tiny_model, "--shard-rows", "10", "--batch-size", "4"]
    assert run_cli(capsys, "embed", source, "--out", tmp_path / "local", *common)[0] == 0
    local_ids, local_vectors = stored_arrays(tmp_path / "local")
    local_manifest = json.loads((tmp_path / "local" / "manifest.json").read_text())

    half = tmp_path / "half"
    half.mkdir()
    for shard in local_manifest["shards"][:2]:
        shutil.copy(tmp_path / "local" / shard["file"], half / shard["file"])
    (half / "manifest.json").write_text(
        json.dumps({**local_manifest, "shards": local_manifest["shards"][:2], "rows": 20, "complete": False})
    )
    status, _, err = run_cli(capsys, "embed", source, "--out", half, "--engine", "ray", "--workers", "1", *common)
    assert status == 0, err
    assert "resuming: 20 of 45 rows" in err and "rows/s" in err

    ray_ids, ray_vectors = stored_arrays(half)
    assert ray_ids == local_ids == [row["id"] for row in rows]
    assert np.abs(ray_vectors - local_vectors).max() <= 1e-5
    ray_manifest = json.loads((half / "manifest.json").read_text())
    assert ray_manifest["engine"] == "ray" and ray_manifest["complete"] is True
    assert ray_manifest["shards"] == local_manifest["shards"] and ray_manifest["settings"]["workers"] == 1
    for shard in local_manifest["shards"][2:]:
        assert pq.read_schema(half / shard["file"]) == pq.read_schema(tmp_path / "local" / shard["file"])
