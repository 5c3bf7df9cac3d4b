"""FlagAutoReranker: pick the reranker class from the model's name, as FlagEmbedding 1.4's auto class does."""

from __future__ import annotations

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
        """The right reranker for ``model_name_or_path``: by ``model_class`` if given, else by catalog lookup.

        The lookup key is the basename (a ``checkpoint-*`` folder uses its parent's), matched case-sensitively;
        a renamed local folder therefore needs ``model_class``. The reranker default is ``use_fp16=False``.
        Catalog models with a prompt preset (the offline SmolLM2) get it unless the caller passes those arguments.
        """
        entry = catalog.lookup(str(model_name_or_path), kind="reranker")
        for name, value in reranker_preset(entry.key if entry else None).items():
            kwargs.setdefault(name, value)
        if model_class is not None:
            reranker_class = _class_for(model_class)
            trust_remote_code = bool(trust_remote_code)
        else:
            if entry is None:
                raise catalog.unknown_model_error(
                    str(model_name_or_path), "reranker",
                    "its name is not in the reranker registry; pass model_class= for a local folder",
                )  # fmt: skip
            reranker_class = _class_for(entry.model_class)
            # The registry default never switches remote code on: running it takes the user's own True (checked,
            # with the catalog's consent and the host's, in BaseReranker before anything is resolved or loaded).
            trust_remote_code = bool(trust_remote_code)
        return reranker_class(model_name_or_path, use_fp16=use_fp16, trust_remote_code=trust_remote_code, **kwargs)


def _class_for(model_class: str | RerankerModelClass) -> type[BaseReranker]:
    try:
        key = RerankerModelClass(model_class.value if isinstance(model_class, RerankerModelClass) else model_class)
    except ValueError:
        names = ", ".join(repr(member.value) for member in RerankerModelClass)
        raise InvalidInputError(f"model_class {model_class!r} is not one of {names}.") from None
    if key not in RERANKER_CLASS_MAP:
        raise ModelLoadError(
            "The lightweight Gemma-2 reranker (decoder-only-lightweight, with token compression) is not implemented "
            "in flagdemo; use FlagEmbedding itself for bge-reranker-v2.5-gemma2-lightweight."
        )
    return RERANKER_CLASS_MAP[key]
