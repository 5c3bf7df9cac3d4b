"""The facade the app calls: model names in, numbers out. No gradio here.

``Engine`` holds the default model names and builds FlagEmbedding-style model objects on demand. The heavy part
(weights) lives in the process-wide ``MODEL_CACHE`` through ``flagdemo.loading``, so nothing big is ever kept in a
UI session. The wrappers around the weights (tokenizer, settings, an LLM reranker's checked logit lens) are kept in
a ``WrapperCache`` while their weights stay cached: rebuilding them took most of a warm click. Plain dense
embeddings go through ``EMBEDDING_CACHE``, so a repeated text is not encoded again.
Tests build an ``Engine`` that points at tiny local models.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flagdemo import catalog, limits, serving
from flagdemo.cache import MODEL_CACHE, ModelCache
from flagdemo.embedding_cache import EMBEDDING_CACHE, EmbeddingCache
from flagdemo.errors import (
    EmptyInputError,
    FlagDemoError,
    InvalidInputError,
    LayerOutOfRangeError,
    UnknownModelError,
)
from flagdemo.fastpath import check_precision, with_precision
from flagdemo.loading import resolve_source
from flagdemo.positions import readable_tokens

if TYPE_CHECKING:
    from flagdemo.results import EncodeResult, LayerSweepResult, RerankResult

logger = logging.getLogger(__name__)

EMBEDDER_MODES = ("query", "passage", "raw")
NO_MODEL = "(none)"


def clean_lines(text: str | Sequence[str] | None) -> list[str]:
    """Non-empty, stripped lines: the app's text boxes hold one item per line."""
    return limits.split_lines(text)[0]


def _config_architectures(name: str) -> list[str]:
    """The ``architectures`` of a local model folder's config.json (empty when unknown)."""
    config = Path(name) / "config.json"
    try:
        return list(json.loads(config.read_text()).get("architectures") or [])
    except (OSError, ValueError, AttributeError):  # no such file, a name too long for a path, not a JSON object
        return []


def guess_model_class(name: str, kind: str) -> str | None:
    """FlagEmbedding's ``model_class`` for a model outside the catalog (None: let the catalog decide).

    FlagAutoModel refuses unknown names without a class; for a local folder its config says whether it is a
    decoder (``*ForCausalLM``) or an encoder, which is all the app needs to pick the base classes.
    """
    if catalog.lookup(name, kind) is not None:
        return None
    architectures = _config_architectures(name)
    decoder = any(arch.endswith("ForCausalLM") for arch in architectures)
    if kind == "embedder":
        if any(_is_file(Path(name) / head) for head in ("colbert_linear.pt", "sparse_linear.pt")):
            return "encoder-only-m3"
        return "decoder-only-base" if decoder else "encoder-only-base"
    if any("LayerWise" in arch for arch in architectures):
        return "decoder-only-layerwise"
    return "decoder-only-base" if decoder else "encoder-only-base"


@dataclass
class MethodOutcome:
    """One reranking method's result, or the sentence that says why it could not run."""

    method: str
    model: str
    scores: list[float] | None = None
    normalized: list[float] | None = None
    load_seconds: float = 0.0
    run_seconds: float = 0.0
    n_tokens: int = 0
    error: str = ""


@dataclass
class SimilarityOutcome:
    """Dense scores for every query × passage pair; for BGE-M3 also sparse, ColBERT and the per-text details."""

    dense: np.ndarray
    sparse: np.ndarray | None = None
    colbert: np.ndarray | None = None
    query_result: EncodeResult | None = None
    passage_result: EncodeResult | None = None

    @property
    def is_m3(self) -> bool:
        return self.sparse is not None and self.colbert is not None

    def combined(self, weights: Sequence[float]) -> np.ndarray:
        """FlagEmbedding's weighted mean of dense, sparse and ColBERT scores (weights in that order)."""
        if not self.is_m3:
            return self.dense
        w_dense, w_sparse, w_colbert = (float(w) for w in weights)
        total = w_dense + w_sparse + w_colbert
        if total <= 0:
            raise InvalidInputError("At least one of the dense, sparse and ColBERT weights must be positive.")
        return (w_dense * self.dense + w_sparse * self.sparse + w_colbert * self.colbert) / total


