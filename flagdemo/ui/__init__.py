"""The Gradio app: ``build_demo(engine)`` (the composer in ``blocks``, one module per tab in ``tabs``), ``show``
for notebooks, and ``endpoints`` to call every endpoint in-process (tests, notebooks) without a server.
"""

from __future__ import annotations

from types import SimpleNamespace

from flagdemo.engine import Engine
from flagdemo.ui.blocks import build_demo
from flagdemo.ui.notebook import show


def endpoints(engine: Engine) -> SimpleNamespace:
    """Every endpoint's handler bound to ``engine``, named as its ``api_name`` (``endpoints(e).similarity(...)``),
    and the engine itself."""
    from flagdemo.ui import common
    from flagdemo.ui.tabs import (
        cocktail,
        compare,
        data_folder,
        encode,
        layer_sweep,
        models,
        projection,
        rerank,
        similarity,
    )

    handlers = (
        encode.encode,
        similarity.similarity,
        rerank.rerank,
        layer_sweep.layer_sweep,
        projection.project,
        cocktail.cocktail,
        compare.compare,
        models.models,
        models.unload,
        data_folder.project_stored,
        data_folder.compare_beir,
    )
    bound = {handler.__name__: common.bind(handler, engine) for handler in handlers}
    return SimpleNamespace(**bound, sweep_sample=layer_sweep.sweep_sample, engine=engine)


__all__ = ["build_demo", "endpoints", "show"]
