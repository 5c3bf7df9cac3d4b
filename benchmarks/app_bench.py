"""App benchmarks: cold start to the first /encode answer, warm latency per api_name, UMAP sizes, peak memory.

The app runs as its own process (``python app.py --port P``) and is driven through gradio_client with each
endpoint's default inputs, as a user's first click would be. UMAP is timed in this process on random unit vectors
of MiniLM's width after one warm-up fit (numba compiled), each size in a fresh process so that its peak RSS (VmHWM) is
its own. The app's peak RSS is the app process's.

Warm latency is timed over at least ``WARM_CALLS`` calls per endpoint (more when ``--runs`` asks for more), so a p95
is a real tail and not the slowest of five. /similarity's default is 2 queries × 5 passages; the issue's target is
10 × 10, so "similarity 10x10" times that too, with the first 10 queries and passages of the labelled set.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
API_NAMES = ("encode", "similarity", "rerank", "layer_sweep", "project", "compare", "models")
UMAP_SIZES = (200, 1000, 5000)
WARM_CALLS = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, in MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def connect(url: str, deadline: float):
    from gradio_client import Client

    while time.perf_counter() < deadline:
        try:
            return Client(url, verbose=False)
        except Exception:  # not listening yet
            time.sleep(0.2)
    raise TimeoutError(f"the app did not answer at {url} in time")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def warm_cases() -> list[tuple[str, str, dict]]:
    """(row name, api_name, inputs): every endpoint with its defaults, then /similarity at the issue's 10 × 10."""
    from flagdemo.data import datasets

    labelled = datasets.load_retrieval_set()
    ten_by_ten = {
        "queries": "\n".join(labelled.queries["text"].head(10)),
        "passages": "\n".join(labelled.passages["text"].head(10)),
    }
    return [(f"/{name}", name, {}) for name in API_NAMES] + [("/similarity 10x10", "similarity", ten_by_ten)]


def bench_app_process(report, calls: int = WARM_CALLS, timeout: float = 300.0) -> None:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = connect(f"http://127.0.0.1:{port}/", started + timeout)
        client.predict(api_name="/encode")
        cold = time.perf_counter() - started
        report.add("app", "cold start → first /encode answer", f"{cold:.1f} s", seconds=cold)
        for row, api_name, inputs in warm_cases():
            seconds: list[float] = []
            try:
                client.predict(**inputs, api_name=f"/{api_name}")  # warm: models loaded, caches filled
                for _ in range(calls):
                    began = time.perf_counter()
                    client.predict(**inputs, api_name=f"/{api_name}")
                    seconds.append(time.perf_counter() - began)
            except Exception as error:  # report the endpoint's failure and go on with the others
                report.add("app", f"{row} warm", f"failed: {str(error).splitlines()[0][:80]}")
                continue
            p50, p95 = statistics.median(seconds), percentile(seconds, 0.95)
            report.add(
                "app",
                f"{row} warm p50 / p95 ({calls} calls)",
                f"{p50 * 1000:.0f} / {p95 * 1000:.0f} ms",
                p50_seconds=p50,
                p95_seconds=p95,
            )
        rss = peak_rss_mb(process.pid)
        if rss is not None:
            report.add("app", "app process peak RSS", f"{rss:.0f} MiB", peak_rss_mib=rss)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def umap_in_this_process(size: int, runs: int) -> dict:
    """Median seconds of a warm UMAP fit of ``size`` random unit vectors (MiniLM's width), and this process's peak
    RSS after the warm-up and at the end: run in a fresh process per size, so each size has its own peak."""
    import json

    from flagdemo.analysis.projection import project, warm_up

    warm_up()
    after_warm_up = peak_rss_mb(os.getpid())
    rng = np.random.default_rng(0)
    points = rng.normal(size=(size, 384)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        project(points, method="umap", dims=2)
        seconds.append(time.perf_counter() - began)
    result = {
        "seconds": statistics.median(seconds),
        "runs": runs,
        "peak_rss_mb": peak_rss_mb(os.getpid()),
        "warm_up_peak_rss_mb": after_warm_up,
    }
    print(json.dumps(result))
    return result


def bench_umap(report, runs: int) -> None:
    import json

    for size in UMAP_SIZES:
        size_runs = max(1, runs if size < 5000 else min(runs, 2))
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.app_bench", "umap", str(size), str(size_runs)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if child.returncode != 0:
            report.add("umap", f"{size} points", f"failed: {(child.stderr.strip().splitlines() or ['?'])[-1][:80]}")
            continue
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        report.add(
            "umap",
            f"{size} points, warm (median of {size_runs})",
            f"{measured['seconds']:.2f} s, peak RSS {measured['peak_rss_mb']:.0f} MiB "
            f"({measured['warm_up_peak_rss_mb']:.0f} MiB after the warm-up)",
            **measured,
        )


def bench_app(report, args) -> None:
    try:
        import app  # noqa: F401 - proves the app builds before we time it
    except Exception as error:
        report.skip("app", f"the app does not import: {str(error).splitlines()[0][:80]}")
        return
    bench_umap(report, args.runs)
    bench_app_process(report, calls=max(WARM_CALLS, args.runs))


if __name__ == "__main__":  # `python -m benchmarks.app_bench umap SIZE RUNS`: one UMAP size in a fresh process
    if len(sys.argv) != 4 or sys.argv[1] != "umap":
        raise SystemExit("usage: python -m benchmarks.app_bench umap SIZE RUNS")
    umap_in_this_process(int(sys.argv[2]), int(sys.argv[3]))
