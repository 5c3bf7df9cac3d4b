"""Two model jobs at once on this CPU: do they slow each other more than running one after the other?

``python -m benchmarks.job_threads [--rounds 3]`` times, side by side in one process, a heavy job (SmolLM2 reranking
8 pairs) and a light job (MiniLM encoding 32 texts):

- one after the other, each with every thread (what one queue slot gave);
- at the same time, each with every thread (oversubscribed: 2 jobs x N threads on N cores);
- at the same time, sharing the threads through ``flagdemo.models.threads.JOB_THREADS`` (what the app does).

It prints the wall time of both jobs and how long the light click waited for its answer, medians over the rounds.
It reports, never asserts (the machine may be shared).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch

from flagdemo.models import threads as thread_budget
from flagdemo.models.embedders import FlagAutoModel
from flagdemo.models.rerankers import FlagAutoReranker

TEXTS = [f"Sentence number {i} is about the weather, the sea and the price of bread in town." for i in range(32)]
PAIRS = [("What do pandas eat?", f"Passage {i}: giant pandas feed almost entirely on bamboo.") for i in range(8)]


def _timed(function: Callable[[], object], shared: bool, out: dict, name: str) -> None:
    with thread_budget.JOB_THREADS.job() if shared else nullcontext():
        function()
    out[name] = time.perf_counter()


def one_round(heavy: Callable[[], object], light: Callable[[], object], policy: str) -> tuple[float, float]:
    """(wall seconds for both jobs, seconds from the light click to its answer) under one policy."""
    threads = thread_budget.JOB_THREADS.total()
    torch.set_num_threads(threads)
    out: dict[str, float] = {}
    started = time.perf_counter()
    if policy == "sequential":  # the light click arrived with the heavy one and waits for it
        _timed(heavy, False, out, "heavy")
        _timed(light, False, out, "light")
    else:
        shared = policy == "shared threads"
        runner = threading.Thread(target=_timed, args=(heavy, shared, out, "heavy"))
        runner.start()
        _timed(light, shared, out, "light")
        runner.join()
    torch.set_num_threads(threads)
    return max(out.values()) - started, out["light"] - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    embedder = FlagAutoModel.from_finetuned("all-MiniLM-L6-v2")
    reranker = FlagAutoReranker.from_finetuned("SmolLM2-135M-Instruct")
    light = lambda: embedder.encode_detailed(TEXTS)  # noqa: E731
    heavy = lambda: reranker.compute_score(PAIRS)  # noqa: E731
    light(), heavy()
    policies = ("sequential", "concurrent, every thread each", "shared threads")
    results: dict[str, list[tuple[float, float]]] = {policy: [] for policy in policies}
    for round_index in range(args.rounds):
        for policy in policies[round_index % 3 :] + policies[: round_index % 3]:
            results[policy].append(one_round(heavy, light, policy))
    print(f"{thread_budget.JOB_THREADS.total()} threads; medians of {args.rounds} rounds")
    for policy, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        light_seconds = statistics.median(r[1] for r in runs)
        print(f"{policy:32s} both jobs {wall:6.2f} s   light click answered after {light_seconds:6.2f} s")


if __name__ == "__main__":
    main()
