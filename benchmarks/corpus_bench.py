"""Corpus-scale benchmarks: ``flagdemo embed`` local vs ``--engine ray``, and top-k search over 1M vectors.

Embedding: each run is a fresh ``python -m flagdemo.cli embed`` process on the bundled MiniLM, timed end to end, with
its rows/s from its own last progress line (model loading and Ray start-up excluded) and the peak resident memory of
the whole process tree (driver, Ray's services and actors), sampled every 0.2 s. The same command at two corpus sizes
shows whether memory grows with the corpus. Search: clustered random unit vectors, generated chunk by chunk from a
seed (never all held at once), exact chunked top-k against the faiss IVF index, with the index's recall@10.
Projection: the app's big map (``corpus.browse``) on clustered vectors: UMAP fitted on a sample, the rest
transformed, the scattergl figure's JSON size, and its first paint in headless chromium.

``python -m benchmarks.corpus_bench`` runs it alone; ``make bench`` runs it as the ``corpus`` section.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from benchmarks.report import RESULTS_DIR, Report

REPO = Path(__file__).resolve().parents[1]
MODEL = "all-MiniLM-L6-v2"
RATE = re.compile(r"embedded ([\d,]+) of [\d,]+ rows \(100%\), ([\d,.]+) rows/s")


TEXT_WORDS = (5, 40)


def corpus_file(path: Path, count: int, seed: int = 0, words_per_text: tuple[int, int] = TEXT_WORDS) -> Path:
    """``count`` texts of ``words_per_text`` (least, most) words from the labelled set's vocabulary, as .jsonl."""
    from flagdemo.data.datasets import load_retrieval_set

    retrieval = load_retrieval_set()
    words = " ".join(retrieval.passage_texts.values()).split()
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            text = " ".join(rng.choices(words, k=rng.randint(*words_per_text)))
            handle.write(json.dumps({"id": f"t{number}", "text": text}) + "\n")
    return path


def tree_rss_mib(process: psutil.Process) -> float:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def timed_embed(source: Path, out: Path, *extra: str, batch_size: int = 32) -> dict:
    """One embed run in its own process tree: seconds, rows/s while embedding, peak RSS of the tree."""
    command = [
        sys.executable,
        "-m",
        "flagdemo.cli",
        "embed",
        str(source),
        "--model",
        MODEL,
        "--out",
        str(out),
        "--batch-size",
        str(batch_size),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        watched = psutil.Process(process.pid)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, tree_rss_mib(watched))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        log.seek(0)
        stderr = log.read()
    if process.returncode != 0:
        raise RuntimeError(f"embed failed: {stderr.strip().splitlines()[-1:]}")
    match = RATE.findall(stderr)[-1]
    return {
        "seconds": seconds,
        "rows": int(match[0].replace(",", "")),
        "rows_per_s": float(match[1].replace(",", "")),
        "peak_rss_mib": peak,
    }


def bench_embed(report, sizes: list[int], workers: list[int], batch_size: int = 32,
                words_per_text: tuple[int, int] = TEXT_WORDS) -> None:  # fmt: skip
    """Local and Ray (one actor) at every size, side by side, so memory can be read against corpus size; Ray with
    the other worker counts at the first size."""
    with tempfile.TemporaryDirectory(prefix="flagdemo-corpus-bench-") as work:
        folder = Path(work)
        for size_number, count in enumerate(sizes):
            source = corpus_file(folder / f"c{count}.jsonl", count, words_per_text=words_per_text)
            counts = workers if size_number == 0 else workers[:1]
            runs = {"local": timed_embed(source, folder / f"local{count}", batch_size=batch_size)}
            for actors in counts:
                runs[f"ray x{actors}"] = timed_embed(source, folder / f"ray{actors}-{count}", "--engine", "ray",
                                                     "--workers", str(actors), batch_size=batch_size)  # fmt: skip
            for name, run in runs.items():
                ratio = run["rows_per_s"] / runs["local"]["rows_per_s"]
                report.add(
                    "corpus",
                    f"embed {count:,} texts of {words_per_text[0]}-{words_per_text[1]} words, {name}",
                    f"{run['rows_per_s']:.1f} rows/s ({ratio:.2f}x local), {run['seconds']:.0f} s end to end, "
                    f"peak RSS {run['peak_rss_mib']:,.0f} MiB",
                    **run,
                    ratio_to_local=ratio,
                    texts=count,
                )


def clustered_chunks(rows: int, dimension: int, chunk: int, seed: int):
    """Unit vectors around 1,000 random centres, ``chunk`` rows at a time, the same for the same seed."""
    centres = np.random.default_rng(seed).standard_normal((1000, dimension)).astype(np.float32)
    for start in range(0, rows, chunk):
        rng = np.random.default_rng([seed, start])
        size = min(chunk, rows - start)
        points = rng.standard_normal((size, dimension), dtype=np.float32)
        points *= 0.6
        points += centres[rng.integers(0, len(centres), size)]
        points /= np.linalg.norm(points, axis=1, keepdims=True)
        yield points


