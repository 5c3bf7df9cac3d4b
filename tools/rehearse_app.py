"""The whole app at full size, timed as a Space visitor meets it: ``python -m tools.rehearse_app`` (make rehearsal).

It starts ``python app.py`` the way a Space does (``SPACE_ID`` set, so public mode; ``HF_HUB_OFFLINE=1`` on the hub
cache ``--cache``, by default the rehearsal cache ``make rehearsal-cache`` writes), then measures, on this machine:

1. how long the server takes to answer, and which model set the page names;
2. the page load in a real browser (Debian's chromium, 1400×900), twice: a first visitor who opens the page the
   moment the server answers (while the examples app.py started computing are still running), and a second one
   after that; for each tab in turn, when its example has shown, counted from the moment the page was opened (the
   tabs are visited in page order, so a tab's time includes the tabs before it);
3. a warm answer per endpoint through gradio_client, each with one input changed from the example, so it computes
   on the loaded models rather than coming from the result cache; then Cocktail's default run, its first;
4. that what public mode turns off (unloading, the data folder's endpoints) answers with a sentence;
5. the app's resident memory (the process and its children) at each step, its peak, and the Models tab's account
   of it at the end (part by part, and the model budget), read through gradio_client and, with ``--screenshot``,
   as a visitor's browser shows it at 1400 px (a full-page PNG, and whether any of its tables scrolls sideways).

The rehearsal cache holds seeded random weights: its times and memory carry over to the real models, its scores
do not. ``--out`` writes the figures as JSON; the table is printed as Markdown for docs/serving.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# Each tab, in page order, and the table that shows its example once it has arrived (Cocktail opens with a note).
TABS = (
    ("Encode", "encode-table"),
    ("Similarity", "similarity-table"),
    ("Rerankers", "rerank-table"),
    ("Layer sweep", "sweep-metrics"),
    ("Projection", "project-table"),
    ("Compare", "systems-means"),
    ("Cocktail", "cocktail-note"),
    ("Models", "models-catalog"),  # its cache table may be empty: it opened before the other tabs loaded
)
# A warm answer per endpoint: one input changed from the example, so the answer is computed, not remembered.
WARM = (
    ("/encode", {"texts": "A rehearsal sentence about pandas.\nA second one, about the sea."}),
    ("/similarity", {"queries": "where do pandas live?"}),
    ("/rerank", {"query": "what do pandas eat?"}),
    ("/layer_sweep", {"query": "what do pandas eat?"}),
    ("/project", {"queries": "where do pandas live?"}),
    ("/compare", {"k": 5}),
    ("/compare_systems", {"permutations": 2000}),
    ("/models", {}),
    ("/cocktail", {}),  # its first run (the tab opens without one): fine-tuning the set's embedder, then blending
)
# What public mode turns off answers with a sentence: unloading, and the data folder's two endpoints.
REFUSED = (
    ("/unload", {"key": "all"}),
    ("/project_stored", {}),  # the page's own values: nothing chosen from an empty list
    ("/compare_beir", {}),
)


@dataclass
class MemoryWatch:
    """The resident memory of a process and its children, sampled every 0.2 s in a thread."""

    pid: int
    peak: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def now(self) -> int:
        try:
            process = psutil.Process(self.pid)
            tree = [process, *process.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += member.memory_info().rss
        return total

    def start(self) -> MemoryWatch:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(0.2):
            rss = self.now()
            self.peak = max(self.peak, rss)
            self.samples.append((time.monotonic() - started, rss))

    def stop(self) -> None:
        self._stop.set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_server(url: str, process: subprocess.Popen, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"app.py exited with code {process.returncode} before it answered; see its log.")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"app.py did not answer within {timeout:.0f} s.")


def page_load(url: str, timeout_s: float) -> tuple[str, list[dict]]:
    """The model-set sentence and, per tab, the seconds from opening the page until its example showed."""
    from playwright.sync_api import sync_playwright

    arrivals = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(timeout_s * 1000)
        opened = time.monotonic()
        page.goto(url)
        note = page.locator("#model-set-note").inner_text()
        for label, elem_id in TABS:
            page.get_by_role("tab", name=label, exact=True).click()
            target = page.locator(f"#{elem_id}")
            if elem_id.endswith("-note"):
                target.filter(has_text=re.compile(r"\w")).first.wait_for()
            else:
                target.locator("[role=gridcell]").filter(has_text=NUMBER).first.wait_for()
            arrivals.append({"tab": label, "seconds": round(time.monotonic() - opened, 1)})
            print(f"  {label}: example shown {arrivals[-1]['seconds']} s after the page opened", flush=True)
        browser.close()
    return note, arrivals


def warm_answers(url: str, watch: MemoryWatch, timeout_s: float) -> list[dict]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    answers = []
    for api_name, changed in WARM:
        started = time.monotonic()
        try:
            client.submit(**changed, api_name=api_name).result(timeout=timeout_s)
            outcome = "answered"
        except Exception as error:  # a refusal or a timeout is a figure of the rehearsal, reported as such
            outcome = f"{type(error).__name__}: {str(error)[:120]}"
        seconds = round(time.monotonic() - started, 2)
        answers.append({"endpoint": api_name, "seconds": seconds, "outcome": outcome, "rss_gb": gb(watch.now())})
        print(f"  {api_name}: {outcome} in {seconds} s, {gb(watch.now())} GB resident", flush=True)
    return answers


def refusals(url: str) -> list[dict]:
    """Each endpoint public mode turns off, and the sentence it answered with (or what came back instead)."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(url, verbose=False)
    answers = []
    for api_name, given in REFUSED:
        try:
            client.predict(**given, api_name=api_name)
            outcome = "answered (not refused)"
        except AppError as error:
            outcome = f"refused: {error}"
        answers.append({"endpoint": api_name, "outcome": outcome})
        print(f"  {api_name}: {outcome}", flush=True)
    return answers


