"""FlagAutoModel: pick and configure the embedder class from the catalog, exactly as FlagEmbedding 1.4 does."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flagdemo.errors import InvalidInputError
from flagdemo.models import catalog
from flagdemo.models.embedders.base import BaseEmbedder
from flagdemo.models.embedders.decoder import FlagLLMModel
from flagdemo.models.embedders.dense import FlagModel
from flagdemo.models.embedders.llm_embedder import LLMEmbedder
from flagdemo.models.embedders.m3 import BGEM3FlagModel

logger = logging.getLogger(__name__)


class EmbedderModelClass(StrEnum):
    """FlagEmbedding's embedder class names (``model_class=`` values)."""

    ENCODER_ONLY_BASE = "encoder-only-base"
    ENCODER_ONLY_M3 = "encoder-only-m3"
    DECODER_ONLY_BASE = "decoder-only-base"
    DECODER_ONLY_ICL = "decoder-only-icl"
    DECODER_ONLY_PSEUDO_MOE = "decoder-only-pseudo_moe"


EMBEDDER_CLASS_MAPPING: dict[EmbedderModelClass, type[BaseEmbedder]] = {
    EmbedderModelClass.ENCODER_ONLY_BASE: FlagModel,
    EmbedderModelClass.ENCODER_ONLY_M3: BGEM3FlagModel,
    EmbedderModelClass.DECODER_ONLY_BASE: FlagLLMModel,
}


def _embedder_class(model_class: str | EmbedderModelClass) -> type[BaseEmbedder]:
    try:
        member = EmbedderModelClass(model_class)
    except ValueError as error:
        valid = ", ".join(repr(item.value) for item in EmbedderModelClass)
        raise InvalidInputError(f"model_class {model_class!r} is not one of {valid}.") from error
    if member not in EMBEDDER_CLASS_MAPPING:
        raise InvalidInputError(
            f"model_class {member.value!r} (FlagEmbedding's {catalog.EMBEDDER_CLASSES[member.value]}) is not "
            "supported by flagdemo; supported: 'encoder-only-base', 'encoder-only-m3', 'decoder-only-base'."
        )
    return EMBEDDER_CLASS_MAPPING[member]


@dataclass(frozen=True)
class EmbedderRecipe:
    """How FlagEmbedding's auto class builds one embedder: the class and the constructor settings it passes."""

    model_class: str
    embedder_class: type[BaseEmbedder]
    settings: dict[str, object]


def embedder_class_for(model_class: str, entry: catalog.CatalogEntry | None) -> type[BaseEmbedder]:
    """The class that builds a model: LLM-Embedder (by its catalog entry) is FlagEmbedding 1.2's class, which 1.4's
    registry lacks; everything else by ``model_class``."""
    if entry is not None and entry.key == catalog.LLM_EMBEDDER_KEY:
        return LLMEmbedder
    return _embedder_class(model_class)


