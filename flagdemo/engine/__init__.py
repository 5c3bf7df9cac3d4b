"""The operations behind the tabs, gradio-free: ``Engine`` (the facade every caller uses), ``access`` (the one road
to a model), one module per kind of work (``encoding``, ``rerank``, ``layers``, ``maps``, ``compare``, ``menu``,
``inventory``, ``cocktail``, ``visual``), ``guards`` (the checks before a model runs), ``outcomes`` (what the
operations return) and ``quality`` (``make quality``).
"""

from flagdemo.engine.facade import Engine
from flagdemo.engine.guards import clean_lines
from flagdemo.engine.inventory import shown_name
from flagdemo.engine.layers import layer_name
from flagdemo.engine.outcomes import MethodOutcome, SimilarityOutcome
from flagdemo.models.resolve import NO_MODEL

__all__ = ["NO_MODEL", "Engine", "MethodOutcome", "SimilarityOutcome", "clean_lines", "layer_name", "shown_name"]
