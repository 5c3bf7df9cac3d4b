"""flagdemo: an explorer for BGE / FlagEmbedding models, FlagEmbedding 1.4-exact on plain transformers + torch.

The public names mirror FlagEmbedding's (``FlagAutoModel.from_finetuned``, ``encode``, ``compute_score`` …) so code
written for FlagEmbedding runs with only the import line changed. Imports are lazy: ``import flagdemo`` stays cheap
and never pulls in gradio.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # embedders
    "FlagAutoModel": "flagdemo.models.embedders",
    "FlagModel": "flagdemo.models.embedders",
    "BGEM3FlagModel": "flagdemo.models.embedders",
    "FlagLLMModel": "flagdemo.models.embedders",
    "LLMEmbedder": "flagdemo.models.embedders",
    "EmbedderModelClass": "flagdemo.models.embedders",
    # image + text (Visualized-BGE)
    "Visualized_BGE": "flagdemo.models.visual.model",
    # rerankers
    "FlagAutoReranker": "flagdemo.models.rerankers",
    "FlagReranker": "flagdemo.models.rerankers",
    "FlagLLMReranker": "flagdemo.models.rerankers",
    "LayerWiseFlagLLMReranker": "flagdemo.models.rerankers",
    "RerankerModelClass": "flagdemo.models.rerankers",
    # shared pieces
    "MODEL_CACHE": "flagdemo.models.cache",
    "ModelCache": "flagdemo.models.cache",
    "catalog": "flagdemo.models.catalog",
    "errors": "flagdemo.errors",
    # the teaching notebooks' modules (``from flagdemo import figures, metrics, evaluation, datasets``)
    "figures": "flagdemo.ui.views.figures",
    "metrics": "flagdemo.analysis.metrics",
    "evaluation": "flagdemo.analysis.evaluation",
    "datasets": "flagdemo.data.datasets",
}

__all__ = [  # noqa: RUF022 - grouped as in _EXPORTS
    "FlagAutoModel",
    "FlagModel",
    "BGEM3FlagModel",
    "FlagLLMModel",
    "LLMEmbedder",
    "EmbedderModelClass",
    "Visualized_BGE",
    "FlagAutoReranker",
    "FlagReranker",
    "FlagLLMReranker",
    "LayerWiseFlagLLMReranker",
    "RerankerModelClass",
    "MODEL_CACHE",
    "ModelCache",
    "catalog",
    "errors",
]


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'flagdemo' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    return module if module_name.endswith("." + name) else getattr(module, name)
