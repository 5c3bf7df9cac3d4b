"""What replaying the family's goldens (FlagEmbedding 1.2.11: LLMEmbedder, Visualized_BGE) needs.

A plain module, not a conftest: ``from conftest import`` would find whichever conftest.py pytest imported first."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

FAMILY = Path(__file__).parent
GOLDEN = FAMILY / "golden"
ASSETS = FAMILY / "assets"
IMAGES = FAMILY / "images"
sys.path.insert(0, str(FAMILY.parent / "golden"))  # golden_codec, shared with the 1.4.2 goldens


def load_golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def changed_files(folder: Path, recorded: dict[str, str]) -> list[str]:
    actual = file_hashes(folder)
    return sorted(name for name in set(actual) | set(recorded) if actual.get(name) != recorded.get(name))
