"""One module per tab, in page order: each has ``TITLE``, ``TAB_ID`` and ``render(engine)`` (see ``ui.blocks``)."""

from flagdemo.ui.tabs import compare, encode, layer_sweep, models, projection, rerank, similarity

TABS = (encode, similarity, rerank, layer_sweep, projection, compare, models)

__all__ = ["TABS", "compare", "encode", "layer_sweep", "models", "projection", "rerank", "similarity"]
