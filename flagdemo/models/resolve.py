"""A model name, resolved once per request into a ``ModelSpec``: what it is, where it loads from, how to build it.

Before loading anything, ``resolve`` refuses what cannot work, each with its own sentence: an empty name, a name a
public demo does not offer, a model in a role it cannot play (a causal LM as cross-encoder or as embedder), a catalog
model that is not downloaded here, a class flagdemo does not implement. The spec is frozen and hashable: it is the
key of the engine's wrapper cache, and the model classes accept its ``source`` as already resolved, so no layer below
looks the name up again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from flagdemo import limits
from flagdemo.errors import InvalidInputError, ModelLoadError, UnknownModelError
from flagdemo.models import catalog
from flagdemo.models.embedders.auto import embedder_class_for, embedder_recipe
from flagdemo.models.embedders.base import check_weights
from flagdemo.models.embedders.llm_embedder import LLMEmbedder
from flagdemo.models.rerankers.auto import reranker_class_for, reranker_recipe
from flagdemo.models.sources import ModelSource, resolve_source

NO_MODEL = "(none)"
Role = Literal["embedder", "reranker", "cross-encoder", "llm-reranker", "layer-cutoff", "any"]
ROLE_WORDS = {
    "embedder": "an embedder",
    "reranker": "a reranker",
    "cross-encoder": "a cross-encoder",
    "llm-reranker": "an LLM reranker",
    "layer-cutoff": "a layer-cutoff reranker",
    "any": "a model",
}
DECODER_RERANKERS = ("decoder-only-base", "decoder-only-layerwise")


class ModelNotDownloadedError(UnknownModelError):
    """A catalog model that exists but cannot load here (not bundled, not downloaded, hub unreachable)."""


class WrongRoleError(InvalidInputError):
    """A model chosen for something it cannot do (a causal LM as cross-encoder, a reranker as embedder …)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model, resolved: the cache key of its wrapper and everything its class needs to build it.

    ``kind`` is 'embedder' or 'reranker'; ``model_class`` FlagEmbedding's class key ('encoder-only-base' …);
    ``settings`` the constructor arguments FlagEmbedding's auto class would pass (pooling, instruction format,
    prompt preset, trust_remote_code), as sorted pairs so that the spec stays hashable.
    """

    name: str
    kind: catalog.Kind
    source: ModelSource
    model_class: str
    settings: tuple[tuple[str, object], ...] = ()
    devices: str | None = None

    @property
    def entry(self) -> catalog.CatalogEntry | None:
        return self.source.entry

    @property
    def class_name(self) -> str:
        classes = catalog.EMBEDDER_CLASSES if self.kind == "embedder" else catalog.RERANKER_CLASSES
        return classes[self.model_class]

    @property
    def is_m3(self) -> bool:
        return self.kind == "embedder" and self.model_class == "encoder-only-m3"

    @property
    def is_llm_embedder(self) -> bool:
        """LLM-Embedder (by its catalog name, hub id or a folder named llm-embedder): six tasks, each with its pair."""
        return self.kind == "embedder" and self.entry is not None and self.entry.key == catalog.LLM_EMBEDDER_KEY

    @property
    def short_name(self) -> str:
        """The name a visitor reads: a folder's last part, else the name as typed."""
        return Path(self.name).name if ("/" in self.name and self.source.is_local) else self.name

    def kwargs(self) -> dict[str, object]:
        return dict(self.settings)


def checked_name(name: object, role: Role = "any") -> str:
    """A model name as typed, stripped; a sentence when it is empty or not text."""
    if name is not None and not isinstance(name, str):
        raise InvalidInputError(f"The model for {ROLE_WORDS[role]} must be given by its name.")
    cleaned = (name or "").strip()
    if not cleaned or cleaned == NO_MODEL:
        raise InvalidInputError(f"Choose a model to use as {ROLE_WORDS[role]} first.")
    return cleaned


