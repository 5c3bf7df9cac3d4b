"""FlagAutoReranker: pick the reranker class from the model's name, as FlagEmbedding 1.4's auto class does."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from flagdemo.errors import InvalidInputError, ModelLoadError
from flagdemo.models import catalog
from flagdemo.models.rerankers.base import BaseReranker
from flagdemo.models.rerankers.cross_encoder import FlagReranker
from flagdemo.models.rerankers.layerwise import LayerWiseFlagLLMReranker
from flagdemo.models.rerankers.llm import FlagLLMReranker
from flagdemo.models.rerankers.presets import reranker_preset


class RerankerModelClass(Enum):
    """FlagEmbedding's reranker class names for ``model_class=``."""

    ENCODER_ONLY_BASE = "encoder-only-base"
    DECODER_ONLY_BASE = "decoder-only-base"
    DECODER_ONLY_LAYERWISE = "decoder-only-layerwise"
    DECODER_ONLY_LIGHTWEIGHT = "decoder-only-lightweight"


RERANKER_CLASS_MAP: dict[RerankerModelClass, type[BaseReranker]] = {
    RerankerModelClass.ENCODER_ONLY_BASE: FlagReranker,
    RerankerModelClass.DECODER_ONLY_BASE: FlagLLMReranker,
    RerankerModelClass.DECODER_ONLY_LAYERWISE: LayerWiseFlagLLMReranker,
}


@dataclass(frozen=True)
class RerankerRecipe:
    """How FlagEmbedding's auto class builds one reranker: the class and the constructor settings it passes."""

    model_class: str
    reranker_class: type[BaseReranker]
    settings: dict[str, object]


def reranker_recipe(
    name: str,
    entry: catalog.CatalogEntry | None,
    model_class: str | RerankerModelClass | None = None,
    *,
    trust_remote_code: bool | None = None,
) -> RerankerRecipe:
    """The one place that decides a reranker's class, prompt preset and remote-code rule, for both
    ``FlagAutoReranker.from_finetuned`` and the app's resolver: by ``model_class`` if given, else by the catalog.

    Catalog models with a prompt preset (the offline SmolLM2) get it. The registry default never switches remote
    code on: running it takes the caller's own True (checked, with the catalog's consent and the host's, in
    BaseReranker before anything is resolved or loaded).
    """
    if model_class is None:
        if entry is None:
            raise catalog.unknown_model_error(
                name, "reranker", "its name is not in the reranker registry; pass model_class= for a local folder"
            )
        model_class = entry.model_class
    reranker_class = reranker_class_for(model_class)
    settings = {**reranker_preset(entry.key if entry else None), "trust_remote_code": bool(trust_remote_code)}
    return RerankerRecipe(RerankerModelClass(_class_key(model_class)).value, reranker_class, settings)


class FlagAutoReranker:
    """Use ``FlagAutoReranker.from_finetuned(...)``; the class itself is not meant to be instantiated."""

    def __init__(self):
        raise OSError(
            "FlagAutoReranker is designed to be instantiated using the "
            "`FlagAutoReranker.from_finetuned(model_name_or_path)` method."
        )

    @classmethod
    def from_finetuned(
        cls,
        model_name_or_path: str,
        model_class: str | RerankerModelClass | None = None,
        use_fp16: bool = False,
        trust_remote_code: bool | None = None,
        **kwargs: Any,
    ) -> BaseReranker:
        """The right reranker for ``model_name_or_path`` (``reranker_recipe``'s class and settings).

        The lookup key is the basename (a ``checkpoint-*`` folder uses its parent's), matched case-sensitively;
        a renamed local folder therefore needs ``model_class``. The reranker default is ``use_fp16=False``.
        A preset's arguments yield to the caller's own.
        """
        name = str(model_name_or_path)
        recipe = reranker_recipe(
            name, catalog.lookup(name, kind="reranker"), model_class, trust_remote_code=trust_remote_code
        )
        settings = {**recipe.settings, **kwargs, "trust_remote_code": recipe.settings["trust_remote_code"]}
        return recipe.reranker_class(model_name_or_path, use_fp16=use_fp16, **settings)


def _class_key(model_class: str | RerankerModelClass) -> str:
    return model_class.value if isinstance(model_class, RerankerModelClass) else model_class


def reranker_class_for(model_class: str | RerankerModelClass) -> type[BaseReranker]:
    try:
        key = RerankerModelClass(_class_key(model_class))
    except ValueError:
        names = ", ".join(repr(member.value) for member in RerankerModelClass)
        raise InvalidInputError(f"model_class {model_class!r} is not one of {names}.") from None
    if key not in RERANKER_CLASS_MAP:
        raise ModelLoadError(
            "The lightweight Gemma-2 reranker (decoder-only-lightweight, with token compression) is not implemented "
            "in flagdemo; use FlagEmbedding itself for bge-reranker-v2.5-gemma2-lightweight."
        )
    return RERANKER_CLASS_MAP[key]
