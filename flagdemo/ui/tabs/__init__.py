"""One module per tab, in page order: each has ``TITLE``, ``TAB_ID`` and ``render(engine)`` (see ``ui.blocks``)."""

from flagdemo.ui.tabs import cocktail, compare, encode, layer_sweep, models, projection, rerank, similarity

TABS = (encode, similarity, rerank, layer_sweep, projection, cocktail, compare, models)

__all__ = ["TABS", "cocktail", "compare", "encode", "layer_sweep", "models", "projection", "rerank", "similarity"]
