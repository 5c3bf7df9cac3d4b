"""FlagEmbedding-compatible embedders: FlagModel (cls/mean), BGEM3FlagModel (dense/sparse/ColBERT), FlagLLMModel
(last-token decoders), LLMEmbedder (FlagEmbedding 1.2's task instructions) and FlagAutoModel.from_finetuned, all
with ``encode_detailed`` for the explorer."""

from __future__ import annotations

from flagdemo.models.embedders.auto import EMBEDDER_CLASS_MAPPING, EmbedderModelClass, FlagAutoModel
from flagdemo.models.embedders.base import BaseEmbedder, get_detailed_instruct, pool
from flagdemo.models.embedders.decoder import FlagLLMModel
from flagdemo.models.embedders.dense import FlagModel
from flagdemo.models.embedders.llm_embedder import LLMEmbedder
from flagdemo.models.embedders.m3 import BGEM3FlagModel

__all__ = [
    "EMBEDDER_CLASS_MAPPING",
    "BGEM3FlagModel",
    "BaseEmbedder",
    "EmbedderModelClass",
    "FlagAutoModel",
    "FlagLLMModel",
    "FlagModel",
    "LLMEmbedder",
    "get_detailed_instruct",
    "pool",
]
