"""FlagEmbedding 1.4-exact rerankers on transformers 5.x, plus layer cutoffs for any causal LM.

- ``FlagReranker``: cross-encoders (bge-reranker-base / -large / -v2-m3), one logit per pair.
- ``FlagLLMReranker``: decoder LMs scoring with the "Yes" logit (bge-reranker-v2-gemma, SmolLM2 offline).
- ``LayerWiseFlagLLMReranker``: a score from layer k; native heads for bge-reranker-v2-minicpm-layerwise, the
  logit lens for any other causal LM.
- ``layer_sweep``: every layer's score from one pass, with the time each cutoff costs.
- ``FlagAutoReranker.from_finetuned``: the class picked from the model's name.
"""

from __future__ import annotations

from flagdemo.models.rerankers.auto import FlagAutoReranker, RerankerModelClass
from flagdemo.models.rerankers.cross_encoder import FlagReranker
from flagdemo.models.rerankers.layerwise import LayerWiseFlagLLMReranker
from flagdemo.models.rerankers.llm import FlagLLMReranker
from flagdemo.models.rerankers.presets import reranker_preset
from flagdemo.models.rerankers.sweep import layer_sweep

__all__ = [
    "FlagAutoReranker",
    "FlagLLMReranker",
    "FlagReranker",
    "LayerWiseFlagLLMReranker",
    "RerankerModelClass",
    "layer_sweep",
    "reranker_preset",
]
