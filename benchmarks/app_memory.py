"""Resident memory of the app process after one default run of every tab (the app's own handlers, no server).

``python benchmarks/app_memory.py`` prints the RSS after each tab, the peak, and what the model cache holds: each
model's weights should be there once, however many tabs and roles used them.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def main() -> None:
    from flagdemo.engine import Engine
    from flagdemo.models.cache import MODEL_CACHE
    from flagdemo.ui import endpoints

    app = endpoints(Engine())
    started = time.perf_counter()
    for name in ("encode", "similarity", "rerank", "layer_sweep", "project", "compare", "models"):
        getattr(app, name)()
        print(f"after {name:12s} RSS {rss_mb():7.0f} MB   ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    for entry in MODEL_CACHE.entries():
        print(f"cached: {entry.describe}  {entry.nbytes / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
