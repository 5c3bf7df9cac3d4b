"""The house holds its shape: layers import only downward, no import cycles, the top holds only the public pieces,
and the engine and the views import no gradio (``tools/house.py`` measures it; README, "Layout")."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("house", ROOT / "tools" / "house.py")
house = importlib.util.module_from_spec(spec)
spec.loader.exec_module(house)


def test_no_import_points_back_up_the_layers_and_every_module_has_a_layer():
    assert house.upward(house.edges(house.read_house())) == []


def test_there_are_no_import_cycles_not_even_through_function_level_imports():
    assert house.cycles(house.edges(house.read_house())) == []


def test_the_top_of_the_package_holds_only_the_public_pieces():
    top = sorted(path.name for path in (ROOT / "flagdemo").glob("*.py"))
    assert top == ["__init__.py", "cli.py", "errors.py", "limits.py"]


def test_the_tabs_folder_holds_exactly_the_tabs():
    from flagdemo.ui.tabs import TABS

    modules = sorted(path.stem for path in (ROOT / "flagdemo" / "ui" / "tabs").glob("*.py") if path.stem != "__init__")
    assert modules == sorted(tab.__name__.rsplit(".", 1)[1] for tab in TABS)


def test_the_reader_finds_a_cycle_and_an_upward_import_when_there_is_one():
    graph = {
        "flagdemo.models.a": {"flagdemo.engine.b": (3, True)},
        "flagdemo.engine.b": {"flagdemo.models.a": (5, False)},
    }
    assert house.cycles(graph) == [["flagdemo.engine.b", "flagdemo.models.a"]]
    assert house.upward(graph) == ["flagdemo.models.a:3 → flagdemo.engine.b (models → engine)"]


def test_the_public_api_the_engine_and_the_views_load_no_gradio():
    code = (
        "import sys, flagdemo\n"
        "from flagdemo import FlagAutoModel, catalog, errors, figures, metrics, evaluation, datasets\n"
        "import flagdemo.engine, flagdemo.ui.views.tables, flagdemo.ui.views.text, flagdemo.corpus.embed\n"
        "print('gradio' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
