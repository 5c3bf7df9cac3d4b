"""numba's cache folder and the start-up warm-up that compiles UMAP's and ranx's kernels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flagdemo.analysis import fusion, numba_cache, warm_up

ROOT = Path(__file__).resolve().parents[2]


def test_numba_cache_dir_is_set_and_writable():
    folder = os.environ["NUMBA_CACHE_DIR"]
    assert os.path.isdir(folder) and os.access(folder, os.W_OK)


def test_the_folder_falls_back_to_a_temp_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FLAGDEMO_CACHE", str(tmp_path / "cache"))
    assert numba_cache.numba_cache_dir() == tmp_path / "cache" / "numba"
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("FLAGDEMO_CACHE", str(blocked))
    monkeypatch.setattr(numba_cache.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    assert numba_cache.numba_cache_dir() == tmp_path / "tmp" / "flagdemo-numba"


def test_an_operators_choice_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "chosen"))
    numba_cache.configure()
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
