"""Every endpoint's handler bound to one engine, named as its ``api_name``: the app in-process (tests, notebooks)."""

from __future__ import annotations

from types import SimpleNamespace

from flagdemo.engine import Engine
from flagdemo.ui import common, data_folder
from flagdemo.ui.tabs import cocktail, compare, encode, layer_sweep, models, projection, rerank, similarity


def endpoints(engine: Engine) -> SimpleNamespace:
    """Every endpoint's handler bound to ``engine``, named as its ``api_name`` (``endpoints(e).similarity(...)``),
    and the engine itself."""
    handlers = (
        encode.encode,
        similarity.similarity,
        rerank.rerank,
        layer_sweep.layer_sweep,
        projection.project,
        cocktail.cocktail,
        compare.compare,
        compare.compare_systems,
        models.models,
        models.unload,
        data_folder.project_stored,
        data_folder.compare_beir,
    )
    bound = {handler.__name__: common.bind(handler, engine) for handler in handlers}
    return SimpleNamespace(**bound, sweep_sample=layer_sweep.sweep_sample, engine=engine)