@dataclass
class _HeldWrapper:
    wrapper: object
    needs: frozenset  # the model-cache keys loaded when it was built: all must still be loaded for it to be reused
    busy: threading.Lock = field(default_factory=threading.Lock)


class WrapperCache:
    """Model wrappers kept between calls for as long as every model the cache held when they were built stays there.

    A wrapper around cached weights still costs a tokenizer load (tens of ms) and, for an LLM reranker, a check pass
    of its logit lens; rebuilding them on every click was most of a warm call. A wrapper is dropped as soon as any
    model that was loaded when it was built leaves ``model_cache`` (evicted or unloaded), so it never keeps evicted
    weights alive, and a wrapper whose build made the cache evict is not kept at all. One thread uses a wrapper at a
    time: a caller that finds it busy gets a private one, as every caller did before.
    """

    def __init__(self, model_cache: ModelCache, max_wrappers: int = 16) -> None:
        self.model_cache = model_cache
        self.max_wrappers = max_wrappers
        self.builds = 0
        self._held: OrderedDict[Hashable, _HeldWrapper] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._held)

    def clear(self) -> None:
        with self._lock:
            self._held.clear()

    @contextmanager
    def lease(self, key: Hashable, build: Callable[[], object]) -> Iterator:
        """The kept wrapper for ``key`` (its ``load_seconds`` set to 0: nothing was loaded), else a new one."""
        held = self._take(key)
        if held is None:
            loaded_before = self._loaded()
            wrapper = build()
            self.builds += 1
            held = self._keep(key, wrapper, loaded_before)
            if held is None:
                yield wrapper
                return
        else:
            held.wrapper.load_seconds = 0.0
        try:
            yield held.wrapper
        finally:
            held.busy.release()

    def _loaded(self) -> frozenset:
        return frozenset(entry.key for entry in self.model_cache.entries())

    def _take(self, key: Hashable) -> _HeldWrapper | None:
        loaded = self._loaded()
        with self._lock:
            self._drop_stale(loaded)
            held = self._held.get(key)
            if held is None or not held.busy.acquire(blocking=False):
                return None
            self._held.move_to_end(key)
            return held

    def _keep(self, key: Hashable, wrapper: object, loaded_before: frozenset) -> _HeldWrapper | None:
        """Keep a new wrapper (returned busy, for its builder) unless building it evicted a model or one is kept."""
        loaded = self._loaded()
        with self._lock:
            self._drop_stale(loaded)
            if not loaded_before <= loaded or key in self._held:
                return None
            held = self._held[key] = _HeldWrapper(wrapper, loaded)
            held.busy.acquire()
            while len(self._held) > self.max_wrappers:
                self._held.popitem(last=False)
            return held

    def _drop_stale(self, loaded: frozenset) -> None:
        for key in [key for key, held in self._held.items() if not held.needs <= loaded]:
            del self._held[key]


