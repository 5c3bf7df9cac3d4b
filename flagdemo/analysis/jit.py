"""numba, which UMAP (through pynndescent) and ranx compile their kernels with: a writable cache folder, and one
lock around its parallel kernels.

- numba caches compiled functions next to their source unless ``NUMBA_CACHE_DIR`` says otherwise; site-packages is
  read-only on Spaces, so there it compiles everything again in every process and caches nothing. numba reads the
  variable when it is first imported, so every module that imports UMAP or ranx calls :func:`configure` first.
- numba's default threading layer (workqueue) is not thread-safe: two threads in parallel kernels at once (two
  visitors' maps, a map beside a fusion or the start-up warm-up) abort the whole server ("Concurrent access has been
  detected"). Every call into UMAP or ranx holds :data:`PARALLEL_KERNELS`; numba's thread-safe layers need TBB or
  an OpenMP build this project does not install.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

PARALLEL_KERNELS = threading.RLock()


def numba_cache_dir() -> Path:
    """A writable folder for numba's compiled functions: $FLAGDEMO_CACHE/numba, else a temp folder."""
    base = Path(os.environ.get("FLAGDEMO_CACHE", Path.home() / ".cache" / "flagdemo"))
    for candidate in (base / "numba", Path(tempfile.gettempdir()) / "flagdemo-numba"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    return Path(tempfile.mkdtemp(prefix="flagdemo-numba-"))


def configure() -> None:
    """Point numba at :func:`numba_cache_dir` unless the environment already chose a folder."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        os.environ["NUMBA_CACHE_DIR"] = str(numba_cache_dir())