def embedder_recipe(
    name: str,
    entry: catalog.CatalogEntry | None,
    model_class: str | EmbedderModelClass | None = None,
    *,
    pooling_method: str | None = None,
    query_instruction_format: str | None = None,
    trust_remote_code: bool | None = None,
) -> EmbedderRecipe:
    """The one place that decides an embedder's class, pooling, instruction format and remote-code rule, for both
    ``FlagAutoModel.from_finetuned`` and the app's resolver.

    With an explicit ``model_class`` (FlagEmbedding's rule for models outside its registry): the class's default
    pooling, trust_remote_code False unless given, and ``query_instruction_format`` ``"{}{}"`` (even for decoder
    classes, whose own default would be ``"Instruct: {}\\nQuery: {}"``). Otherwise the catalog entry's values. The
    catalog may default trust_remote_code to True, but running remote code needs the caller's own True (and the
    catalog's consent and FLAGDEMO_ALLOW_REMOTE_CODE=1, checked here when the caller left it unset).
    """
    if model_class is not None:
        embedder_class = _embedder_class(model_class)
        if pooling_method is None:
            pooling_method = embedder_class.DEFAULT_POOLING_METHOD
            logger.info("pooling_method not given; using the class default %r.", pooling_method)
        if query_instruction_format is None:
            query_instruction_format = "{}{}"
            logger.info("query_instruction_format not given; using '{}{}' (FlagEmbedding's auto default).")
        settings = {"query_instruction_format": query_instruction_format, "trust_remote_code": bool(trust_remote_code)}
        return EmbedderRecipe(
            EmbedderModelClass(model_class).value, embedder_class, {"pooling_method": pooling_method, **settings}
        )
    if entry is None:
        raise catalog.unknown_model_error(
            name,
            "embedder",
            f"{catalog.lookup_key(name)!r} is not in the embedder catalog; pass model_class= "
            "('encoder-only-base', 'encoder-only-m3' or 'decoder-only-base') for other models",
        )
    if entry.weight_file is not None:
        raise InvalidInputError(
            f"{entry.key!r} is a Visualized-BGE (image + text) checkpoint: load it with "
            "flagdemo.Visualized_BGE(model_name_bge, model_weight), not FlagAutoModel."
        )
    embedder_class = embedder_class_for(entry.model_class, entry)
    if embedder_class is LLMEmbedder and query_instruction_format not in (None, "{}{}"):
        raise InvalidInputError("LLM-Embedder puts its task instruction straight before the text ('{}{}').")
    if trust_remote_code is None and entry.trust_remote_code:
        catalog.ensure_remote_code_allowed(name, entry, False)  # refuses with its reason
    settings = {
        "pooling_method": entry.pooling if pooling_method is None else pooling_method,
        "query_instruction_format": (
            entry.query_instruction_format if query_instruction_format is None else query_instruction_format
        ),
        "trust_remote_code": bool(trust_remote_code),
    }
    return EmbedderRecipe(entry.model_class, embedder_class, settings)


class FlagAutoModel:
    """Use ``FlagAutoModel.from_finetuned(...)``; the class itself cannot be instantiated (as in FlagEmbedding)."""

    def __init__(self) -> None:
        raise OSError("FlagAutoModel is designed to be instantiated using `FlagAutoModel.from_finetuned(...)`.")

    @classmethod
    def from_finetuned(  # noqa: PLR0917 - FlagEmbedding's signature
        cls,
        model_name_or_path: str,
        model_class: str | EmbedderModelClass | None = None,
        normalize_embeddings: bool = True,
        use_fp16: bool = True,
        use_bf16: bool = False,
        query_instruction_for_retrieval: str | None = None,
        devices: str | int | list[str] | list[int] | None = None,
        pooling_method: str | None = None,
        trust_remote_code: bool | None = None,
        query_instruction_format: str | None = None,
        truncate_dim: int | None = None,
        **kwargs: Any,
    ) -> BaseEmbedder:
        """An embedder for a catalog model (looked up by basename, ``checkpoint-*`` → parent folder), or for any
        folder / hub id with an explicit ``model_class``; the defaults are ``embedder_recipe``'s.
        """
        if not isinstance(model_name_or_path, str) or not model_name_or_path.strip():
            raise InvalidInputError("model_name_or_path must be a model name, hub id or folder path.")
        recipe = embedder_recipe(
            model_name_or_path,
            catalog.lookup(model_name_or_path, kind="embedder"),
            model_class,
            pooling_method=pooling_method,
            query_instruction_format=query_instruction_format,
            trust_remote_code=trust_remote_code,
        )
        return recipe.embedder_class(
            model_name_or_path,
            normalize_embeddings=normalize_embeddings,
            use_fp16=use_fp16,
            use_bf16=use_bf16,
            query_instruction_for_retrieval=query_instruction_for_retrieval,
            devices=devices,
            truncate_dim=truncate_dim,
            **recipe.settings,
            **kwargs,
        )
