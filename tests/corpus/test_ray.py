"""--engine ray on a real local Ray (2 CPUs, one actor): the same files and vectors as the local engine, and a Ray run
that finishes a set the local engine began."""

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


def test_ray_equals_local_and_resumes_a_local_set(local_ray, tmp_path, tiny_model, capsys):
    import pyarrow.parquet as pq

    rows = corpus_rows(45)
    source = write_jsonl(tmp_path / "c.jsonl", rows)
    common = ["--model", tiny_model, "--shard-rows", "10", "--batch-size", "4"]
    assert run_cli(capsys, "embed", source, "--out", tmp_path / "local", *common)[0] == 0
    status, _, err = run_cli(capsys, "embed", source, "--out", tmp_path / "ray", "--engine", "ray", "--workers", "1",
                             *common)  # fmt: skip
    assert status == 0, err
    assert "rows/s" in err

    local_ids, local_vectors = stored_arrays(tmp_path / "local")
    ray_ids, ray_vectors = stored_arrays(tmp_path / "ray")
    assert ray_ids == local_ids == [row["id"] for row in rows]
    assert np.abs(ray_vectors - local_vectors).max() <= 1e-5
    local_manifest = json.loads((tmp_path / "local" / "manifest.json").read_text())
    ray_manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert ray_manifest["engine"] == "ray" and ray_manifest["complete"] is True
    assert ray_manifest["shards"] == local_manifest["shards"]
    assert ray_manifest["settings"]["workers"] == 1
    for shard in local_manifest["shards"]:
        assert pq.read_schema(tmp_path / "ray" / shard["file"]) == pq.read_schema(tmp_path / "local" / shard["file"])

    # A set begun locally (2 of 5 shards) and finished by Ray: Ray reads only the rows not stored yet.
    half = tmp_path / "half"
    half.mkdir()
    for shard in local_manifest["shards"][:2]:
        shutil.copy(tmp_path / "local" / shard["file"], half / shard["file"])
    local_manifest.update(shards=local_manifest["shards"][:2], rows=20, complete=False)
    (half / "manifest.json").write_text(json.dumps(local_manifest))
    status, _, err = run_cli(capsys, "embed", source, "--out", half, "--engine", "ray", *common)
    assert status == 0, err
    assert "resuming: 20 of 45 rows" in err
    half_ids, half_vectors = stored_arrays(half)
    assert half_ids == local_ids and np.abs(half_vectors - local_vectors).max() <= 1e-5
