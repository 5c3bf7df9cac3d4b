"""FlagModel: encoder embedders (BERT, XLM-R ...) with CLS or mean pooling, as FlagEmbedding's ``BaseEmbedder``."""

from __future__ import annotations

from typing import Any

import torch

from flagdemo.errors import InvalidInputError
from flagdemo.models.embedders.base import BaseEmbedder
from flagdemo.models.sources import _load_error, instantiate_pretrained, load_pretrained


class FlagModel(BaseEmbedder):
    """Dense encoder embedder: ``pooling_method`` 'cls' (BGE) or 'mean' (E5, GTE, MiniLM).

    Same arguments and defaults as FlagEmbedding 1.4's FlagModel; ``devices`` uses one device (a list: its first).
    """

    DEFAULT_POOLING_METHOD = "cls"
    SUPPORTS_ONNX = True
    LAZY_TORCH = True

    def __init__(  # noqa: PLR0917 - positional order is FlagEmbedding's public API
        self,
        model_name_or_path: str,
        normalize_embeddings: bool = True,
        use_fp16: bool = True,
        use_bf16: bool = False,
        query_instruction_for_retrieval: str | None = None,
        query_instruction_format: str = "{}{}",
        devices: str | int | list[str] | list[int] | None = None,
        pooling_method: str = "cls",
        trust_remote_code: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 256,
        query_max_length: int = 512,
        passage_max_length: int = 512,
        convert_to_numpy: bool = True,
        truncate_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        if pooling_method not in ("cls", "mean"):
            raise InvalidInputError(f"FlagModel pools with 'cls' or 'mean', not {pooling_method!r}.")
        self.pooling_method = pooling_method
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

    def _load_config(self):
        from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(self.source.path, trust_remote_code=self.trust_remote_code)
        except Exception as error:  # a broken folder: the same flagdemo error a torch load gives
            raise _load_error(self.source, "model", error) from error

    def _load_uncached(self) -> torch.nn.Module:
        from transformers import AutoModel

        model = instantiate_pretrained(
            self.source, AutoModel, dtype=self.weights_dtype, trust_remote_code=self.trust_remote_code
        )
        return model.to(device=self.device, dtype=self.dtype).eval()