@dataclass
class Engine:
    """Default model names and the operations behind each tab."""

    embedder: str = catalog.DEFAULT_EMBEDDER
    llm_reranker: str = catalog.DEFAULT_RERANKER
    cross_encoder: str = NO_MODEL
    layerwise_reranker: str = catalog.DEFAULT_RERANKER
    cutoff_layer: int = 12
    devices: str | None = None
    extra_embedders: tuple[str, ...] = ()
    extra_rerankers: tuple[str, ...] = ()
    cache: ModelCache = field(default=MODEL_CACHE, repr=False)
    embedding_cache: EmbeddingCache = field(default=EMBEDDING_CACHE, repr=False)
    wrappers: WrapperCache = field(init=False, repr=False, compare=False)

    _labelled: weakref.WeakKeyDictionary = field(init=False, repr=False, compare=False)
    _labelled_lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.wrappers = WrapperCache(self.cache)
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

    # ---- model objects (weights come from the shared cache) ------------------------------------------------

    def load_embedder(self, name: str, *, normalize: bool = True):
        """A FlagAutoModel for ``name``; its weights are shared through MODEL_CACHE."""
        from flagdemo.embedders import FlagAutoModel

        name = self._require_name(name, "embedder")
        return FlagAutoModel.from_finetuned(
            name,
            model_class=guess_model_class(name, "embedder"),
            normalize_embeddings=bool(normalize),
            devices=self.devices,
            trust_remote_code=remote_code_wanted(name, "embedder"),
        )

    def load_reranker(self, name: str):
        """A FlagAutoReranker for ``name``; its weights are shared through MODEL_CACHE."""
        from flagdemo.rerankers import FlagAutoReranker

        name = self._require_name(name, "reranker")
        return FlagAutoReranker.from_finetuned(
            name,
            model_class=guess_model_class(name, "reranker"),
            devices=self.devices,
            trust_remote_code=remote_code_wanted(name, "reranker"),
        )

    @contextmanager
    def embedder_for(self, name: str, *, normalize: bool = True) -> Iterator:
        """``load_embedder(name)``, kept between calls (see ``WrapperCache``)."""
        name = self._require_name(name, "embedder")
        location = _location(name)
        if location is None:  # not resolvable: the load says why, in its own sentence
            yield self.load_embedder(name, normalize=normalize)
            return
        key = ("embedder", name, location, bool(normalize), guess_model_class(name, "embedder"),
               remote_code_wanted(name, "embedder"), self.devices)  # fmt: skip
        with (
            serving.model_work(location),
            self.wrappers.lease(key, lambda: self.load_embedder(name, normalize=normalize)) as embedder,
        ):  # one job at a time on these weights
            yield embedder

    @contextmanager
    def reranker_for(self, name: str) -> Iterator:
        """``load_reranker(name)``, kept between calls (see ``WrapperCache``)."""
        name = self._require_name(name, "reranker")
        location = _location(name)
        if location is None:  # not resolvable: the load says why, in its own sentence
            yield self.load_reranker(name)
            return
        key = ("reranker", name, location, guess_model_class(name, "reranker"),
               remote_code_wanted(name, "reranker"), self.devices)  # fmt: skip
        with serving.model_work(location), self.wrappers.lease(key, lambda: self.load_reranker(name)) as reranker:
            yield reranker

    def own_models(self) -> set[str]:
        """The models this app was configured with (by its operator, not typed in by a visitor)."""
        names = {self.embedder, self.llm_reranker, self.cross_encoder, self.layerwise_reranker}
        return (names | set(self.extra_embedders) | set(self.extra_rerankers)) - {NO_MODEL}

    def _require_name(self, name: str | None, kind: str) -> str:
        if name is not None and not isinstance(name, str):
            raise InvalidInputError(f"The {kind} must be given by its name.")
        cleaned = (name or "").strip()
        if not cleaned or cleaned == NO_MODEL:
            raise InvalidInputError(f"Choose an {kind} model first.")
        if limits.public_mode() and cleaned not in self.own_models():
            ensure_public_model(cleaned, kind)
        return cleaned

    @staticmethod
    def default_instruction(name: str, mode: str) -> str:
        """The instruction FlagEmbedding would prepend for this model and mode ('' when none)."""
        entry = catalog.lookup(name or "", "embedder")
        if entry is None or mode == "raw":
            return ""
        instruction = entry.query_instruction if mode == "query" else entry.passage_instruction
        return instruction or ""

    # ---- Encode -------------------------------------------------------------------------------------------

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
    ) -> EncodeResult:
        """Embed ``texts`` as queries, passages or raw text; ``instruction`` None = the model's own.

        ``precision`` 'bf16' / 'int8' runs the approximate CPU modes; the default stays exact, since the tabs without
        a Precision choice (Compare, Project) must not turn approximate silently. The UI applies FLAGDEMO_PRECISION.
        """
        precision = check_precision(precision)
        if mode not in EMBEDDER_MODES:
            raise InvalidInputError(f"Mode must be one of {', '.join(EMBEDDER_MODES)}, not {mode!r}.")
        texts = clean_lines(texts)
        if not texts:
            raise EmptyInputError("There is no text to encode: write at least one line.")
        if max_length is not None and int(max_length) < 2:
            raise InvalidInputError(f"The maximum length must be at least 2 tokens, not {max_length}.")
        with self.embedder_for(model, normalize=normalize) as embedder:
            check_max_length(embedder, max_length)
            return with_precision(embedder, precision).encode_detailed(
                texts,
                mode=mode,
                max_length=None if max_length is None else int(max_length),
                all_layers=all_layers,
                instruction=instruction,
            )

    def embeddings(
        self, texts: Sequence[str], *, model: str, mode: str = "passage", layer: int | None = None
    ) -> np.ndarray:
        """Just the vectors at ``layer`` (None or -1 = final); final-layer vectors come from the embedding cache."""
        if layer is not None and int(layer) >= 0:
            return self.pick_layer(self.encode(texts, model=model, mode=mode, all_layers=True), layer)
        if mode not in EMBEDDER_MODES:
            raise InvalidInputError(f"Mode must be one of {', '.join(EMBEDDER_MODES)}, not {mode!r}.")
        texts = clean_lines(texts)
        if not texts:
            raise EmptyInputError("There is no text to encode: write at least one line.")
        with self.embedder_for(model) as embedder:
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

    def num_layers(self, model: str) -> int:
        with self.embedder_for(model) as embedder:
            return int(embedder.num_layers)

    # ---- Similarity ---------------------------------------------------------------------------------------

    def similarity(
        self,
        queries: Sequence[str],
        passages: Sequence[str],
        *,
        model: str,
        use_instruction: bool = True,
        max_length: int | None = None,
        precision: str = "fp32",
    ) -> SimilarityOutcome:
        """Scores for every query × passage pair as FlagEmbedding computes them (inner products of embeddings).

        Dense-only models take their embeddings from the embedding cache (a repeated text is not encoded again);
        BGE-M3 needs tokens, sparse weights and ColBERT vectors, so it encodes in full. ``precision`` as in encode.
        """
        from flagdemo.embedders import BGEM3FlagModel

        precision = check_precision(precision)
        queries, passages = clean_lines(queries), clean_lines(passages)
        if not queries or not passages:
            raise EmptyInputError("Give at least one query and one passage (one per line).")
        q_mode, p_mode = ("query", "passage") if use_instruction else ("raw", "raw")
        with self.embedder_for(model) as embedder:
            check_max_length(embedder, max_length)
            if not isinstance(embedder, BGEM3FlagModel):
                q_vectors, p_vectors = (
                    self.embedding_cache.encode(embedder, texts, mode=mode, max_length=max_length, precision=precision)
                    for texts, mode in ((queries, q_mode), (passages, p_mode))
                )
                return SimilarityOutcome(dense=q_vectors.astype(np.float64) @ p_vectors.astype(np.float64).T)
            runner = with_precision(embedder, precision)
            q = runner.encode_detailed(queries, mode=q_mode, max_length=max_length)
            p = runner.encode_detailed(passages, mode=p_mode, max_length=max_length)
        outcome = SimilarityOutcome(dense=q.embeddings.astype(np.float64) @ p.embeddings.astype(np.float64).T)
        outcome.query_result, outcome.passage_result = q, p
        if q.lexical_weights is not None and p.lexical_weights is not None:
            outcome.sparse = np.array(
                [[lexical_score(qw, pw) for pw in p.lexical_weights] for qw in q.lexical_weights], dtype=np.float64
            )
        if q.colbert_vecs is not None and p.colbert_vecs is not None:
            outcome.colbert = np.array(
                [[colbert_score(qv, pv) for pv in p.colbert_vecs] for qv in q.colbert_vecs], dtype=np.float64
            )
        return outcome

    # ---- Rerank -------------------------------------------------------------------------------------------

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
        scores = (q.embeddings.astype(np.float64) @ p.embeddings.astype(np.float64).T)[0]
        return MethodOutcome(
            method="bi-encoder",
            model=model,
            scores=scores.tolist(),
            load_seconds=load_seconds,
            run_seconds=time.perf_counter() - started,
            n_tokens=sum(q.token_counts) + sum(p.token_counts),
        )

    def _reranker_scores(self, method: str, model: str, pairs: list[tuple[str, str]]) -> MethodOutcome:
        with self.reranker_for(model) as reranker:
            result: RerankResult = reranker.compute_score_detailed(pairs)
        return _outcome_from_rerank(method, model, result)

    def _cutoff_scores(
        self, method: str, model: str, pairs: list[tuple[str, str]], cutoff_layer: int | None
    ) -> MethodOutcome:
        """A layer-wise reranker's native head at ``cutoff_layer``, or the logit lens for any other LLM reranker."""
        from flagdemo.rerankers import layer_sweep

        layer = int(cutoff_layer) if cutoff_layer is not None else None
        with self.reranker_for(model) as reranker:
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
            normalized=(1.0 / (1.0 + np.exp(-scores))).tolist(),
            load_seconds=load_seconds,
            run_seconds=time.perf_counter() - started,
        )

    # ---- Layer sweep --------------------------------------------------------------------------------------

    def reranker_layer_sweep(
        self, model: str, query: str, passages: Sequence[str], layers: Sequence[int] | None
    ) -> LayerSweepResult:
        """Every requested layer's score for every passage, from one forward pass."""
        from flagdemo.rerankers import layer_sweep

        query, passages = (query or "").strip(), clean_lines(passages)
        if not query or not passages:
            raise EmptyInputError("Give a query and at least one passage (one per line).")
        with self.reranker_for(model) as reranker:
            for layer in layers or ():
                _check_layer(reranker, int(layer))
            return layer_sweep(
                reranker, [(query, p) for p in passages], layers=None if layers is None else list(layers)
            )

    def valid_layers(self, model: str) -> list[int]:
        """The layers a reranker can be cut at (layer-wise heads, or every decoder layer for the logit lens)."""
        with self.reranker_for(model) as reranker:
            valid = list(getattr(reranker, "valid_layers", []) or [])
            return valid or list(range(1, int(reranker.num_layers) + 1))

    def embedder_layer_sweep(
        self, model: str, query: str, passages: Sequence[str], layers: Sequence[int] | None
    ) -> LayerSweepResult:
        """An embedder's query–passage cosine at each layer (all layers come from one forward pass per side)."""
        from flagdemo.results import LayerSweepResult

        query, passages = (query or "").strip(), clean_lines(passages)
        if not query or not passages:
            raise EmptyInputError("Give a query and at least one passage (one per line).")
        with self.embedder_for(model) as embedder:
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

    # ---- Compare ------------------------------------------------------------------------------------------

    def retrieval_runs(self, specs: Sequence[tuple[str, int | None, str]], retrieval_set, k: int) -> list:
        """Dense retrieval over a labelled set for each (model, layer, name); layer None/-1 = final.

        Same scoring as ``evaluation.retrieve`` (cosine of query-mode and passage-mode embeddings), but at any layer,
        so an embedder can be compared with itself cut short. Each model encodes the set once, for all its layers,
        and a repeated comparison reuses those encodings (see ``labelled_encodings``).
        """
        from flagdemo import evaluation

        query_ids, passage_ids = retrieval_set.queries["id"].tolist(), retrieval_set.passages["id"].tolist()
        encoded: dict[str, tuple[EncodeResult, EncodeResult, float]] = {}
        runs = []
        for model, layer, name in specs:
            wanted = None if layer is None or int(layer) < 0 else int(layer)
            if model not in encoded:
                all_layers = any(m == model and lay is not None and int(lay) >= 0 for m, lay, _ in specs)
                encoded[model] = self.labelled_encodings(
                    model,
                    retrieval_set.queries["text"].tolist(),
                    retrieval_set.passages["text"].tolist(),
                    all_layers=all_layers,
                )
            queries, passages, seconds = encoded[model]
            scores = _unit_rows(self.pick_layer(queries, wanted)) @ _unit_rows(self.pick_layer(passages, wanted)).T
            run = evaluation.run_from_scores(scores, query_ids, passage_ids)
            runs.append(evaluation.evaluate_run(run, retrieval_set, k, name=name, seconds=seconds))
        return runs

    def labelled_encodings(
        self, model: str, queries: Sequence[str], passages: Sequence[str], *, all_layers: bool
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
        with self.embedder_for(model) as embedder:
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

    def model_kind(self, name: str) -> str:
        """'embedder' or 'reranker' for a catalog name or local folder (decoders count as rerankers here)."""
        entry = catalog.lookup(name or "")
        if entry is not None:
            return entry.kind
        if name in self.extra_embedders or name == self.embedder:
            return "embedder"
        if limits.public_mode() and name not in self.own_models():
            ensure_public_model(name, None)  # refuses: a visitor's path is never opened, not even its config.json
        heads = ("ForCausalLM", "ForSequenceClassification")
        return "reranker" if any(a.endswith(heads) for a in _config_architectures(name)) else "embedder"

    # ---- Models tab ---------------------------------------------------------------------------------------

    def catalog_rows(self) -> list[dict]:
        """Every catalog model with where it can load from right now."""
        rows = []
        for entry in catalog.ALL_ENTRIES:
            rows.append(
                {
                    "model": entry.key,
                    "kind": entry.kind,
                    "class": entry.model_class_name,
                    "hub id": entry.hub_id,
                    "loads from": catalog.location(entry) or "unavailable",
                    "notes": entry.notes,
                }
            )
        return rows

    def cache_rows(self) -> list[dict]:
        """What the model cache holds: memory, device, dtype, load time."""
        return [
            {
                "model": entry.describe or str(entry.key[0]),
                "MB": entry.nbytes / 2**20,
                "device": entry.device,
                "dtype": entry.dtype,
                "load s": entry.load_seconds,
                "key": " | ".join(map(str, entry.key)),
            }
            for entry in self.cache.entries()
        ]

    def unload(self, key_text: str) -> bool:
        """Drop the cache entry whose key (as shown in the table) matches; all of them for 'all'."""
        self.wrappers.clear()  # a kept wrapper must not hold on to weights the user asked to free
        if key_text == "all":
            had = len(self.cache) > 0
            self.cache.clear()
            return had
        for entry in self.cache.entries():
            if " | ".join(map(str, entry.key)) == key_text:
                return self.cache.unload(entry.key)
        return False


def _location(name: str) -> str | None:
    """Where ``name`` loads from now (a folder or hub id), None when it does not resolve."""
    try:
        return resolve_source(name).path
    except (FlagDemoError, OSError):
        return None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name too long to be a path
        return False


def check_max_length(model, max_length: int | None) -> None:
    """Refuse a maximum length the model cannot read: its position embeddings end there, and torch would fail."""
    limit = readable_tokens(getattr(getattr(model, "model", None), "config", None))
    if max_length is not None and limit is not None and int(max_length) > limit:
        raise InvalidInputError(
            f"The maximum length {int(max_length)} is more than this model can read: choose at most {limit} tokens."
        )


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
        "of them. "
        "Run flagdemo on your own machine to load other models or local folders."
    )


