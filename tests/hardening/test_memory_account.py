"""The resident-memory account adds up to the process's RSS, and the heap-arena cap holds a room's threads to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from flagdemo.engine import Engine
from flagdemo.models.cache import ModelCache
from flagdemo.models.threads import glibc_function, release_freed_memory
from flagdemo.serving.memory import describe_account, resident_account

ROOT = Path(__file__).resolve().parents[2]
linux = pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="the account reads Linux's /proc")


def rss_bytes() -> int:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) * 1024


@linux
def test_the_account_adds_up_to_the_resident_memory_and_sees_a_new_array():
    release_freed_memory()  # earlier tests' freed heap, still resident, could hold the new array without growing
    before = resident_account()
    held = np.ones(64 * 2**20 // 8)  # 64 MB of anonymous memory, touched
    after, rss = resident_account(), rss_bytes()
    assert after["total"] == sum(size for kind, size in after.items() if kind != "total")
    assert abs(after["total"] - rss) <= 0.02 * rss  # read a moment apart: what the interpreter allocated between
    anonymous = next(kind for kind in after if kind.startswith("anonymous"))
    assert after[anonymous] - before[anonymous] >= 60 * 2**20
    assert "resident in all" in describe_account(after)
    del held


THREADS = """
import ctypes, sys, threading
from flagdemo.serving.memory import limit_heap_arenas
print(limit_heap_arenas(), file=sys.stderr)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
start = threading.Barrier(8)
def work():
    start.wait()
    blocks = [libc.malloc(4096) for _ in range(2000)]
    start.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
libc.malloc_stats()
"""


def arenas_used(environment: dict[str, str]) -> tuple[str, int]:
    result = subprocess.run(
        [sys.executable, "-c", THREADS], check=False, cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr.splitlines()[0], sum(line.startswith("Arena ") for line in result.stderr.splitlines())


@linux
@pytest.mark.skipif(glibc_function("mallopt") is None, reason="the arena cap is glibc's (musl has no arenas to cap)")
def test_the_arena_cap_holds_eight_busy_threads_to_two_arenas():
    environment = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    capped, arenas = arenas_used({**environment, "FLAGDEMO_MALLOC_ARENAS": "2"})
    assert (capped, arenas) == ("2", 2)
    uncapped, arenas = arenas_used({**environment, "FLAGDEMO_MALLOC_ARENAS": "0"})
    assert uncapped == "None"
    assert arenas > 2  # glibc's own limit lets busy threads have arenas of their own


@linux
def test_the_models_tab_account_names_a_new_model_and_keeps_adding_up():
    cache = ModelCache()
    engine = Engine(cache=cache)
    cache.get_or_load(("first",), lambda: torch.nn.Linear(8, 8), describe="a first model")

    def account() -> dict[str, int]:
        release_freed_memory()  # as the server does when it goes idle: freed heap is then no longer resident
        rows = engine.memory_rows()
        parts = {row["what"]: row["MB"] for row in rows[:-2]}
        assert rows[-2]["what"] == "resident in all"
        assert abs(sum(parts.values()) - rows[-2]["MB"]) <= len(parts)  # the parts add up, to each row's rounding
        return parts

    before = account()
    assert before["Python, torch, Gradio and the app before the first model loaded"] > 50
    cache.get_or_load(("linear",), lambda: torch.nn.Linear(4096, 4096), describe="a 64 MB layer")  # weights touched
    after = account()
    assert after["model: a 64 MB layer"] == 64
    unattributed = [next(size for what, size in parts.items() if what.startswith("not attributed"))
                    for parts in (before, after)]  # fmt: skip
    assert abs(unattributed[1] - unattributed[0]) <= 16  # the new 64 MB are the model's row, not left unexplained
