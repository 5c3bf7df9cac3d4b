"""A writable folder for numba's compiled kernels, which UMAP (through pynndescent) and ranx both compile with.

numba caches compiled functions next to their source unless ``NUMBA_CACHE_DIR`` says otherwise; site-packages is
read-only on Spaces, so there it compiles everything again in every process and caches nothing. numba reads the
variable when it is first imported, so the modules that import UMAP or ranx call :func:`configure` at import time.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
