"""Static checks on the workshop notebooks (executing them is `pytest --nbmake notebooks/`, run by `make test`)."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))
EXPECTED = [
    "01_encode_and_similarity",
    "02_rerankers",
    "03_layer_cutoffs",
    "04_projections",
    "05_model_comparison",
    "06_cocktail",
]


def test_the_workshop_notebooks_exist():
    assert [path.stem for path in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: run nbstripout"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_cells_use_the_package_and_end_with_exercises(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert any("from flagdemo" in source for source in code)
    for source in code:
        tree = ast.parse(source)
        hidden_logic = [
            node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Lambda)
        ]
        assert not hidden_logic, f"{path.name}: define functions in the package, not in notebook cells"
    last = notebook.cells[-1]
    assert last.cell_type == "markdown" and "## Exercises" in last.source
