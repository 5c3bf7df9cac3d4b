"""FlagLLMModel: decoder-only embedders (Qwen3-Embedding, e5-mistral, SFR ...) with last-token pooling."""

from __future__ import annotations

from typing import Any

import torch

from flagdemo.errors import InvalidInputError
from flagdemo.models.embedders.base import BaseEmbedder
from flagdemo.models.sources import load_pretrained


class FlagLLMModel(BaseEmbedder):
    """Decoder embedder as FlagEmbedding 1.4's ``BaseLLMEmbedder``: last-token pooling, no EOS appended, no chat
    template; the query format defaults to ``"Instruct: {}\\nQuery: {}"``. Padding follows the tokenizer's own
    ``padding_side`` and the last-token rule detects left padding as FlagEmbedding does."""

    DEFAULT_POOLING_METHOD = "last_token"
    DEFAULT_QUERY_INSTRUCTION_FORMAT = "Instruct: {}\nQuery: {}"

    def __init__(  # noqa: PLR0917 - positional order is FlagEmbedding's public API
        self,
        model_name_or_path: str,
        normalize_embeddings: bool = True,
        use_fp16: bool = True,
        use_bf16: bool = False,
        query_instruction_for_retrieval: str | None = None,
        query_instruction_format: str = "Instruct: {}\nQuery: {}",
        devices: str | int | list[str] | list[int] | None = None,
        trust_remote_code: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 256,
        query_max_length: int = 512,
        passage_max_length: int = 512,
        convert_to_numpy: bool = True,
        truncate_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("pooling_method", "last_token") != "last_token":
            raise InvalidInputError(
                f"Decoder embedders pool the last token; pooling_method {kwargs['pooling_method']!r} is not allowed."
            )
        super().__init__(
            model_name_or_path,
            normalize_embeddings=normalize_embeddings,
            use_fp16=use_fp16,
            use_bf16=use_bf16,
            query_instruction_for_retrieval=query_instruction_for_retrieval,
            query_instruction_format=query_instruction_format,
            devices=devices,
            batch_size=batch_size,
            query_max_length=query_max_length,
            passage_max_length=passage_max_length,
            convert_to_numpy=convert_to_numpy,
            truncate_dim=truncate_dim,
            trust_remote_code=trust_remote_code,
            cache_dir=cache_dir,
            **kwargs,
        )

    @property
    def pooling_name(self) -> str:
        return "last_token"

    def _load_model(self) -> torch.nn.Module:
        from transformers import AutoModel

        return load_pretrained(
            self.source,
            AutoModel,
            dtype=self.dtype,
            device=self.device,
            trust_remote_code=self.trust_remote_code,
            cache_dir=self.cache_dir,
            weights_dtype=self.weights_dtype,
        )
