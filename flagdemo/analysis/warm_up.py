"""Compile numba's kernels at start-up, in one background thread, before a visitor's first map or fusion needs them.

In a fresh process on 2 cores with an empty numba cache, UMAP's first fit compiled for ~20 s and ranx's first
reciprocal rank fusion for ~30 s (CombMNZ ~5 s more); the page's own examples of the Map and Compare tabs paid
that inside the first visitor's wait. numba's cache (:mod:`flagdemo.analysis.jit`) keeps later processes
quicker, but a Space without persistent storage starts empty every time.
"""

from __future__ import annotations

import logging
import threading

from flagdemo.analysis import fusion, projection

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_threads: list[threading.Thread] = []


def warm_up() -> None:
    """UMAP first (the Map tab comes before Compare on the page), then every fusion method ranx offers here."""
    projection.warm_up()
    for method in fusion.METHODS:
        fusion.warm_up(method)


def start_warm_up() -> threading.Thread:
    """Start :func:`warm_up` in a daemon thread (once per process) and return it."""
    with _lock:
        if not _threads:

            def run() -> None:
                try:
                    warm_up()
                except Exception:
                    logger.exception("compiling numba's kernels in advance failed; the first map or fusion is slower")

            thread = threading.Thread(target=run, name="numba-warm-up", daemon=True)
            thread.start()
            _threads.append(thread)
        return _threads[0]
