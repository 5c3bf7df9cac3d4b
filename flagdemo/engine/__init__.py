"""The facade the app calls: model names in, numbers out. No gradio here.

``Engine`` holds the default model names and builds FlagEmbedding-style model objects on demand. The heavy part
(weights) lives in the process-wide ``MODEL_CACHE`` through ``flagdemo.models.sources``, so nothing big is ever
kept in a UI session. The wrappers around the weights (tokenizer, settings, an LLM reranker's checked logit lens) are
kept in a ``WrapperCache`` while their weights stay cached: rebuilding them took most of a warm click. Plain dense
embeddings go through ``EMBEDDING_CACHE``, so a repeated text is not encoded again.
Tests build an ``Engine`` that points at tiny local models.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flagdemo import limits, serving
from flagdemo.analysis import metrics, scoring
from flagdemo.data import datasets
from flagdemo.engine import visual
from flagdemo.errors import EmptyInputError, FlagDemoError, InvalidInputError, LayerOutOfRangeError
from flagdemo.models import catalog, sources
from flagdemo.models.backends.precision import check_precision, with_precision
from flagdemo.models.cache import MODEL_CACHE, ModelCache, WrapperCache
from flagdemo.models.embedders.base import check_weights, default_weights
from flagdemo.models.positions import readable_tokens
from flagdemo.models.records import MethodOutcome, SimilarityOutcome
from flagdemo.models.resolve import (
    NO_MODEL,
    ModelSpec,
    Role,
    build_embedder,
    build_reranker,
    resolve,
    unavailable_reason,
)
from flagdemo.models.sources import looks_like_path
from flagdemo.serving.embedding_cache import EMBEDDING_CACHE, EmbeddingCache
from flagdemo.serving.result_cache import ResultCache

if TYPE_CHECKING:
    from flagdemo.models.records import (
        CompareOutcome,
        EncodeResult,
        LayerSweepResult,
        ProjectionOutcome,
        RerankResult,
        SweepOutcome,
    )

logger = logging.getLogger(__name__)

EMBEDDER_MODES = ("query", "passage", "raw")
LOCATION_WORDS = {
    "bundled": "yes (bundled)",
    "local": "yes (models folder)",
    "hub-cache": "yes (downloaded)",
    "hub": "downloads on first use",
}
__all__ = ["NO_MODEL", "Engine", "MethodOutcome", "SimilarityOutcome", "clean_lines"]


def clean_lines(text: str | Sequence[str] | None) -> list[str]:
    """Non-empty, stripped lines: the app's text boxes hold one item per line."""
    return limits.split_lines(text)[0]


def shared_result(operation: str, models: Sequence[str], keep: Callable[[object], bool] = lambda _: True):
    """Serve a tab operation from the engine's result cache: identical requests (same models, settings and inputs)
    are computed once, and one arriving while the same work runs waits for that run (see ``result_cache``).

    ``models`` names the parameters that hold model names: the key uses where each loads from, not the name alone.
    A progress callback is not part of the key.
    """

    def decorate(method):
        signature = inspect.signature(method)

        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = {k: v for k, v in bound.arguments.items() if k not in ("self", "progress")}
            names = [_model_name(arguments.get(name)) for name in models]
            inputs = (self.devices, sorted(arguments.items(), key=lambda item: item[0]))
            return self.results.once(
                operation,
                models=names,
                inputs=inputs,
                compute=lambda: method(self, *args, **kwargs),
                own_models=sorted(self.own_models()),
                keep=keep,
            )

        return wrapper

    return decorate


def _model_name(value: object) -> str | None:
    """A model parameter's name for a result key (a ``ModelSpec`` is keyed by the name it was resolved from)."""
    if isinstance(value, ModelSpec):
        return value.name
    return None if value is None else str(value)