def memory_account(url: str) -> list[list]:
    """The Models tab's memory account, as its rows ([what, MB])."""
    from gradio_client import Client

    _, _, _, memory = Client(url, verbose=False).predict(api_name="/models")
    return memory["data"] if isinstance(memory, dict) else memory


def models_tab(url: str, screenshot: Path, timeout_s: float) -> dict[str, int]:
    """The Models tab after Refresh, as a 1400 px browser shows it, saved to ``screenshot``; per table, how many of
    its elements scroll sideways (0 is what a reader needs)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(timeout_s * 1000)
        page.goto(url)
        page.get_by_role("tab", name="Models", exact=True).click()
        page.locator("#models-refresh").click()
        page.locator("#models-memory [role=gridcell]").filter(has_text="resident in all").first.wait_for()
        # the tables' column fitting runs after the rows arrive; "networkidle" is no signal here, since after a
        # long run the page can keep a request open for more than 15 minutes
        page.wait_for_timeout(3000)
        page.evaluate("document.fonts.ready")
        tables = ("models-catalog", "models-cache", "models-memory")
        scrolls = {table: scrolls_sideways(page, table) for table in tables}
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    print(f"  the Models tab at 1400 px: {screenshot}; elements scrolling sideways per table: {scrolls}", flush=True)
    return scrolls


def scrolls_sideways(page, elem_id: str) -> int:
    """How many elements of a table scroll sideways (wider content than box, with a horizontal scroll bar)."""
    return page.evaluate(
        """(id) => [...document.querySelectorAll(`#${id} *`)].filter(e => e.scrollWidth > e.clientWidth + 1
            && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)).length""",
        elem_id,
    )


def gb(nbytes: int) -> float:
    return round(nbytes / 1e9, 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=str(ROOT / ".rehearsal" / "hub"), help="the hub cache to serve from")
    parser.add_argument("--out", help="write the figures here as JSON")
    parser.add_argument("--screenshot", type=Path, help="save the Models tab at the end here (a full-page PNG)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for each step")
    parser.add_argument(
        "--budget-gb", type=float, default=12.0, help="the model budget to run with (12: a free 16 GB Space's 75%%)"
    )
    args = parser.parse_args(argv)
    if not Path(args.cache).is_dir():
        raise SystemExit(f"No hub cache at {args.cache}: write one with `make rehearsal-cache`.")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    work = Path(tempfile.mkdtemp(prefix="flagdemo-rehearsal-"))
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(Path(args.cache).resolve()),
        "HF_HUB_OFFLINE": "1",
        "SPACE_ID": "rehearsal/flagdemo",
        "FLAGDEMO_CACHE": str(work / "flagdemo-cache"),
        "GRADIO_SERVER_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        "FLAGDEMO_MAX_MEMORY_GB": str(args.budget_gb),
    }
    log = (work / "app.log").open("w")
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log, stderr=log)
    watch = MemoryWatch(process.pid).start()
    try:
        ready = wait_for_server(url, process, args.timeout)
        rss_ready = watch.now()
        print(f"server answered after {ready:.1f} s, {gb(rss_ready)} GB resident", flush=True)
        note, arrivals = page_load(url, args.timeout)
        _, later = page_load(url, args.timeout)
        for first, second in zip(arrivals, later, strict=True):
            first["later_visitor_seconds"] = second["seconds"]
        rss_loaded = watch.now()
        print(f"every example shown; {gb(rss_loaded)} GB resident, peak so far {gb(watch.peak)} GB", flush=True)
        answers = warm_answers(url, watch, args.timeout)
        refused = refusals(url)
        account = memory_account(url)
        scrolls = models_tab(url, args.screenshot, args.timeout) if args.screenshot else None
    finally:
        watch.stop()
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    figures = {
        "machine": {"cpus": psutil.cpu_count(), "memory_gb": gb(psutil.virtual_memory().total)},
        "model_set_note": note,
        "server_ready_s": round(ready, 1),
        "rss_ready_gb": gb(rss_ready),
        "page_load": arrivals,
        "rss_after_page_load_gb": gb(rss_loaded),
        "warm": answers,
        "refused": refused,
        "peak_rss_gb": gb(watch.peak),
        "memory_account": account,
        "models_tab_scrolling_sideways": scrolls,
        "total_s": round(time.monotonic() - started, 1),
        "log": str(work / "app.log"),
    }
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    print()
    print(f"Model set: {note}")
    print(f"Server answered after {figures['server_ready_s']} s ({figures['rss_ready_gb']} GB resident).")
    print("\n| tab | example shown (s after the page opened): first visitor | a later visitor |\n|---|---|---|")
    for arrival in arrivals:
        print(f"| {arrival['tab']} | {arrival['seconds']} | {arrival['later_visitor_seconds']} |")
    print("\n| endpoint | warm answer (s) | outcome | resident after (GB) |\n|---|---|---|---|")
    for answer in answers:
        print(f"| `{answer['endpoint']}` | {answer['seconds']} | {answer['outcome']} | {answer['rss_gb']} |")
    for answer in refused:
        print(f"| `{answer['endpoint']}` | | {answer['outcome']} | |")
    print("\n| the Models tab's memory account, at the end | MB |\n|---|---|")
    for what, size in account:
        print(f"| {what} | {size} |")
    print(f"\nPeak resident memory {figures['peak_rss_gb']} GB. App log: {figures['log']}")


if __name__ == "__main__":
    main()
