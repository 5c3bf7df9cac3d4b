"""Fixtures for the family's tests (helpers live in family_goldens.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def copy_folder(tmp_path):
    """``copy_folder(src, "name")`` → a copy of a model folder under a chosen name (catalog lookup is by name)."""

    def copy(source: Path, name: str) -> str:
        target = tmp_path / name
        shutil.copytree(source, target)
        return str(target)

    return copy
