"""A workshop room against the real app (`make test-load`): 24 students for 90 s on the bundled MiniLM and SmolLM2.

The app runs as `python app.py` in its own process, so its memory is the app's alone. Each student has their own
gradio_client, thinks 3-8 s between clicks, and clicks Encode / Similarity / Projection 70% of the time and
Rerankers / Layer sweep / Compare 30%; about one click in five carries the student's own text, the rest the tab's
example. FLAGDEMO_LOAD_SECONDS shortens the run.

Asserted: no click fails and the app's memory stays under 3 GB. Reported, never asserted (timings depend on the
machine): p50 / p95 / max seconds per kind of work, result-cache hits from the app's request log, and memory idle
(warmed up), peak, and after the room has gone quiet.
"""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
from gradio_client import Client

from flagdemo import serving
from flagdemo.serving.memory import describe_account, resident_account

pytestmark = pytest.mark.load

ROOT = Path(__file__).resolve().parents[2]
STUDENTS = 24
SECONDS = float(os.environ.get("FLAGDEMO_LOAD_SECONDS", "90"))
THINK_SECONDS = (3.0, 8.0)
OWN_INPUT_SHARE = 0.2
MEMORY_BOUND = 3 * 2**30
LIGHT_TABS = ("/encode", "/similarity", "/project")
HEAVY_TABS = ("/rerank", "/layer_sweep", "/compare")
TOPICS = ("volcanoes", "sourdough bread", "tax returns", "tomato plants", "the moon", "train timetables")


def own_input(api_name: str, student: int, rng: random.Random) -> dict:
    """What a student types into a tab instead of its example."""
    topic = rng.choice(TOPICS)
    sentence = f"Student {student} has a question about {topic}."
    return {
        "/encode": {"texts": f"{sentence}\nAnother line on {topic}.", "mode": rng.choice(["query", "passage"])},
        "/similarity": {
            "queries": sentence,
            "passages": f"A passage on {topic}.\nSomething else entirely.\nA third text.",
        },
        "/project": {"queries": f"Where is {topic}?"},
        "/rerank": {"query": f"What should I know about {topic}?"},
        "/layer_sweep": {"query": f"Tell me about {topic}.", "relevance": ""},
        "/compare": {"layer_b": rng.choice([2, 4, 6])},
    }[api_name]


@dataclass
class Room:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"light": [], "heavy": []})
    failures: list[str] = field(default_factory=list)
    clicks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def student(url: str, index: int, deadline: float, room: Room) -> None:
    rng = random.Random(index)
    client = Client(url, verbose=False)
    time.sleep(rng.uniform(0, THINK_SECONDS[1]))  # students do not all start on the same second
    while time.monotonic() < deadline:
        api_name = rng.choice(LIGHT_TABS if rng.random() < 0.7 else HEAVY_TABS)
        kwargs = own_input(api_name, index, rng) if rng.random() < OWN_INPUT_SHARE else {}
        started = time.perf_counter()
        try:
            client.predict(**kwargs, api_name=api_name)
        except Exception as error:  # an error sentence, a refused queue or a transport error: all are failures here
            with room.lock:
                room.failures.append(f"{api_name} {kwargs}: {type(error).__name__}: {error}")
        else:
            with room.lock:
                room.seconds[serving.kind_of(api_name).value].append(time.perf_counter() - started)
        with room.lock:
            room.clicks += 1
        time.sleep(rng.uniform(*THINK_SECONDS))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, app: subprocess.Popen, timeout: float = 300) -> None:
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        assert app.poll() is None, "the app exited while starting"
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail("the app did not start")


def summary(values: list[float]) -> str:
    if not values:
        return "no answers"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{len(values)} answers, p50 {statistics.median(values):.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s"


def cache_weights_mb(table: dict) -> float:
    """The Models tab's cache table (as gradio_client returns a DataFrame): the sum of its MB column."""
    column = table["headers"].index("MB")
    return sum(float(row[column]) for row in table["data"])


def test_a_workshop_room_of_24_students(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = tmp_path / "app.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    env.pop("OMP_NUM_THREADS", None)  # the app uses the machine as it would in a room
    with log_path.open("w") as log:
        app = subprocess.Popen(  # our own app.py, on a loopback port
            [sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_until_up(url, app)
        process = psutil.Process(app.pid)
        warm = Client(url, verbose=False)
        for api_name in (*LIGHT_TABS, *HEAVY_TABS):  # every default model loaded, the examples computed once
            warm.predict(api_name=api_name)
        idle = process.memory_info().rss
        idle_account = resident_account(app.pid)
        samples = [idle]
        at_peak = {"account": idle_account}
        stop = threading.Event()

        def sample_memory() -> None:
            while not stop.wait(0.5):
                samples.append(process.memory_info().rss)
                if samples[-1] == max(samples) and samples[-1] > samples[0]:  # a new peak: where is it?
                    at_peak["account"] = resident_account(app.pid)

        sampler = threading.Thread(target=sample_memory, daemon=True)
        sampler.start()
        room = Room()
        deadline = time.monotonic() + SECONDS
        students = [threading.Thread(target=student, args=(url, i, deadline, room)) for i in range(STUDENTS)]
        for thread in students:
            thread.start()
        for thread in students:
            thread.join(timeout=SECONDS + 300)
        time.sleep(5)  # the room goes quiet
        stop.set()
        sampler.join()
        after = process.memory_info().rss
        after_account = resident_account(app.pid)
        cache_table = warm.predict(api_name="/models")[1]
    finally:
        app.terminate()
        app.wait(timeout=30)

    logged = log_path.read_text().splitlines()
    lines = [json.loads(line[line.index("{") :]) for line in logged if '"event": "request"' in line]
    served = [line for line in lines if line.get("cache")]
    hits = sum(1 for line in served if "miss" not in line["cache"])
    in_app = {"light": {"hit": [], "computed": []}, "heavy": {"hit": [], "computed": []}}
    for line in lines:
        if line.get("cache"):
            kind = serving.kind_of(line["endpoint"]).value
            in_app[kind]["computed" if "miss" in line["cache"] else "hit"].append(line["seconds"])
    peak = max(samples)
    inside = "".join(
        f"  in the app, {kind}: from the cache {summary(times['hit'])}; computed {summary(times['computed'])}\n"
        for kind, times in in_app.items()
    )
    print(
        f"\nworkshop: {STUDENTS} students, {SECONDS:.0f} s, {room.clicks} clicks, {len(room.failures)} failed\n"
        f"  light (Encode, Similarity, Projection): {summary(room.seconds['light'])}\n"
        f"  heavy (Rerankers, Layer sweep, Compare): {summary(room.seconds['heavy'])}\n"
        f"  result cache: {hits} of {len(served)} cached requests served without computing\n{inside}"
        f"  memory: idle {idle / 2**30:.2f} GB, peak {peak / 2**30:.2f} GB, after {after / 2**30:.2f} GB\n"
        f"  model cache: {cache_weights_mb(cache_table):.0f} MB of weights and graphs in "
        f"{len(cache_table['data'])} entries\n"
        + "".join(
            f"  resident memory {moment}:\n{describe_account(account)}\n"
            for moment, account in (
                ("idle", idle_account),
                ("at the peak", at_peak["account"]),
                ("after", after_account),
            )
            if account is not None
        )
    )
    assert not any(thread.is_alive() for thread in students), "a student's client hung"
    assert room.failures == []
    assert room.clicks >= STUDENTS
    assert peak <= MEMORY_BOUND