class _Name:
    """What resolve learns about one name, each read once: its catalog entries (by kind) and its folder's
    config.json architectures (read only when a decision needs them, never for a public visitor's name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: dict[str, catalog.CatalogEntry | None] = {
            kind: catalog.lookup(name, kind) for kind in ("embedder", "reranker")
        }

    @cached_property
    def architectures(self) -> list[str]:
        return config_architectures(self.name)

    def other(self, kind: catalog.Kind) -> catalog.CatalogEntry | None:
        return self.entries["reranker" if kind == "embedder" else "embedder"]


def resolve(
    name: object, role: Role = "any", *, devices: str | None = None, own_models: frozenset[str] = frozenset()
) -> ModelSpec:
    """``name`` as a ``ModelSpec`` for ``role``, or the sentence that says why it cannot play that role here."""
    name = checked_name(name, role)
    if limits.public_mode() and name not in own_models:  # before any file is read: a visitor's path is never opened
        ensure_public_model(name, None if role == "any" else "embedder" if role == "embedder" else "reranker")
    facts = _Name(name)
    kind = _kind_for(facts, role)
    entry = facts.entries[kind]
    _check_role(facts, role, kind)
    if entry is not None and not entry.supported:
        raise ModelLoadError(unavailable_reason(entry))
    try:
        source = resolve_source(name)
    except UnknownModelError:
        if entry is not None and name in (entry.key, entry.hub_id):  # a catalog model, merely not downloaded here
            raise ModelNotDownloadedError(unavailable_reason(entry)) from None
        raise
    trust = _remote_code(name, entry)
    if kind == "embedder":
        explicit = None if entry is not None else _guess_model_class(facts, kind)
        recipe = embedder_recipe(name, entry, explicit, trust_remote_code=trust)
    else:
        model_class = entry.model_class if entry is not None else _guess_model_class(facts, kind)
        recipe = reranker_recipe(name, entry, model_class, trust_remote_code=trust)
    return ModelSpec(name, kind, source, recipe.model_class, tuple(sorted(recipe.settings.items())), devices)


def unavailable_reason(entry: catalog.CatalogEntry) -> str:
    """Why a catalog model cannot be used here ('' when it can)."""
    if entry.model_class == "visualized-bge":
        return (
            f"{entry.key} is Visualized-BGE (images and texts): choose it by that name in the Encode, Similarity or "
            "Projection tab (the app loads it from its models folder); the other tabs compare text models."
        )
    if not entry.supported:
        return (
            f"flagdemo does not implement FlagEmbedding's {entry.model_class_name}, which {entry.key} needs: "
            "use FlagEmbedding itself for this model."
        )
    if catalog.location(entry) is None:
        return (
            f"{entry.key} is in flagdemo's catalog but is not downloaded on this machine, and the Hugging Face hub "
            f"cannot be reached from here. To use it, download {entry.hub_id} on a machine with internet access and "
            "copy it here as docs/serving.md (Paths and caches) explains; the models offered without a mark work "
            "offline."
        )
    return ""


def _kind_for(facts: _Name, role: Role) -> catalog.Kind:
    if role == "embedder":
        return "embedder"
    if role != "any":
        return "reranker"
    entry = facts.entries["embedder"] or facts.entries["reranker"]  # catalog keys are unique across kinds
    if entry is not None:
        return entry.kind
    heads = ("ForCausalLM", "ForSequenceClassification")
    return "reranker" if any(arch.endswith(heads) for arch in facts.architectures) else "embedder"


def _check_role(facts: _Name, role: Role, kind: catalog.Kind) -> None:
    """Refuse a model for a role it cannot play, before anything is loaded."""
    name, entry, other = facts.name, facts.entries[kind], facts.other(kind)
    if entry is None and other is not None:
        raise WrongRoleError(
            f"{name} is {'a reranker' if kind == 'embedder' else 'an embedder'} ({other.model_class_name}), so it "
            f"cannot be used as {ROLE_WORDS[role]}. Choose it in a {other.kind} box instead."
        )
    model_class = entry.model_class if entry is not None else None
    architectures = facts.architectures if entry is None else []
    causal = model_class in DECODER_RERANKERS or any(a.endswith("ForCausalLM") for a in architectures)
    if role == "cross-encoder" and causal:
        raise WrongRoleError(
            f"{name} is a causal language model, not a cross-encoder: it scores with its 'Yes' logit. Choose it as "
            "the LLM reranker, and a cross-encoder (e.g. bge-reranker-base) here."
        )
    cross_encoder = kind == "reranker" and (model_class == "encoder-only-base" or _classifier(architectures))
    if role in ("llm-reranker", "layer-cutoff", "any") and cross_encoder:
        raise WrongRoleError(
            f"{name} is a cross-encoder, not a language model: it has no layers to cut and no 'Yes' logit. Choose "
            "it as the cross-encoder instead."
        )
    if role == "embedder" and _classifier(architectures):
        raise WrongRoleError(f"{name} is a classifier (a cross-encoder), so it cannot be used as an embedder.")


def _classifier(architectures: list[str]) -> bool:
    return any(arch.endswith("ForSequenceClassification") for arch in architectures)


def config_architectures(name: str) -> list[str]:
    """The ``architectures`` of a local model folder's config.json (empty when unknown)."""
    config = Path(name) / "config.json"
    try:
        return list(json.loads(config.read_text()).get("architectures") or [])
    except (OSError, ValueError, AttributeError):  # no such file, a name too long for a path, not a JSON object
        return []


def guess_model_class(name: str, kind: catalog.Kind) -> str:
    """FlagEmbedding's ``model_class`` for a model outside the catalog, from its folder's config.

    FlagAutoModel refuses unknown names without a class; for a local folder its config says whether it is a
    decoder (``*ForCausalLM``) or an encoder, which is all the app needs to pick the base classes.
    """
    return _guess_model_class(_Name(name), kind)


