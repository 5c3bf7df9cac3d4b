"""What every benchmark writes: rows for the printed table and a JSON file that names the machine and its CPU.

Shared by ``benchmarks.run`` and ``benchmarks.corpus_bench`` (which ``make bench`` runs as a section of the first).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from flagdemo.models.backends.cpu import cpu_features, cpu_model

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class Report:
    def __init__(self, machine: str, out: Path | None = None) -> None:
        self.out = out
        self.rows: list[tuple[str, str, str]] = []
        self.data: dict = {"machine": machine, "cpu": cpu_model(), "cpu_features": sorted(cpu_features()),
                           "cores": os.cpu_count(), "sections": {}}  # fmt: skip

    def add(self, section: str, what: str, value: str, **data) -> None:
        self.rows.append((section, what, value))
        self.data["sections"].setdefault(section, {})[what] = data or value
        print(f"  {section}: {what}: {value}", file=sys.stderr, flush=True)
        if self.out is not None:  # keep what is measured so far, should a later section fail
            self.write()

    def write(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.data, indent=2) + "\n")

    def skip(self, section: str, reason: str) -> None:
        self.add(section, "skipped", reason, skipped=reason)

    def table(self) -> str:
        width = max(len(what) for _, what, _ in self.rows) if self.rows else 10
        lines = [f"| section | {'measure'.ljust(width)} | result |", f"|---|{'-' * (width + 2)}|---|"]
        lines += [f"| {section} | {what.ljust(width)} | {value} |" for section, what, value in self.rows]
        return "\n".join(lines)
