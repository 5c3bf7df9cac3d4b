"""Docs mirror the code: every relative link, anchor, file path and ``python -m`` module named in the project's
markdown files exists, so a page never sends a reader to a file that moved."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"^(?:flagdemo|tests|benchmarks|golden|notebooks|tools|docs|\.ci)/[\w./-]*$")
MODULE = re.compile(r"python3? -m ((?:flagdemo|benchmarks)(?:\.\w+)+)")


def markdown_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / name for name in listed.stdout.split()]


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def broken(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks show commands and trees, not links
    problems = []
    for target in LINK.findall(prose):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path) if path else page
        if not linked.exists():
            problems.append(f"link {target}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
            problems.append(f"anchor {target}")
    for code in CODE.findall(text):
        for word in code.split():
            token = word.rstrip(".,;:)").split(":")[0]
            if PATH.match(token) and "*" not in token and not (ROOT / token).exists():
                problems.append(f"path {token}")
    for module in MODULE.findall(text):
        as_path = ROOT / Path(*module.split("."))
        if not (as_path.with_suffix(".py").exists() or (as_path / "__main__.py").exists()):
            problems.append(f"module {module}")
    return problems


@pytest.mark.parametrize("page", markdown_files(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_path_and_module_a_page_names_exists(page):
    assert broken(page) == []


def test_the_checker_sees_a_moved_file_a_dead_anchor_and_a_missing_module(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# A title\n\nSee [the map](#a-title), [gone](#no-such-part), [file](missing.md), `flagdemo/engine.py` and "
        "`python -m flagdemo.evaluation`.\n"
    )
    assert broken(page) == [
        "anchor #no-such-part",
        "link missing.md",
        "path flagdemo/engine.py",
        "module flagdemo.evaluation",
    ]


README_MAX_LINES = 300  # the front door and the Space's card; everything else lives in docs/, one page per part


def readme_problems(readme: Path, docs: Path) -> list[str]:
    """What keeps the README from being the front door: too long, or a docs page it does not link."""
    text = readme.read_text(encoding="utf-8")
    problems = []
    if len(text.splitlines()) > README_MAX_LINES:
        problems.append(f"{len(text.splitlines())} lines (at most {README_MAX_LINES})")
    linked = {(readme.parent / target.partition("#")[0]).resolve() for target in LINK.findall(text)}
    pages = sorted(docs.glob("*.md"))
    if not pages:
        problems.append("no docs pages")
    problems += [f"unlinked {page.relative_to(readme.parent)}" for page in pages if page.resolve() not in linked]
    return problems


def test_the_readme_stays_short_and_links_every_docs_page():
    assert readme_problems(ROOT / "README.md", ROOT / "docs") == []


def test_the_readme_check_sees_a_long_readme_and_an_unlinked_page(tmp_path):
    (tmp_path / "docs").mkdir()
    for name in ("models.md", "serving.md"):
        (tmp_path / "docs" / name).write_text("# A page\n")
    readme = tmp_path / "README.md"
    readme.write_text("See [models](docs/models.md#a-page).\n" + "line\n" * README_MAX_LINES)
    assert readme_problems(readme, tmp_path / "docs") == [f"{README_MAX_LINES + 1} lines (at most 300)",
                                                          "unlinked docs/serving.md"]  # fmt: skip
