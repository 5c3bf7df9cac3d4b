"""Warm time of the Similarity handler with the default model (the app's own code path, no server).

Run from a checkout: ``python benchmarks/warm_handler.py [repeats]``. It prints the median and best of the warm
calls after one cold call, so two checkouts can be compared side by side in one shell.
"""

from __future__ import annotations

import statistics
import sys
import time


def similarity_handler():
    """The checkout's Similarity handler: the tab module's function, or the older Handlers method."""
    from flagdemo.engine import Engine

    engine = Engine()
    try:
        from flagdemo.ui.tabs import similarity

        return lambda: similarity.similarity(engine)
    except ImportError:
        from flagdemo.ui import Handlers

        return Handlers(engine).similarity


def main(repeats: int = 30) -> None:
    run = similarity_handler()
    run()  # cold: loads the model
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    print(
        f"warm /similarity handler: median {statistics.median(seconds) * 1000:.1f} ms, "
        f"best {min(seconds) * 1000:.1f} ms over {repeats} calls"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