def remote_code_wanted(name: str, kind: str) -> bool | None:
    """trust_remote_code for the app's loads: True only for a catalog model (by exact name) that ships its own code,
    and only on a host that set FLAGDEMO_ALLOW_REMOTE_CODE=1; False for anything else, folders included.

    None (the catalog's default) is returned for catalog models that need no code, so FlagEmbedding's defaults hold.
    """
    entry = catalog.lookup(name, kind)
    if entry is None or name not in (entry.key, entry.hub_id):
        return False
    if entry.needs_remote_code or entry.trust_remote_code:
        return os.environ.get("FLAGDEMO_ALLOW_REMOTE_CODE", "").strip() == "1" or None  # exactly as the catalog
    return None


def _chosen(name: str | None) -> bool:
    return bool(name) and name.strip() != "" and name != NO_MODEL


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


def lexical_score(query_weights: dict[str, float], passage_weights: dict[str, float]) -> float:
    """BGE-M3's sparse score: the sum over shared tokens of the two weights' product (not normalised)."""
    return float(sum(float(w) * float(passage_weights[t]) for t, w in query_weights.items() if t in passage_weights))


def colbert_score(query_vecs: np.ndarray, passage_vecs: np.ndarray) -> float:
    """BGE-M3's ColBERT score: each query vector's best dot product with a passage vector, averaged."""
    q, p = np.asarray(query_vecs, dtype=np.float64), np.asarray(passage_vecs, dtype=np.float64)
    if len(q) == 0 or len(p) == 0:
        return 0.0
    return float((q @ p.T).max(axis=1).sum() / len(q))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), so dot products are cosines."""
    matrix = np.asarray(vectors, dtype=np.float64)
    return matrix / np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)