def _guess_model_class(facts: _Name, kind: catalog.Kind) -> str:
    decoder = any(arch.endswith("ForCausalLM") for arch in facts.architectures)
    if kind == "embedder":
        if any(_is_file(Path(facts.name) / head) for head in ("colbert_linear.pt", "sparse_linear.pt")):
            return "encoder-only-m3"
        return "decoder-only-base" if decoder else "encoder-only-base"
    if any("LayerWise" in arch for arch in facts.architectures):
        return "decoder-only-layerwise"
    return "decoder-only-base" if decoder else "encoder-only-base"


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name too long to be a path
        return False


def ensure_public_model(name: str, kind: catalog.Kind | None) -> None:
    """Public mode (FLAGDEMO_PUBLIC=1): a visitor may pick catalog models by their exact name or hub id, nothing else.

    A folder path would let a visitor probe or read the server's files, and an arbitrary hub id would download and
    run anything; the catalog's basename lookup is not enough here ("../../x/bge-m3" has the basename "bge-m3").
    """
    entry = catalog.lookup(name, kind)
    if entry is not None and name in (entry.key, entry.hub_id):
        return
    raise UnknownModelError(
        f"This public demo loads only the {kind or 'model'}s in its list, chosen by name: {name[:80]!r} is not one "
        "of them. Run flagdemo on your own machine to load other models or local folders."
    )


def remote_code_wanted(name: str, kind: catalog.Kind) -> bool | None:
    """trust_remote_code for the app's loads: True only for a catalog model (by exact name) that ships its own code,
    and only on a host that set FLAGDEMO_ALLOW_REMOTE_CODE=1; False for anything else, folders included.

    None (the catalog's default) is returned for catalog models that need no code, so FlagEmbedding's defaults hold.
    """
    return _remote_code(name, catalog.lookup(name, kind))


def _remote_code(name: str, entry: catalog.CatalogEntry | None) -> bool | None:
    if entry is None or name not in (entry.key, entry.hub_id):
        return False
    if entry.needs_remote_code or entry.trust_remote_code:
        return os.environ.get("FLAGDEMO_ALLOW_REMOTE_CODE", "").strip() == "1" or None  # exactly as the catalog
    return None


def build_embedder(spec: ModelSpec, *, normalize: bool = True, task: str | None = None, weights: str = "fp16"):
    """The embedder ``spec`` describes, built from its resolved source (``embedder_recipe``'s class and settings,
    weights rounded to fp16 unless ``weights`` is 'fp32': see ``flagdemo.models.embedders.base.WEIGHTS``);
    LLM-Embedder reads its query / passage modes behind ``task``'s instructions (None = qa)."""
    embedder_class = embedder_class_for(spec.model_class, spec.entry)
    use_fp16 = check_weights(weights) == "fp16"
    common = {"normalize_embeddings": bool(normalize), "devices": spec.devices, "use_fp16": use_fp16}
    if embedder_class is LLMEmbedder:
        return LLMEmbedder(spec.source, task=task or "qa", **common, **spec.kwargs())
    if task is not None:
        raise InvalidInputError(f"{spec.short_name} has no tasks: only LLM-Embedder reads its texts behind a task.")
    return embedder_class(spec.source, **common, **spec.kwargs())


# The decoder rerankers' precisions: fp32; bf16, FlagEmbedding's use_bf16=True (bf16 weights and arithmetic);
# bf16-weights, flagdemo's own: bf16 weights widened to fp32 as they are used (flagdemo.models.backends.widened).
LLM_PRECISIONS = ("fp32", "bf16", "bf16-weights")


def holds_bf16_weights(spec: ModelSpec, llm_precision: str) -> bool:
    """Whether the reranker ``spec`` describes holds its weights in bf16 under ``llm_precision``: the decoders do
    under bf16 and bf16-weights; cross-encoders stay fp32. A precision rerankers lack is refused."""
    if llm_precision not in LLM_PRECISIONS:
        raise InvalidInputError(f"llm_precision must be one of {', '.join(LLM_PRECISIONS)}, not {llm_precision!r}.")
    return llm_precision != "fp32" and spec.model_class.startswith("decoder-only")


def build_reranker(spec: ModelSpec, *, llm_precision: str = "fp32"):
    """The reranker ``spec`` describes, built from its resolved source (``reranker_recipe``'s class and settings).

    ``llm_precision="bf16"`` is FlagEmbedding's ``use_bf16=True`` for the decoder rerankers (bf16 weights and
    arithmetic, on a CPU too); ``"bf16-weights"`` computes in fp32 on the bf16 weights. Cross-encoders load in fp32
    whatever it says, as FlagEmbedding's do."""
    precision = {}
    if holds_bf16_weights(spec, llm_precision):
        precision = {"use_bf16": True, "fp32_arithmetic": llm_precision == "bf16-weights"}
    reranker_class = reranker_class_for(spec.model_class)
    return reranker_class(spec.source, use_fp16=False, devices=spec.devices, **precision, **spec.kwargs())