class PeakRss:
    """Peak RSS of this process above its level at entry, sampled every 0.1 s by a thread."""

    def __enter__(self) -> PeakRss:
        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.growth_mib = (self.peak - self.base) / 2**20


def bench_search(report, rows: int, queries: int, dimension: int = 384, chunk: int = 20_000) -> None:
    from flagdemo.corpus.search import VectorIndex, exact_top_k, recall_at_k

    asked = next(clustered_chunks(queries, dimension, queries, seed=99))
    with PeakRss() as memory:
        started = time.perf_counter()
        exact = exact_top_k(asked, clustered_chunks(rows, dimension, chunk, seed=7), 10)
        exact_seconds = time.perf_counter() - started
    exact_rss = memory.growth_mib
    report.add(
        "corpus",
        f"exact top-10, {rows:,} x {dimension}, {queries:,} queries",
        f"{exact_seconds:.1f} s ({queries / exact_seconds:.0f} queries/s), peak memory +{exact_rss:.0f} MiB "
        f"(chunks of {chunk:,})",
        seconds=exact_seconds,
        rss_growth_mib=exact_rss,
    )
    lists = 1024
    with PeakRss() as memory:
        started = time.perf_counter()
        index = VectorIndex.build(clustered_chunks(rows, dimension, chunk, seed=7), rows, dimension, lists=lists)
        build_seconds = time.perf_counter() - started
    report.add("corpus", f"faiss IVF-Flat build, {lists} lists", f"{build_seconds:.0f} s, peak memory "
               f"+{memory.growth_mib:,.0f} MiB (it holds every vector)", seconds=build_seconds,
               rss_growth_mib=memory.growth_mib)  # fmt: skip
    for probes in (16, 64):
        index.index.nprobe = probes
        started = time.perf_counter()
        found = index.search(asked, 10)
        search_seconds = time.perf_counter() - started
        recall = recall_at_k(found.rows, exact.rows, 10)
        report.add(
            "corpus",
            f"faiss IVF-Flat search, {probes} of {lists} lists probed",
            f"{queries:,} queries in {search_seconds:.2f} s ({exact_seconds / search_seconds:.0f}x faster "
            f"than exact), recall@10 {recall:.3f}",
            search_seconds=search_seconds,
            recall_at_10=recall,
        )


FIRST_PAINT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><script>{plotly}</script></head>
<body style="margin:0"><div id="map" style="width:1400px;height:800px"></div><script>
const figure = {figure};
Plotly.newPlot("map", figure.data, figure.layout).then(() => requestAnimationFrame(() => {{
  window.painted = performance.now();
  window.webgl = document.querySelectorAll("#map canvas").length;
}})).catch(error => {{ window.failed = String(error); }});
</script></body></html>"""


def first_paint_ms(figure_json: str, chromium: str) -> tuple[float, int]:
    """Milliseconds from navigation start to the first frame after plotly drew the figure in headless chromium
    (software WebGL), and the number of canvases it drew into."""
    import plotly
    from playwright.sync_api import sync_playwright

    plotly_js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="flagdemo-paint-") as work:
        page_file = Path(work) / "map.html"
        page_file.write_text(FIRST_PAINT_PAGE.format(plotly=plotly_js, figure=figure_json), encoding="utf-8")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=[
                "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                "--ignore-gpu-blocklist"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(page_file.as_uri(), timeout=600_000)
            page.wait_for_function("window.painted || window.failed", timeout=600_000)
            failed = page.evaluate("window.failed || ''")
            if failed:
                raise RuntimeError(f"plotly could not draw the map: {failed}")
            painted, canvases = page.evaluate("[window.painted, window.webgl]")
            browser.close()
    return float(painted), int(canvases)


def bench_projection(report, points: int, sample: int, dimension: int = 384, chromium: str = "/usr/bin/chromium"):
    """The app's big map: UMAP fitted on a sample, the rest transformed, the scattergl figure and its first paint."""
    from flagdemo.corpus.browse import map_figure, sampled_umap

    vectors = np.concatenate(list(clustered_chunks(points, dimension, 20_000, seed=5)))
    with PeakRss() as memory:
        fitted = sampled_umap(vectors, sample=sample)
    report.add("corpus", f"projection: UMAP fit on {sample:,} of {points:,} x {dimension} points",
               f"{fitted.fit_seconds:.0f} s (numba compilation included)", seconds=fitted.fit_seconds)  # fmt: skip
    report.add("corpus", f"projection: transform the other {points - sample:,} points",
               f"{fitted.transform_seconds:.0f} s ({(points - sample) / fitted.transform_seconds:,.0f} points/s), "
               f"peak memory +{memory.growth_mib:,.0f} MiB", seconds=fitted.transform_seconds,
               rss_growth_mib=memory.growth_mib)  # fmt: skip
    rng = random.Random(1)
    words = ["bread", "comet", "budget", "tomato", "compiler", "sleep", "train", "castle", "river", "violin"]
    hover = [f"t{row}: " + " ".join(rng.choices(words, k=14)) for row in range(points)]  # ~100 characters each
    colours = [words[row % 8] for row in range(points)]
    started = time.perf_counter()
    figure_json = map_figure(fitted.coords, hover, colours, title="benchmark map").to_json()
    build_seconds = time.perf_counter() - started
    report.add("corpus", f"projection: scattergl figure, {points:,} points with hover texts",
               f"{len(figure_json) / 2**20:.1f} MiB of JSON sent to the browser, built in {build_seconds:.1f} s",
               payload_bytes=len(figure_json), seconds=build_seconds)  # fmt: skip
    try:
        painted, canvases = first_paint_ms(figure_json, chromium)
    except Exception as error:  # a missing browser or no WebGL: reported, the other figures stand
        report.skip("corpus", f"projection first paint not measured: {error}")
        return
    report.add("corpus", f"projection: first paint in headless chromium, {points:,} points",
               f"{painted / 1000:.1f} s from navigation start (software WebGL, {canvases} canvases)",
               milliseconds=painted, canvases=canvases)  # fmt: skip


