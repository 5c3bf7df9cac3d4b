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
    "FlagAutoModel": "flagdemo.embedders",
    "FlagModel": "flagdemo.embedders",
    "BGEM3FlagModel": "flagdemo.embedders",
    "FlagLLMModel": "flagdemo.embedders",
    "LLMEmbedder": "flagdemo.embedders",
    "EmbedderModelClass": "flagdemo.embedders",
    # image + text (Visualized-BGE)
    "Visualized_BGE": "flagdemo.visual.model",
    # rerankers
    "FlagAutoReranker": "flagdemo.rerankers",
    "FlagReranker": "flagdemo.rerankers",
    "FlagLLMReranker": "flagdemo.rerankers",
    "LayerWiseFlagLLMReranker": "flagdemo.rerankers",
    "RerankerModelClass": "flagdemo.rerankers",
    # shared pieces
    "MODEL_CACHE": "flagdemo.cache",
    "ModelCache": "flagdemo.cache",
    "catalog": "flagdemo.catalog",
    "errors": "flagdemo.errors",
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