@dataclass
class Engine:
    """Default model names and the operations behind each tab."""

    embedder: str = catalog.DEFAULT_EMBEDDER
    llm_reranker: str = catalog.DEFAULT_RERANKER
    cross_encoder: str = NO_MODEL
    layerwise_reranker: str = catalog.DEFAULT_RERANKER
    cutoff_layer: int = 12
    devices: str | None = None
    weights: str = field(default_factory=default_weights)  # embedders' weights: fp16-rounded (FlagEmbedding's) | fp32
    extra_embedders: tuple[str, ...] = ()
    extra_rerankers: tuple[str, ...] = ()
    cache: ModelCache = field(default=MODEL_CACHE, repr=False)
    embedding_cache: EmbeddingCache = field(default=EMBEDDING_CACHE, repr=False)
    wrappers: WrapperCache = field(init=False, repr=False, compare=False)
    results: ResultCache = field(init=False, repr=False, compare=False)

    _labelled: weakref.WeakKeyDictionary = field(init=False, repr=False, compare=False)
    _labelled_lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_weights(self.weights)
        sources.preload_transformers()  # before any request thread loads a model
        self.wrappers = WrapperCache(self.cache)
        self.results = ResultCache.from_env()  # whole tab results, computed once for identical requests
        self._labelled = weakref.WeakKeyDictionary()  # wrapper → its labelled-set encodings, gone with the wrapper
        self._labelled_lock = threading.Lock()

    # ---- model choices -------------------------------------------------------------------------------------

    def embedder_choices(self) -> list[str]:
        """Defaults first, then every embedder that loads offline right now."""
        names = [self.embedder, *self.extra_embedders]
        names += [entry.key for entry in catalog.available_models("embedder")]
        return list(dict.fromkeys(names))

    def reranker_choices(self) -> list[str]:
        names = [self.llm_reranker, self.layerwise_reranker, *self.extra_rerankers]
        names += [entry.key for entry in catalog.available_models("reranker")]
        return list(dict.fromkeys(n for n in names if n != NO_MODEL))

    def model_menu(self, role: Role) -> list[tuple[str, str]]:
        """(label, name) for a model dropdown: this app's own models, then EVERY catalog model that can play
        ``role``; those that cannot load here are marked, so a visitor sees the whole family and what it needs."""
        kind: catalog.Kind = "embedder" if role == "embedder" else "reranker"
        own = self.embedder_choices() if kind == "embedder" else self.reranker_choices()
        menu = {name: name for name in own if _fits(catalog.lookup(name, kind), role)}
        for entry in catalog.ALL_ENTRIES:
            if entry.kind != kind or entry.key in menu or not _fits(entry, role):
                continue
            if entry.model_class == "visualized-bge":
                menu[entry.key] = entry.key + (" (needs download)" if self.unavailable(entry.key) else "")
            elif not entry.supported:
                menu[entry.key] = f"{entry.key} (not supported by flagdemo)"
            elif unavailable_reason(entry):
                menu[entry.key] = f"{entry.key} (needs download)"
            else:
                menu[entry.key] = entry.key
        return [(label, name) for name, label in menu.items()]

    def is_m3(self, name: str) -> bool:
        """Whether ``name`` is a BGE-M3 model (False when it does not resolve: its run says why)."""
        try:
            return self.spec(name, "embedder").is_m3
        except FlagDemoError:
            return False

    def is_llm_embedder(self, name: str) -> bool:
        """Whether ``name`` is LLM-Embedder (its Task choice applies); False when it does not resolve."""
        try:
            return self.spec(name, "embedder").is_llm_embedder
        except FlagDemoError:
            return False

    @staticmethod
    def unavailable(name: str) -> str:
        """Why a catalog model cannot be chosen here ('' when it can, or when ``name`` is not a catalog name)."""
        entry = catalog.lookup(name or "")
        if entry is None or name not in (entry.key, entry.hub_id):
            return ""
        if entry.model_class == "visualized-bge":
            return visual.visual_unavailable(entry) if name == entry.key else ""
        return unavailable_reason(entry)

    # ---- model objects (weights come from the shared cache) ------------------------------------------------

    def spec(self, name: str | ModelSpec, role: Role = "any") -> ModelSpec:
        """``name`` resolved once for this request (a ``ModelSpec`` passes through unchanged)."""
        if isinstance(name, ModelSpec):
            return name
        return resolve(name, role, devices=self.devices, own_models=frozenset(self.own_models()))

    def load_embedder(self, name: str | ModelSpec, *, normalize: bool = True, task: str | None = None):
        """An embedder for ``name`` (FlagAutoModel's choices; ``task`` for LLM-Embedder); its weights are shared
        through MODEL_CACHE."""
        return build_embedder(self.spec(name, "embedder"), normalize=normalize, task=task, weights=self.weights)

    def load_reranker(self, name: str | ModelSpec, role: Role = "reranker"):
        """A reranker for ``name`` (FlagAutoReranker's choices); its weights are shared through MODEL_CACHE."""
        return build_reranker(self.spec(name, role))

    @contextmanager
    def embedder_for(self, name: str | ModelSpec, *, normalize: bool = True, task: str | None = None) -> Iterator:
        """``load_embedder(name)``, kept between calls (see ``WrapperCache``); the spec (and task) is the key."""
        spec = self.spec(name, "embedder")
        key = ("embedder", spec, bool(normalize), task)
        with (
            serving.model_work(spec.source.path),
            self.wrappers.lease(key, lambda: self.load_embedder(spec, normalize=normalize, task=task)) as embedder,
        ):  # one job at a time on these weights
            yield embedder

    @contextmanager
    def reranker_for(self, name: str | ModelSpec, role: Role = "reranker") -> Iterator:
        """``load_reranker(name)``, kept between calls (see ``WrapperCache``); the spec is the key."""
        spec = self.spec(name, role)
        with (
            serving.model_work(spec.source.path),
            self.wrappers.lease(("reranker", spec), lambda: self.load_reranker(spec, role)) as reranker,
        ):
            yield reranker

    def own_models(self) -> set[str]:
        """The models this app was configured with (by its operator, not typed in by a visitor)."""
        names = {self.embedder, self.llm_reranker, self.cross_encoder, self.layerwise_reranker}
        return (names | set(self.extra_embedders) | set(self.extra_rerankers)) - {NO_MODEL}

    @staticmethod
    def default_instruction(name: str, mode: str) -> str:
        """The instruction FlagEmbedding would prepend for this model and mode ('' when none)."""
        entry = catalog.lookup(name or "", "embedder")
        if entry is None or mode == "raw":
            return ""
        instruction = entry.query_instruction if mode == "query" else entry.passage_instruction
        return instruction or ""

    # ---- Encode -------------------------------------------------------------------------------------------

    @shared_result("encode", models=("model",))
    def encode(
        self,
        texts: Sequence[str],
        *,
        model: str,
        mode: str = "passage",
        instruction: str | None = None,
        max_length: int | None = None,
        normalize: bool = True,
        all_layers: bool = False,
        precision: str = "fp32",
        task: str | None = None,
    ) -> EncodeResult:
        """Embed ``texts`` as queries, passages or raw text; ``instruction`` None = the model's own.

        ``precision`` 'bf16' / 'int8' runs the approximate CPU modes; the default stays exact, since the tabs without
        a Precision choice (Compare, Project) must not turn approximate silently. The UI applies FLAGDEMO_PRECISION.
        ``task``: LLM-Embedder's task, whose query / key instructions the modes use (None = qa; other models: None).
        """
        precision = check_precision(precision)
        if mode not in EMBEDDER_MODES:
            raise InvalidInputError(f"Mode must be one of {', '.join(EMBEDDER_MODES)}, not {mode!r}.")
        texts = clean_lines(texts)
        if not texts:
            raise EmptyInputError("There is no text to encode: write at least one line.")
        if max_length is not None and int(max_length) < 2:
            raise InvalidInputError(f"The maximum length must be at least 2 tokens, not {max_length}.")
        with self.embedder_for(model, normalize=normalize, task=task) as embedder:
            check_max_length(embedder, max_length)
            return with_precision(embedder, precision).encode_detailed(
                texts,
                mode=mode,
                max_length=None if max_length is None else int(max_length),
                all_layers=all_layers,
                instruction=instruction,
            )

    def embeddings(
        self,
        texts: Sequence[str],
        *,
        model: str,
        mode: str = "passage",
        layer: int | None = None,
        task: str | None = None,
    ) -> np.ndarray:
        """Just the vectors at ``layer`` (None or -1 = final); final-layer vectors come from the embedding cache."""
        if layer is not None and int(layer) >= 0:
            return self.pick_layer(self.encode(texts, model=model, mode=mode, all_layers=True, task=task), layer)
        if mode not in EMBEDDER_MODES:
            raise InvalidInputError(f"Mode must be one of {', '.join(EMBEDDER_MODES)}, not {mode!r}.")
        texts = clean_lines(texts)
        if not texts:
            raise EmptyInputError("There is no text to encode: write at least one line.")
        with self.embedder_for(model, task=task) as embedder:
            return self.embedding_cache.encode(embedder, texts, mode=mode, precision="fp32")

    @staticmethod
    def pick_layer(result: EncodeResult, layer: int | None) -> np.ndarray:
        """Embeddings at ``layer`` (None or -1 = final; 0 = embedding output)."""
        if layer is None or int(layer) < 0 or result.layer_embeddings is None:
            return result.embeddings
        top = result.layer_embeddings.shape[0] - 1
        if int(layer) > top:
            raise LayerOutOfRangeError(f"Layer {layer} does not exist: this model has layers 0 to {top}.")
        return result.layer_embeddings[int(layer)]

    def num_layers(self, model: str | ModelSpec) -> int:
        with self.embedder_for(model) as embedder:
            return int(embedder.num_layers)

    # ---- Similarity ---------------------------------------------------------------------------------------

    @shared_result("similarity", models=("model",))
    def similarity(
        self,
        queries: Sequence[str],
        passages: Sequence[str],
        *,
        model: str,
        use_instruction: bool = True,
        max_length: int | None = None,
        precision: str = "fp32",
        task: str | None = None,
    ) -> SimilarityOutcome:
        """Scores for every query × passage pair as FlagEmbedding computes them (inner products of embeddings).

        Dense-only models take their embeddings from the embedding cache (a repeated text is not encoded again);
        BGE-M3 needs tokens, sparse weights and ColBERT vectors, so it encodes in full. ``precision`` as in encode.
        """
        from flagdemo.models.embedders import BGEM3FlagModel

        precision = check_precision(precision)
        queries, passages = clean_lines(queries), clean_lines(passages)
        if not queries or not passages:
            raise EmptyInputError("Give at least one query and one passage (one per line).")
        q_mode, p_mode = ("query", "passage") if use_instruction else ("raw", "raw")
        with self.embedder_for(model, task=task) as embedder:
            check_max_length(embedder, max_length)
            if not isinstance(embedder, BGEM3FlagModel):
                q_vectors, p_vectors = (
                    self.embedding_cache.encode(embedder, texts, mode=mode, max_length=max_length, precision=precision)
                    for texts, mode in ((queries, q_mode), (passages, p_mode))
                )
                return SimilarityOutcome(dense=scoring.inner(q_vectors, p_vectors))
            runner = with_precision(embedder, precision)
            q = runner.encode_detailed(queries, mode=q_mode, max_length=max_length)
            p = runner.encode_detailed(passages, mode=p_mode, max_length=max_length)
        outcome = SimilarityOutcome(dense=scoring.inner(q.embeddings, p.embeddings))
        outcome.query_result, outcome.passage_result = q, p
        if q.lexical_weights is not None and p.lexical_weights is not None:
            outcome.sparse = scoring.lexical_matrix(q.lexical_weights, p.lexical_weights)
        if q.colbert_vecs is not None and p.colbert_vecs is not None:
            outcome.colbert = scoring.colbert_matrix(q.colbert_vecs, p.colbert_vecs)
        return outcome

    # ---- Rerank -------------------------------------------------------------------------------------------

    @shared_result(
        "rerank",
        models=("bi_encoder", "cross_encoder", "llm_reranker", "layerwise_reranker"),
        keep=lambda outcomes: not any(outcome.error for outcome in outcomes),  # a failed method is retried
    )
    def rerank_methods(
        self,
        query: str,
        passages: Sequence[str],
        *,
        bi_encoder: str | None,
        cross_encoder: str | None,
        llm_reranker: str | None,
        layerwise_reranker: str | None,
        cutoff_layer: int | None,
        progress: Callable[[float, str], None] | None = None,
    ) -> list[MethodOutcome]:
        """Score the same passages with each chosen method; a method that fails reports why, the rest still run."""
        query = (query or "").strip()
        passages = clean_lines(passages)
        if not query or not passages:
            raise EmptyInputError("Give a query and at least one passage (one per line).")
        pairs = [(query, p) for p in passages]
        plan: list[tuple[str, str, Callable[[str], MethodOutcome]]] = []
        if _chosen(bi_encoder):
            plan.append(("bi-encoder", bi_encoder, lambda m: self._bi_encoder_scores(m, query, passages)))
        if _chosen(cross_encoder):
            plan.append(("cross-encoder", cross_encoder, lambda m: self._reranker_scores("cross-encoder", m, pairs)))
        if _chosen(llm_reranker):
            plan.append(("LLM reranker", llm_reranker, lambda m: self._reranker_scores("LLM reranker", m, pairs)))
        if _chosen(layerwise_reranker):
            label = f"cutoff L{cutoff_layer}" if cutoff_layer is not None else "layer-wise"
            plan.append((label, layerwise_reranker, lambda m: self._cutoff_scores(label, m, pairs, cutoff_layer)))
        if not plan:
            raise InvalidInputError("Choose at least one method to compare.")
        outcomes = []
        for step, (method, model, run) in enumerate(plan):
            if progress is not None:
                progress(step / len(plan), f"{method}: {model}")
            try:
                outcomes.append(run(model))
            except FlagDemoError as exc:
                outcomes.append(MethodOutcome(method=method, model=model, error=str(exc)))
            except Exception as exc:
                logger.exception("reranking method %s with %s failed", method, model)
                outcomes.append(
                    MethodOutcome(method=method, model=model, error=f"{type(exc).__name__}: could not run this model.")
                )
        return outcomes

    def _bi_encoder_scores(self, model: str, query: str, passages: list[str]) -> MethodOutcome:
        with self.embedder_for(model) as embedder:
            started = time.perf_counter()
            q = embedder.encode_detailed([query], mode="query")
            p = embedder.encode_detailed(passages, mode="passage")
            load_seconds = float(getattr(embedder, "load_seconds", 0.0))
        scores = scoring.inner(q.embeddings, p.embeddings)[0]
        return MethodOutcome(
            method="bi-encoder",
            model=model,
            scores=scores.tolist(),
            load_seconds=load_seconds,
            run_seconds=time.perf_counter() - started,
            n_tokens=sum(q.token_counts) + sum(p.token_counts),
        )

    def _reranker_scores(self, method: str, model: str, pairs: list[tuple[str, str]]) -> MethodOutcome:
        role = "cross-encoder" if method == "cross-encoder" else "llm-reranker"
        with self.reranker_for(model, role) as reranker:
            result: RerankResult = reranker.compute_score_detailed(pairs)
        return _outcome_from_rerank(method, model, result)

    def _cutoff_scores(
        self, method: str, model: str, pairs: list[tuple[str, str]], cutoff_layer: int | None
    ) -> MethodOutcome:
        """A layer-wise reranker's native head at ``cutoff_layer``, or the logit lens for any other LLM reranker."""
        from flagdemo.models.rerankers import layer_sweep

        layer = int(cutoff_layer) if cutoff_layer is not None else None
        with self.reranker_for(model, "layer-cutoff") as reranker:
            if layer is not None:
                _check_layer(reranker, layer)
            started = time.perf_counter()
            sweep: LayerSweepResult = layer_sweep(reranker, pairs, layers=None if layer is None else [layer])
            load_seconds = float(getattr(reranker, "load_seconds", 0.0))
        scores = np.asarray(sweep.scores, dtype=np.float64)[-1]
        return MethodOutcome(
            method=method,
            model=f"{model} ({sweep.method})",
            scores=scores.tolist(),
            normalized=scoring.sigmoid(scores).tolist(),
            load_seconds=load_seconds,
            run_seconds=time.perf_counter() - started,
            n_tokens=sweep.n_tokens,
        )

    # ---- Layer sweep --------------------------------------------------------------------------------------

    @shared_result("layer_sweep", models=("model",))
    def layer_sweep(
        self,
        model: str | ModelSpec,
        query: str,
        passages: Sequence[str],
        *,
        first: int = 0,
        last: int = 0,
        step: int = 1,
        grades: Sequence[float] | None = None,
        k: int = 5,
        progress: Callable[[float, str], None] | None = None,
        task: str | None = None,
    ) -> SweepOutcome:
        """Scores at every chosen layer of an embedder (query–passage cosine) or a reranker (its layer-wise head, or
        the logit lens), from one forward pass, with nDCG@k / MRR@k per layer when ``grades`` are given.

        Layers run from ``first`` to ``last`` every ``step``; ``first`` 0 = the first transformer layer, ``last``
        0 = the model's last layer. ``task``: LLM-Embedder's task (embedders only).
        """
        from flagdemo.models.records import SweepOutcome

        spec = self.spec(model, "any")
        query, passages = (query or "").strip(), clean_lines(passages)
        if not query or not passages:
            raise EmptyInputError("Give a query and at least one passage (one per line).")
        if grades is not None and len(grades) != len(passages):
            raise InvalidInputError(
                f"Give one relevance label per passage: {len(passages)} passages but {len(grades)} labels."
            )
        if not 1 <= int(k) <= len(passages):
            raise InvalidInputError(f"k must be between 1 and {len(passages)} (the number of passages), not {k}.")
        if progress is not None:
            progress(0.1, f"Loading {spec.short_name}")
        if spec.kind == "embedder":
            layers = layer_range(range(1, self.num_layers(spec) + 1), first, last, step)
            if progress is not None:
                progress(0.4, "One pass through every layer")
            sweep = self.embedder_layer_sweep(spec, query, passages, layers, task=task)
            description = "cosine of query and passage embeddings at each layer"
        else:
            layers = layer_range(self.valid_layers(spec), first, last, step)
            if progress is not None:
                progress(0.4, "One forward pass, reading every chosen layer")
            sweep = self.reranker_layer_sweep(spec, query, passages, layers)
            description = {
                "native-head": "the layer-wise head at each layer",
                "logit-lens": "the 'Yes' logit read at each layer through the final norm and LM head (logit lens)",
            }.get(sweep.method, sweep.method)
        per_layer: dict[str, list[float]] = {}
        if grades is not None:
            for row in np.asarray(sweep.scores, dtype=float):
                for name, value in metrics.graded_metrics(row, grades, int(k)).items():
                    per_layer.setdefault(name, []).append(value)
        return SweepOutcome(spec.short_name, sweep, description, per_layer, int(k))

    def reranker_layer_sweep(
        self, model: str | ModelSpec, query: str, passages: Sequence[str], layers: Sequence[int] | None
    ) -> LayerSweepResult:
        """Every requested layer's score for every passage, from one forward pass."""
        from flagdemo.models.rerankers import layer_sweep

        query, passages = (query or "").strip(), clean_lines(passages)
        if not query or not passages:
            raise EmptyInputError("Give a query and at least one passage (one per line).")
        with self.reranker_for(model) as reranker:
            for layer in layers or ():
                _check_layer(reranker, int(layer))
            return layer_sweep(
                reranker, [(query, p) for p in passages], layers=None if layers is None else list(layers)
            )

    def valid_layers(self, model: str | ModelSpec) -> list[int]:
        """The layers a reranker can be cut at (layer-wise heads, or every decoder layer for the logit lens)."""
        with self.reranker_for(model) as reranker:
            valid = list(getattr(reranker, "valid_layers", []) or [])
            return valid or list(range(1, int(reranker.num_layers) + 1))

    def embedder_layer_sweep(
        self,
        model: str | ModelSpec,
        query: str,
        passages: Sequence[str],
        layers: Sequence[int] | None,
        *,
        task: str | None = None,
    ) -> LayerSweepResult:
        """An embedder's query–passage cosine at each layer (all layers come from one forward pass per side)."""
        from flagdemo.models.records import LayerSweepResult

        query, passages = (query or "").strip(), clean_lines(passages)
        if not query or not passages:
            raise EmptyInputError("Give a query and at least one passage (one per line).")
        with self.embedder_for(model, task=task) as embedder:
            started = time.perf_counter()
            q = embedder.encode_detailed([query], mode="query", all_layers=True)
            p = embedder.encode_detailed(passages, mode="passage", all_layers=True)
            seconds = time.perf_counter() - started
        top = q.layer_embeddings.shape[0] - 1
        chosen = list(range(1, top + 1)) if layers is None else [int(layer) for layer in layers]
        for layer in chosen:
            if not 0 <= layer <= top:
                raise LayerOutOfRangeError(f"Layer {layer} does not exist: this embedder has layers 0 to {top}.")
        scores = np.stack(
            [
                q.layer_embeddings[layer, 0].astype(np.float64) @ p.layer_embeddings[layer].astype(np.float64).T
                for layer in chosen
            ]
        )
        return LayerSweepResult(
            layers=chosen, scores=scores, method="embedder-layers", seconds=seconds, cumulative_seconds=[]
        )

    # ---- Projection ---------------------------------------------------------------------------------------

    @shared_result("project", models=("model", "model_b"))
    def project(
        self,
        texts: Sequence[str],
        *,
        model: str | ModelSpec,
        labels: Sequence[str] | None = None,
        queries: Sequence[str] = (),
        layer: int = -1,
        colour_by: str = "label",
        params: dict | None = None,
        model_b: str | ModelSpec | None = None,
        layer_b: int = -1,
        progress: Callable[[float, str], None] | None = None,
        task: str | None = None,
    ) -> ProjectionOutcome:
        """A map of ``texts`` (passage mode) with ``queries`` placed in it, each query's cosine to every text, and
        optionally a second 2D map (another model, another layer, or both) with the same points.

        ``colour_by``: 'label' (the given labels), 'cluster' (k-means, k = number of labels), 'none'. ``params`` go
        to ``projection.project`` (method, dims, n_neighbors, min_dist, perplexity, seed). ``task``: LLM-Embedder's
        task for the main map (the second map's model reads its own defaults).
        """
        from flagdemo.analysis import projection
        from flagdemo.models.records import MapOutcome, ProjectionOutcome

        spec = self.spec(model, "embedder")
        spec_b = self.spec(model_b, "embedder") if _chosen(model_b) else None
        texts, queries = list(texts), list(queries)
        if not texts:
            raise EmptyInputError("There is nothing to project: write one text per line (optionally label<TAB>text).")
        labels = list(labels) if labels is not None else ["text"] * len(texts)
        params = dict(params or {})
        if progress is not None:
            progress(0.1, f"Encoding {len(texts)} texts with {spec.short_name}")
        vectors = self.embeddings(texts, model=spec, mode="passage", layer=layer, task=task)
        query_vectors = self.embeddings(queries, model=spec, mode="query", layer=layer, task=task) if queries else None
        groups = projection.colour_groups(colour_by, labels, vectors)
        if progress is not None:
            progress(0.5, f"Projecting with {str(params.get('method', 'umap')).upper()}")
        fitted = projection.project(vectors, queries=query_vectors, **params)
        title = f"{spec.short_name} ({layer_name(layer)}) · {fitted.method.upper()} {params.get('dims', 2)}D"
        outcome = ProjectionOutcome(
            texts=texts,
            groups=groups,
            queries=queries,
            main=MapOutcome(title, fitted.coords, fitted.method, fitted.params, fitted.note, fitted.query_coords),
            cosines=None if query_vectors is None else scoring.cosine(query_vectors, vectors),
        )
        if spec_b is not None or int(layer_b) >= 0:
            spec_b = spec_b or spec
            if progress is not None:
                progress(0.75, f"Second map: {spec_b.short_name}")
            vectors_b = self.embeddings(texts, model=spec_b, mode="passage", layer=layer_b)
            flat = {**params, "dims": 2}
            map_a = fitted if params.get("dims", 2) == 2 else projection.project(vectors, **flat)
            map_b = projection.project(vectors_b, **flat)
            outcome.side = (
                MapOutcome(f"A: {spec.short_name} ({layer_name(layer)})", map_a.coords, map_a.method, map_a.params),
                MapOutcome(
                    f"B: {spec_b.short_name} ({layer_name(layer_b)})", map_b.coords, map_b.method, map_b.params,
                    map_b.note,
                ),
            )  # fmt: skip
        return outcome

    # ---- Compare ------------------------------------------------------------------------------------------

    @shared_result("compare", models=("model_a", "model_b"))
    def compare(
        self,
        model_a: str | ModelSpec,
        model_b: str | ModelSpec,
        *,
        layer_a: int = -1,
        layer_b: int = -1,
        k: int = 10,
        max_queries: int = 0,
        task_a: str | None = None,
        task_b: str | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> CompareOutcome:
        """Two embedders (or one at two layers) on the bundled labelled set: metrics per query, where they differ.

        ``max_queries`` 0 = all; otherwise the first that many queries (every passage stays a candidate).
        ``task_a`` / ``task_b``: LLM-Embedder's task for A / B (None for every other model).
        """
        from flagdemo.analysis import evaluation
        from flagdemo.models.records import CompareOutcome

        spec_a, spec_b = self.spec(model_a, "embedder"), self.spec(model_b, "embedder")
        labelled = datasets.load_retrieval_set()
        n_queries, n_passages = len(labelled.queries), len(labelled.passages)
        if not 0 <= int(max_queries) <= n_queries:
            raise InvalidInputError(
                f"The number of queries must be between 0 (all) and {n_queries}, not {max_queries}."
            )
        if not 1 <= int(k) <= n_passages:
            raise InvalidInputError(f"k must be between 1 and {n_passages} (the labelled passages), not {k}.")
        if int(max_queries) > 0:
            labelled = labelled.subset(max_queries=int(max_queries))
        names = (run_name(spec_a.short_name, layer_a), run_name(spec_b.short_name, layer_b))
        if progress is not None:
            progress(0.05, f"Encoding {len(labelled.queries)} queries and {len(labelled.passages)} passages")
        run_a, run_b = self.retrieval_runs(
            [(spec_a, int(layer_a), names[0]), (spec_b, int(layer_b), names[1])], labelled, int(k), (task_a, task_b)
        )
        return CompareOutcome(
            comparison=evaluation.compare_runs(run_a, run_b, int(k), names=names),
            k=int(k),
            n_queries=len(labelled.queries),
            n_passages=len(labelled.passages),
            seconds=(run_a.seconds, run_b.seconds),
            same_model=(spec_a, task_a) == (spec_b, task_b),
        )

    # ---- Compare ------------------------------------------------------------------------------------------

    def retrieval_runs(
        self,
        specs: Sequence[tuple[str | ModelSpec, int | None, str]],
        retrieval_set,
        k: int,
        tasks: Sequence[str | None] | None = None,
    ) -> list:
        """Dense retrieval over a labelled set for each (model, layer, name); layer None/-1 = final; ``tasks`` one
        LLM-Embedder task (or None) per entry.

        Same scoring as ``evaluation.retrieve`` (cosine of query-mode and passage-mode embeddings), but at any layer,
        so an embedder can be compared with itself cut short. Each model encodes the set once, for all its layers,
        and a repeated comparison reuses those encodings (see ``labelled_encodings``).
        """
        from flagdemo.analysis import evaluation

        query_ids, passage_ids = retrieval_set.queries["id"].tolist(), retrieval_set.passages["id"].tolist()
        encoded: dict[tuple[ModelSpec, str | None], tuple[EncodeResult, EncodeResult, float]] = {}
        tasks = list(tasks) if tasks is not None else [None] * len(specs)
        specs = [(self.spec(model, "embedder"), layer, name) for model, layer, name in specs]
        runs = []
        for (model, layer, name), task in zip(specs, tasks, strict=True):
            wanted = None if layer is None or int(layer) < 0 else int(layer)
            if (model, task) not in encoded:
                all_layers = any(
                    (m, t) == (model, task) and lay is not None and int(lay) >= 0
                    for (m, lay, _), t in zip(specs, tasks, strict=True)
                )
                encoded[model, task] = self.labelled_encodings(
                    model,
                    retrieval_set.queries["text"].tolist(),
                    retrieval_set.passages["text"].tolist(),
                    all_layers=all_layers,
                    task=task,
                )
            queries, passages, seconds = encoded[model, task]
            scores = scoring.cosine(self.pick_layer(queries, wanted), self.pick_layer(passages, wanted))
            run = evaluation.run_from_scores(scores, query_ids, passage_ids)
            runs.append(evaluation.evaluate_run(run, retrieval_set, k, name=name, seconds=seconds))
        return runs

    def labelled_encodings(
        self,
        model: str | ModelSpec,
        queries: Sequence[str],
        passages: Sequence[str],
        *,
        all_layers: bool,
        task: str | None = None,
    ) -> tuple[EncodeResult, EncodeResult, float]:
        """Exact fp32 query and passage encodings of a labelled set, and the seconds encoding them took.

        They are kept with the model's wrapper (at most two sets per wrapper) and reused while it is kept: the same
        texts in the same batches give the same numbers, so a repeated comparison need not encode the set again.
        """
        queries, passages = clean_lines(queries), clean_lines(passages)
        if not queries or not passages:
            raise EmptyInputError("There is no text to encode: write at least one line.")
        digest = hashlib.sha256(json.dumps([queries, passages]).encode("utf-8", "surrogatepass")).hexdigest()
        key = (bool(all_layers), digest)
        with self.embedder_for(model, task=task) as embedder:
            with self._labelled_lock:
                kept = self._labelled.setdefault(embedder, OrderedDict())
            found = kept.get(key)
            if found is None:
                started = time.perf_counter()
                query_result = embedder.encode_detailed(queries, mode="query", all_layers=all_layers)
                passage_result = embedder.encode_detailed(passages, mode="passage", all_layers=all_layers)
                found = kept[key] = (query_result, passage_result, time.perf_counter() - started)
                while len(kept) > 2:
                    kept.popitem(last=False)
        return found

    # ---- Visualized-BGE: images, texts and both (Encode, Similarity, Projection) ------------------------------

    @staticmethod
    def is_visual(name: object) -> bool:
        """Whether ``name`` is one of the two Visualized-BGE catalog entries (chosen by their exact key)."""
        return visual.visual_entry(name) is not None

    def encode_mixed(self, items: Sequence, *, model: str):
        """Vectors, labels and thumbnails of image, text and fused items (``visual.make_items``) with the
        Visualized-BGE entry ``model``, loaded on first use into the shared model cache."""
        entry = visual.visual_entry(model)
        if entry is None:
            raise InvalidInputError(
                f"{str(model)[:80]} reads texts only: images need a Visualized-BGE model "
                "(bge-visualized-base-en-v1.5 or bge-visualized-m3)."
            )
        with serving.model_work(("visualized-bge", entry.key)):
            return visual.encode_mixed(visual.load_catalog_model(entry), items)

    def mixed_similarity(self, queries: Sequence, candidates: Sequence, *, model: str):
        """(query encoding, candidate encoding, cosines queries x candidates) for image / text / fused items."""
        query_side = self.encode_mixed(queries, model=model)
        candidate_side = self.encode_mixed(candidates, model=model)
        return query_side, candidate_side, visual.mixed_similarity(query_side, candidate_side)

    def project_mixed(
        self, items: Sequence, *, model: str, labels: Sequence[str], queries: Sequence = (), colour_by: str = "label",
        params: dict | None = None,
    ):  # fmt: skip
        """A map of image / text items with ``queries`` (items too) placed in it: (encoding, query encoding or
        None, ProjectionOutcome whose texts are the items' labels)."""
        from flagdemo.analysis import projection
        from flagdemo.models.records import MapOutcome, ProjectionOutcome

        params = dict(params or {})
        encoded = self.encode_mixed(items, model=model)
        asked = self.encode_mixed(queries, model=model) if queries else None
        fitted = projection.project(encoded.vectors, queries=None if asked is None else asked.vectors, **params)
        title = f"{model} · {fitted.method.upper()} {params.get('dims', 2)}D"
        outcome = ProjectionOutcome(
            texts=encoded.labels,
            groups=projection.colour_groups(colour_by, list(labels), encoded.vectors),
            queries=[] if asked is None else asked.labels,
            main=MapOutcome(title, fitted.coords, fitted.method, fitted.params, fitted.note, fitted.query_coords),
            cosines=None if asked is None else scoring.cosine(asked.vectors, encoded.vectors),
        )
        return encoded, asked, outcome

    # ---- Models tab ---------------------------------------------------------------------------------------

    def catalog_rows(self) -> list[dict]:
        """Every catalog model and whether it can be used here (the reason when not)."""
        rows = []
        for entry in catalog.ALL_ENTRIES:
            where = catalog.location(entry) if entry.supported else None
            rows.append(
                {
                    "model": entry.key,
                    "kind": entry.kind,
                    "class": entry.model_class_name,
                    "here": self._here(entry, where),
                    "notes": entry.notes,
                }
            )
        return rows

    @staticmethod
    def _here(entry: catalog.CatalogEntry, where: str | None) -> str:
        if entry.model_class == "visualized-bge":  # not a FlagAutoModel class, but flagdemo runs it
            where = catalog.location(entry)
        elif not entry.supported:
            return "not supported"
        return LOCATION_WORDS.get(where, "needs download")

    def cache_rows(self) -> list[dict]:
        """What the model cache holds, in a visitor's words: model, memory, device, load time, and what runs it
        (PyTorch, or ONNX Runtime with what its graph cost: exported, or loaded from the graph cache)."""
        runs_on: dict[tuple[str, bool], set[str]] = {}  # (model folder, is its graph entry) → backend summaries
        for key, wrapper in self.wrappers.kept():
            spec, info = (
                next((part for part in key if isinstance(part, ModelSpec)), None),
                getattr(wrapper, "backend_info", None),
            )
            if spec is not None and info is not None:
                graph_entry = bool(getattr(wrapper, "graph_is_cache_entry", False))
                runs_on.setdefault((str(spec.source.path), graph_entry), set()).add(info.summary())
        rows = []
        for entry in self.cache.entries():
            graph_entry = len(entry.key) > 1 and entry.key[1] == "onnx"
            default = "ONNX Runtime" if graph_entry else "PyTorch"
            rows.append(
                {
                    "model": shown_name(entry.describe or str(entry.key[0])),
                    "MB": round(entry.nbytes / 2**20, 1 if entry.nbytes < 10 * 2**20 else None),
                    "device": entry.device,
                    "load s": round(entry.load_seconds, 1),
                    "runs on": " ".join(sorted(runs_on.get((str(entry.key[0]), graph_entry), ()))) or default,
                }
            )
        return rows

    def unload(self, which: str) -> bool:
        """Drop the loaded model named as in the cache table (its ``model`` column); all of them for 'all'."""
        self.wrappers.clear()  # a kept wrapper must not hold on to weights the user asked to free
        if which == "all":
            had = len(self.cache) > 0
            self.cache.clear()
            return had
        for entry in self.cache.entries():
            if which in (shown_name(entry.describe), entry.describe, " | ".join(map(str, entry.key))):
                return self.cache.unload(entry.key)
        return False


def check_max_length(model, max_length: int | None) -> None:
    """Refuse a maximum length the model cannot read: its position embeddings end there, and torch would fail."""
    config_of = getattr(model, "_backbone_config", None)  # an embedder: its config without loading torch weights
    config = config_of() if config_of is not None else getattr(getattr(model, "model", None), "config", None)
    limit = readable_tokens(config)
    if max_length is not None and limit is not None and int(max_length) > limit:
        raise InvalidInputError(
            f"The maximum length {int(max_length)} is more than this model can read: choose at most {limit} tokens."
        )


def _fits(entry: catalog.CatalogEntry | None, role: Role) -> bool:
    """Whether a catalog model (None: a folder or hub id, judged when it is resolved) can play ``role``."""
    if entry is None:
        return True
    if role == "cross-encoder":
        return entry.model_class == "encoder-only-base"
    if role in ("llm-reranker", "layer-cutoff"):
        return entry.model_class != "encoder-only-base"
    return True


def _chosen(name: str | ModelSpec | None) -> bool:
    return isinstance(name, ModelSpec) or (bool(name) and name.strip() != "" and name != NO_MODEL)


def _check_layer(reranker, layer: int) -> None:
    valid = list(getattr(reranker, "valid_layers", []) or [])
    if valid and layer not in valid:
        raise LayerOutOfRangeError(f"Layer {layer} is not available for this model: choose {valid[0]} to {valid[-1]}.")


def _outcome_from_rerank(method: str, model: str, result: RerankResult) -> MethodOutcome:
    return MethodOutcome(
        method=method,
        model=model,
        scores=[float(s) for s in result.scores],
        normalized=[float(s) for s in result.normalized],
        load_seconds=result.timings.load_seconds,
        run_seconds=result.timings.run_seconds,
        n_tokens=result.timings.n_tokens,
    )


def shown_name(describe: str) -> str:
    """A cache entry's description for visitors: a folder's path becomes its last part (no server paths)."""
    name, _, rest = describe.partition(" (")
    if looks_like_path(name):
        name = Path(name).name
    return f"{name} ({rest}" if rest else name


def layer_name(layer: int | None) -> str:
    return "final layer" if layer is None or int(layer) < 0 else f"layer {int(layer)}"


def run_name(model: str, layer: int | None) -> str:
    """How a run is named in Compare's tables: the model and its layer."""
    return f"{model} @ {layer_name(layer)}"


def layer_range(valid: Sequence[int], first: int = 0, last: int = 0, step: int = 1) -> list[int]:
    """Layers from ``first`` to ``last`` every ``step`` (``last`` always included); ``first`` 0 = the first
    transformer layer, ``last`` 0 = the model's last. Anything outside the model's layers is refused."""
    valid = sorted(int(v) for v in valid)
    if int(step) < 1 or int(step) > max(1, len(valid)):
        raise InvalidInputError(f"The layer step must be between 1 and {max(1, len(valid))}, not {step}.")
    if int(first) < 0 or int(last) < 0:
        raise InvalidInputError("Layers are counted from 1 (0 = the first or last layer): negative ones do not exist.")
    low = int(first) if int(first) > 0 else min((v for v in valid if v >= 1), default=valid[0])
    high = int(last) if int(last) > 0 else valid[-1]
    outside = [v for v in (low, high) if v not in valid]
    if outside:
        raise LayerOutOfRangeError(
            f"Layer {outside[0]} is not available: this model has layers {valid[0]} to {valid[-1]}."
        )
    if low > high:
        raise InvalidInputError(f"The first layer ({low}) is after the last layer ({high}).")
    chosen = [v for v in valid if low <= v <= high and (v - low) % int(step) == 0]
    return chosen if chosen[-1] == high else [*chosen, high]
