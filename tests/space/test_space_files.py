"""The Space builds from its own files: the front matter preloads exactly the BGE set, the requirements resolve
from PyPI alone and pin what the Makefile installs, and app.py is the entry point."""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import yaml

from flagdemo.models import model_sets

ROOT = Path(__file__).resolve().parents[2]
UNPINNED = {"numpy"}  # left to torch's and the others' own bounds


def front_matter() -> dict:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", readme, flags=re.DOTALL)
    assert match, "README.md must start with the Hugging Face Space front matter"
    return yaml.safe_load(match.group(1))


def requirements(name: str) -> dict[str, str]:
    pins = {}
    for raw in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            package, _, version = line.partition("==")
            pins[package.lower()] = version
    return pins


def test_the_front_matter_preloads_exactly_what_the_space_defaults_need():
    fields = front_matter()
    assert fields["preload_from_hub"] == model_sets.BGE.hub_ids()
    assert fields["models"] == model_sets.BGE.hub_ids()
    assert fields["app_file"] == "app.py" and (ROOT / "app.py").is_file()
    assert fields["sdk"] == "gradio" and fields["sdk_version"] == gr.__version__


def test_the_space_requirements_come_from_pypi_and_match_the_makefile():
    pins = requirements("requirements.txt")
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        assert not line.strip().startswith(("-", "/", ".", "file:", "git+")), f"not a PyPI requirement: {line}"
    assert {package for package, version in pins.items() if not version} == UNPINNED
    assert pins["gradio"] == front_matter()["sdk_version"]
    assert pins["torch"] == "2.13.0" and "spaces" in pins
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(PIP) install -r requirements.txt" in makefile  # the Space's file is the app's runtime
    assert "python3.11" in makefile and front_matter()["python_version"] == "3.11"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'requires-python = ">=3.11"' in pyproject


def test_the_space_needs_no_build_machine_package():
    """The offline models' packages install only with --no-deps here; a Space opens on the BGE set instead."""
    offline = requirements("requirements-models.txt")
    assert offline and not set(offline) & set(requirements("requirements.txt"))
    assert not set(model_sets.OFFLINE.hub_ids()) & set(front_matter()["preload_from_hub"])
