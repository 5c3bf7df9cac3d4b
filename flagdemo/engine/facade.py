"""``Engine``: the facade the app, the API, the CLI and the benchmarks call. Model names in, numbers out.

It holds the default model names and one ``ModelAccess`` (the road to every model: shared weights from
``MODEL_CACHE``, wrappers kept between calls, results computed once); each method is one line binding a plain
function of the engine's modules (``encoding``, ``rerank``, ``layers``, ``maps``, ``compare``, ``menu``,
``inventory``, ``cocktail``) to that access. Tests build an ``Engine`` that points at tiny local models.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flagdemo import limits
from flagdemo.engine import benchmark, cocktail, compare, encoding, inventory, maps, menu, rerank
from flagdemo.engine import layers as layer_ops
from flagdemo.engine.access import ModelAccess
from flagdemo.engine.outcomes import BenchmarkOutcome, CompareOutcome, MethodOutcome, ProjectionOutcome, SweepOutcome
from flagdemo.models import catalog, model_sets, sources
from flagdemo.models.cache import MODEL_CACHE, ModelCache, WrapperCache
from flagdemo.models.embedders.base import default_weights
from flagdemo.models.records import EncodeResult, LayerSweepResult
from flagdemo.models.resolve import NO_MODEL, ModelSpec, Role
from flagdemo.serving.embedding_cache import EMBEDDING_CACHE, EmbeddingCache
from flagdemo.serving.result_cache import ResultCache
from flagdemo.training.blend import CocktailRun


@dataclass
class Engine:
    """Default model names and the operations behind each tab."""

    embedder: str = catalog.DEFAULT_EMBEDDER
    multi_vector_embedder: str = NO_MODEL  # Similarity's default when set (BGE-M3: its three scores)
    llm_reranker: str = catalog.DEFAULT_RERANKER
    cross_encoder: str = NO_MODEL
    layerwise_reranker: str = catalog.DEFAULT_RERANKER
    cutoff_layer: int = 12
    cocktail_base: str = NO_MODEL  # Cocktail's default base when set, else the embedder
    devices: str | None = None
    weights: str = field(default_factory=default_weights)  # embedders' weights: fp16-rounded (FlagEmbedding's) | fp32
    llm_precision: str = "fp32"  # decoder rerankers: fp32 | bf16 (FlagEmbedding's use_bf16=True)
    extra_embedders: tuple[str, ...] = ()
    extra_rerankers: tuple[str, ...] = ()
    model_set_note: str = ""  # what the page says about the models it opens on (model_sets.choose)
    cache: ModelCache = field(default=MODEL_CACHE, repr=False)
    embedding_cache: EmbeddingCache = field(default=EMBEDDING_CACHE, repr=False)
    access: ModelAccess = field(init=False, repr=False, compare=False)

    @classmethod
    def for_this_machine(cls, **settings) -> Engine:
        """The engine on the model set that can load here (the BGE set where it can), saying which and why."""
        chosen = model_sets.choose()
        if limits.zero_gpu():
            settings.setdefault("devices", "cuda")  # a ZeroGPU Space: models live on CUDA, lent per call
        return cls(**chosen.model_set.engine_fields(), model_set_note=chosen.sentence, **settings)

    def __post_init__(self) -> None:
        self.access = ModelAccess(
            self.devices, self.weights, self.own_models, self.cache, self.embedding_cache, self.llm_precision
        )
        sources.preload_transformers()  # before any request thread loads a model

    @property
    def wrappers(self) -> WrapperCache:
        return self.access.wrappers

    @property
    def results(self) -> ResultCache:
        """Whole tab results, computed once for identical requests (tests swap in their own)."""
        return self.access.results

    @results.setter
    def results(self, results: ResultCache) -> None:
        self.access.results = results

    def own_models(self) -> set[str]:
        """The models this app was configured with (by its operator, not typed in by a visitor)."""
        names = {
            self.embedder,
            self.multi_vector_embedder,
            self.llm_reranker,
            self.cross_encoder,
            self.layerwise_reranker,
            self.cocktail_base,
        }
        return (names | set(self.extra_embedders) | set(self.extra_rerankers)) - {NO_MODEL}

    # ---- model choices -------------------------------------------------------------------------------------

    def embedder_choices(self) -> list[str]:
        """Defaults first, then every embedder that loads offline right now."""
        own = [self.embedder, self.multi_vector_embedder, self.cocktail_base, *self.extra_embedders]
        return menu.choices(own, "embedder")

    @property
    def fine_tuning_base(self) -> str:
        """Cocktail's default base: the set's own choice where it has one, else the embedder."""
        return self.embedder if self.cocktail_base == NO_MODEL else self.cocktail_base

    @property
    def similarity_embedder(self) -> str:
        """Similarity's default: the multi-vector model where the set has one, else the embedder."""
        return self.embedder if self.multi_vector_embedder == NO_MODEL else self.multi_vector_embedder

    def reranker_choices(self) -> list[str]:
        return menu.choices(
            [self.cross_encoder, self.llm_reranker, self.layerwise_reranker, *self.extra_rerankers], "reranker"
        )

    def model_menu(self, role: Role) -> list[tuple[str, str]]:
        own = self.embedder_choices() if role == "embedder" else self.reranker_choices()
        return menu.model_menu(role, own, self.unavailable)

    def is_m3(self, name: str) -> bool:
        return menu.is_m3(self.access, name)

    def is_llm_embedder(self, name: str) -> bool:
        return menu.is_llm_embedder(self.access, name)

    unavailable = staticmethod(menu.unavailable)
    default_instruction = staticmethod(menu.default_instruction)
    is_visual = staticmethod(menu.is_visual)

    # ---- model objects (weights come from the shared cache) ------------------------------------------------

    def spec(self, name: str | ModelSpec, role: Role = "any") -> ModelSpec:
        return self.access.spec(name, role)

    def load_embedder(self, name: str | ModelSpec, *, normalize: bool = True, task: str | None = None):
        return self.access.load_embedder(name, normalize=normalize, task=task)

    def load_reranker(self, name: str | ModelSpec, role: Role = "reranker"):
        return self.access.load_reranker(name, role)

    @contextmanager
    def embedder_for(self, name: str | ModelSpec, *, normalize: bool = True, task: str | None = None) -> Iterator:
        with self.access.embedder_for(name, normalize=normalize, task=task) as embedder:
            yield embedder

    @contextmanager
    def reranker_for(self, name: str | ModelSpec, role: Role = "reranker") -> Iterator:
        with self.access.reranker_for(name, role) as reranker:
            yield reranker

    # ---- the tabs' operations ------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str], *, model: str, **settings) -> EncodeResult:
        return encoding.encode(self.access, texts, model=model, **settings)

    def embeddings(self, texts: Sequence[str], *, model: str | ModelSpec, **settings) -> np.ndarray:
        return encoding.embeddings(self.access, texts, model=model, **settings)

    pick_layer = staticmethod(encoding.pick_layer)

    def num_layers(self, model: str | ModelSpec) -> int:
        return encoding.num_layers(self.access, model)

    def similarity(self, queries: Sequence[str], passages: Sequence[str], *, model: str, **settings):
        return encoding.similarity(self.access, queries, passages, model=model, **settings)

    def rerank_methods(self, query: str, passages: Sequence[str], **choices) -> list[MethodOutcome]:
        return rerank.rerank_methods(self.access, query, passages, **choices)

    def layer_sweep(self, model: str | ModelSpec, query: str, passages: Sequence[str], **settings) -> SweepOutcome:
        return layer_ops.layer_sweep(self.access, model, query, passages, **settings)

    def reranker_layer_sweep(self, model, query: str, passages: Sequence[str], layers: Sequence[int] | None):
        return layer_ops.reranker_layer_sweep(self.access, model, query, passages, layers)

    def valid_layers(self, model: str | ModelSpec) -> list[int]:
        return layer_ops.valid_layers(self.access, model)

    def embedder_layer_sweep(self, model, query, passages, layers, *, task=None) -> LayerSweepResult:
        return layer_ops.embedder_layer_sweep(self.access, model, query, passages, layers, task=task)

    def project(self, texts: Sequence[str], *, model: str | ModelSpec, **settings) -> ProjectionOutcome:
        return maps.project(self.access, texts, model=model, **settings)

    def compare(self, model_a: str | ModelSpec, model_b: str | ModelSpec, **settings) -> CompareOutcome:
        return compare.compare(self.access, model_a, model_b, **settings)

    def benchmark(self, systems: Sequence[str] | dict[str, str], **settings) -> BenchmarkOutcome:
        """N systems (``NAME=SPEC`` strings, see engine/systems.py) compared on the labelled set or ``data``."""
        return benchmark.benchmark(self.access, systems, **settings)

    def retrieval_runs(self, specs, retrieval_set, k: int, tasks: Sequence[str | None] | None = None) -> list:
        return compare.retrieval_runs(self.access, specs, retrieval_set, k, tasks)

    def labelled_encodings(self, model, queries, passages, *, all_layers: bool, task: str | None = None):
        return compare.labelled_encodings(self.access, model, queries, passages, all_layers=all_layers, task=task)

    # ---- Visualized-BGE: images, texts and both (Encode, Similarity, Projection) ------------------------------

    def encode_mixed(self, items: Sequence, *, model: str):
        return encoding.encode_mixed(self.access, items, model=model)

    def mixed_similarity(self, queries: Sequence, candidates: Sequence, *, model: str):
        return encoding.mixed_similarity(self.access, queries, candidates, model=model)

    def project_mixed(self, items: Sequence, *, model: str, labels: Sequence[str], **settings):
        return maps.project_mixed(self.access, items, model=model, labels=labels, **settings)

    # ---- Cocktail and the Models tab -----------------------------------------------------------------------

    def tune_and_blend(self, base_model: str, examples, topics, workdir: Path, **settings) -> CocktailRun:
        return cocktail.tune_and_blend(self.access, base_model, examples, topics, workdir, **settings)

    catalog_rows = staticmethod(inventory.catalog_rows)

    def cache_rows(self) -> list[dict]:
        return inventory.cache_rows(self.access)

    def memory_rows(self) -> list[dict]:
        return inventory.memory_rows(self.access)

    def unload(self, which: str) -> bool:
        return inventory.unload(self.access, which)