def bench_io(report, rows: int = 100_000, dimension: int = 384) -> None:
    """The driver's own ceilings, whatever the number of workers: checking the input, writing the shards."""
    from flagdemo.corpus.embed import job_identity
    from flagdemo.corpus.inputs import open_input
    from flagdemo.corpus.job import ShardBuffer
    from flagdemo.corpus.store import FORMAT, ShardWriter

    with tempfile.TemporaryDirectory(prefix="flagdemo-corpus-io-") as work:
        corpus = open_input(corpus_file(Path(work) / "c.jsonl", rows))
        started = time.perf_counter()
        corpus.scan()
        scan_rate = rows / (time.perf_counter() - started)
        out = Path(work) / "out"
        out.mkdir()
        manifest = {"format": FORMAT, **job_identity(corpus, rows, _settings()), "shards": [], "rows": 0}
        buffer = ShardBuffer(ShardWriter(out, manifest), 10_000, rows)
        vectors = next(clustered_chunks(1000, dimension, 1000, seed=3))
        ids = [f"t{number}" for number in range(rows)]
        started = time.perf_counter()
        for start in range(0, rows, 1000):
            buffer.add(ids[start : start + 1000], vectors)
        write_rate = rows / (time.perf_counter() - started)
    report.add("corpus", f"driver: check {rows:,} input rows / write {dimension}-d shards",
               f"{scan_rate:,.0f} / {write_rate:,.0f} rows/s", scan_rows_per_s=scan_rate,
               write_rows_per_s=write_rate)  # fmt: skip


def _settings():
    from flagdemo.corpus.job import EmbedSettings

    return EmbedSettings(model=MODEL)


def bench_corpus(report, args) -> None:
    """The ``corpus`` section of ``make bench``: the quick ones first, the 100k embeds last."""
    bench_io(report)
    bench_projection(report, args.map_points, args.map_sample)
    bench_search(report, args.search_vectors, args.search_queries)
    bench_embed(report, args.corpus_texts, args.ray_workers, words_per_text=tuple(args.text_words))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus-texts",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        help="embed sizes: local and Ray at each (every --ray-workers count at the first, one actor at the others)",
    )
    parser.add_argument("--ray-workers", type=int, nargs="+", default=[1, 2], help="Ray actor counts to run")
    parser.add_argument("--text-words", type=int, nargs=2, default=list(TEXT_WORDS), metavar=("LEAST", "MOST"),
                        help="words per generated text")  # fmt: skip
    parser.add_argument("--map-points", type=int, default=200_000)
    parser.add_argument("--map-sample", type=int, default=5_000)
    parser.add_argument("--search-vectors", type=int, default=1_000_000)
    parser.add_argument("--search-queries", type=int, default=1_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", default="machine")
    parser.add_argument("--skip-embed", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-io", action="store_true")
    parser.add_argument("--skip-projection", action="store_true")
    add_arguments(parser)
    args = parser.parse_args(argv)
    report = Report(args.machine, RESULTS_DIR / f"{args.machine}-corpus.json")
    report.data["settings"] = vars(args)
    if not args.skip_io:
        bench_io(report)
    if not args.skip_projection:
        bench_projection(report, args.map_points, args.map_sample)
    if not args.skip_search:
        bench_search(report, args.search_vectors, args.search_queries)
    if not args.skip_embed:
        bench_embed(report, args.corpus_texts, args.ray_workers, words_per_text=tuple(args.text_words))
    print(report.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
