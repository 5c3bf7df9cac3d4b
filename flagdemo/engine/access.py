"""The one road from a tab operation to a model: ``ModelAccess`` resolves a name once per request, builds the
FlagEmbedding-style object on weights from the shared model cache, keeps its wrapper between calls, and runs it under
that model's lock with the job's share of the CPU threads. Visualized-BGE and training take the same road.

``shared_result`` serves a whole tab operation from the result cache: identical requests are computed once.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from flagdemo import limits, serving
from flagdemo.engine import visual
from flagdemo.errors import InvalidInputError, ResourceLimitError
from flagdemo.models.cache import ModelCache, WrapperCache, machine_memory_bytes
from flagdemo.models.devices import resolve_device
from flagdemo.models.embedders.base import check_weights
from flagdemo.models.resolve import (
    ModelSpec,
    Role,
    build_embedder,
    build_reranker,
    ensure_public_model,
    holds_bf16_weights,
    resolve,
)
from flagdemo.models.sources import stored_weights
from flagdemo.serving.embedding_cache import EmbeddingCache
from flagdemo.serving.result_cache import ResultCache


@dataclass
class ModelAccess:
    """Models for one engine: its device choice, its embedders' weights, its LLM rerankers' precision, the models its
    operator configured (``own_models``), the shared caches, and what it keeps between calls (wrappers, results,
    labelled encodings)."""

    devices: str | None
    weights: str
    own_models: Callable[[], set[str]]
    cache: ModelCache
    embedding_cache: EmbeddingCache
    llm_precision: str = "fp32"
    wrappers: WrapperCache = field(init=False, repr=False)
    results: ResultCache = field(init=False, repr=False)
    labelled: weakref.WeakKeyDictionary = field(init=False, repr=False)  # wrapper → its labelled-set encodings
    labelled_lock: threading.Lock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_weights(self.weights)
        self.wrappers = WrapperCache(self.cache)
        self.results = ResultCache.from_env()  # whole tab results, computed once for identical requests
        self.labelled = weakref.WeakKeyDictionary()  # gone with the wrapper
        self.labelled_lock = threading.Lock()

    def spec(self, name: str | ModelSpec, role: Role = "any") -> ModelSpec:
        """``name`` resolved once for this request (a ``ModelSpec`` passes through unchanged)."""
        if isinstance(name, ModelSpec):
            return name
        return resolve(name, role, devices=self.devices, own_models=frozenset(self.own_models()))

    def load_embedder(self, name: str | ModelSpec, *, normalize: bool = True, task: str | None = None):
        """An embedder for ``name`` (FlagAutoModel's choices; ``task`` for LLM-Embedder); its weights are shared
        through MODEL_CACHE."""
        spec = self.spec(name, "embedder")
        self.check_fits(spec, bytes_per_value=4)  # fp32 on a CPU, fp16-rounded or not
        return build_embedder(spec, normalize=normalize, task=task, weights=self.weights)

    def load_reranker(self, name: str | ModelSpec, role: Role = "reranker"):
        """A reranker for ``name`` (FlagAutoReranker's choices); its weights are shared through MODEL_CACHE."""
        spec = self.spec(name, role)
        self.check_fits(spec, bytes_per_value=2 if holds_bf16_weights(spec, self.llm_precision) else 4)
        return build_reranker(spec, llm_precision=self.llm_precision)

    def check_fits(self, spec: ModelSpec, *, bytes_per_value: int) -> None:
        """Refuse, before anything loads, a CPU model whose weights (as it will hold them) cannot fit in this
        machine's memory even with every other model unloaded; a sentence instead of the kernel's OOM kill."""
        if resolve_device(spec.devices).type != "cpu" or self.cache.holds_source(spec.source.path):
            return
        stored = stored_weights(spec.source)
        if stored is None:
            return  # not on this machine yet: its size is known only once it has downloaded
        nbytes, stored_bytes_per_value = stored
        needed, room = nbytes * bytes_per_value // stored_bytes_per_value, self.cache.room_for_a_model()
        if needed > room:
            raise ResourceLimitError(
                f"{spec.short_name} needs about {needed / 1e9:.1f} GB of memory to run here, and this server can "
                f"give a model at most {room / 1e9:.1f} GB of its {machine_memory_bytes() / 1e9:.1f} GB, even with "
                "every other model unloaded: choose a smaller model."
            )

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

    @contextmanager
    def visual_model_for(self, name: str) -> Iterator:
        """The Visualized-BGE catalog entry ``name``, loaded on first use into the shared model cache."""
        entry = visual.visual_entry(name)
        if entry is None:
            raise InvalidInputError(
                f"{str(name)[:80]} reads texts only: images need a Visualized-BGE model "
                "(bge-visualized-base-en-v1.5 or bge-visualized-m3)."
            )
        with serving.model_work(("visualized-bge", entry.key)):
            yield visual.load_catalog_model(entry)

    @contextmanager
    def training_work(self, base_model: str) -> Iterator[ModelSpec]:
        """Fine-tuning or merging from ``base_model`` (its own fp32 copies, not the cached weights): in public mode
        only a catalog model chosen by name; one such job per base model at a time, counted as a running job for
        the CPU threads."""
        if limits.public_mode():
            ensure_public_model(base_model, "embedder")
        spec = self.spec(base_model, "embedder")
        with serving.model_work(("training", spec.source.path)):
            yield spec


def shared_result(operation: str, models: Sequence[str], keep: Callable[[object], bool] = lambda _: True):
    """Serve a tab operation ``f(access, ...)`` from the access's result cache: identical requests (same models,
    settings and inputs) are computed once, and one arriving while the same work runs waits for that run (see
    ``result_cache``).

    ``models`` names the parameters that hold model names: the key uses where each loads from, not the name alone.
    A progress callback is not part of the key.
    """

    def decorate(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(access: ModelAccess, *args, **kwargs):
            bound = signature.bind(access, *args, **kwargs)
            bound.apply_defaults()
            arguments = {k: v for k, v in list(bound.arguments.items())[1:] if k != "progress"}
            names = [_model_name(arguments.get(name)) for name in models]
            inputs = (access.devices, sorted(arguments.items(), key=lambda item: item[0]))
            return access.results.once(
                operation,
                models=names,
                inputs=inputs,
                compute=lambda: function(access, *args, **kwargs),
                own_models=sorted(access.own_models()),
                keep=keep,
            )

        return wrapper

    return decorate


def _model_name(value: object) -> str | None:
    """A model parameter's name for a result key (a ``ModelSpec`` is keyed by the name it was resolved from)."""
    if isinstance(value, ModelSpec):
        return value.name
    return None if value is None else str(value)
