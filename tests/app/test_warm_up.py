"""numba's cache folder and the start-up warm-up that compiles UMAP's and ranx's kernels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flagdemo.analysis import fusion, jit, warm_up

ROOT = Path(__file__).resolve().parents[2]


def test_jit_dir_is_set_and_writable():
    folder = os.environ["NUMBA_CACHE_DIR"]
    assert os.path.isdir(folder) and os.access(folder, os.W_OK)


def test_the_folder_falls_back_to_a_temp_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FLAGDEMO_CACHE", str(tmp_path / "cache"))
    assert jit.numba_cache_dir() == tmp_path / "cache" / "numba"
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("FLAGDEMO_CACHE", str(blocked))
    monkeypatch.setattr(jit.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    assert jit.numba_cache_dir() == tmp_path / "tmp" / "flagdemo-numba"


def test_an_operators_choice_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "chosen"))
    jit.configure()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "chosen")


def test_fusion_alone_gives_ranx_a_writable_cache(tmp_path):
    """A process whose first numba user is ranx (Compare before any map) still caches its kernels."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(FLAGDEMO_CACHE=str(tmp_path), PYTHONPATH=str(ROOT))
    code = "from flagdemo.analysis import fusion; import numba; print(numba.config.CACHE_DIR)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / "numba")


def test_the_warm_up_runs_once_and_compiles_every_fusion():
    thread = warm_up.start_warm_up()
    assert warm_up.start_warm_up() is thread
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert fusion.warm_up.cache_info().currsize == len(fusion.METHODS) == 5
    folder = Path(os.environ["NUMBA_CACHE_DIR"])
    cached = {str(path.relative_to(folder)) for path in folder.rglob("*.nbi")}
    for kernel in ("rrf._rrf", "comb_sum._comb_sum", "comb_mnz._comb_mnz", "comb_max._comb_max", "comb_min._comb_min"):
        assert any(name.startswith("fusion_") and kernel in name for name in cached), kernel
    assert any(name.startswith("umap_") for name in cached)


CONCURRENT = """
import threading
import numpy as np
from flagdemo.analysis import fusion, projection

points = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
runs = [{"q": {"a": 1.0, "b": 0.5}}, {"q": {"b": 1.0, "c": 0.2}}]

def maps():
    for seed in range(4):
        projection.project(points, method="umap", n_neighbors=5, seed=seed)

def fusions():
    for _ in range(20):
        for method in fusion.METHODS:
            fusion.fuse(runs, method)

threads = [threading.Thread(target=work) for work in (maps, maps, fusions)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("all answered")
"""


def test_maps_and_fusions_in_several_threads_at_once_do_not_abort_the_server():
    """numba's default threading layer aborts the process when two threads run its parallel kernels at once (two
    visitors' maps, a map beside the warm-up): run in a child process, so an abort fails this test, not the suite."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", CONCURRENT]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert "Concurrent access has been detected" not in out.stderr
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "all answered"
