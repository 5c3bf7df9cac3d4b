"""One process-wide model cache, so every view, tab and user shares one copy of each loaded model; beside it, the
cache of model wrappers (tokenizer, settings) kept while their weights stay cached.

Bounds come from the environment: ``FLAGDEMO_MAX_MODELS`` (default 6 models) and ``FLAGDEMO_MAX_MEMORY_GB``
(default: three quarters of this machine's memory, ``machine_memory_bytes``, the quarter left for the libraries,
the runtime's arenas and the requests in flight; the size of an entry is the bytes of the parameters and buffers
of the torch modules inside it).
Past either bound the least recently used entries are dropped. A single model larger than the memory budget is
still kept (everything else is evicted), because refusing it would make it unusable.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import torch

from flagdemo.errors import InvalidInputError
from flagdemo.limits import env_number

T = TypeVar("T")

DEFAULT_MAX_MODELS = 6  # the BGE set's tabs use five (Cocktail's base included) and a visitor may pick one more;
# the memory budget is the bound that matters, the count only caps a pile of small ones
MODEL_SHARE_OF_MEMORY = 0.75
MEMORY_FILES = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2: a container's or Space's own limit
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def machine_memory_bytes() -> int:
    """The memory this process may use: the container's limit where one is set, else the machine's RAM."""
    total = psutil.virtual_memory().total
    for path in MEMORY_FILES:
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < total:  # "max" or a huge v1 number mean: no limit
            return int(raw)
    return int(total)


def default_memory_budget() -> int:
    """The model cache's budget when FLAGDEMO_MAX_MEMORY_GB is unset: a share of ``machine_memory_bytes``."""
    return int(machine_memory_bytes() * MODEL_SHARE_OF_MEMORY)


@dataclass(frozen=True)
class CacheEntry:
    """What the cache holds for one key, as shown in the app's "loaded models" table."""

    key: tuple
    describe: str
    nbytes: int
    device: str
    dtype: str
    load_seconds: float
    last_used: float


def _modules_in(value: Any, depth: int = 0) -> list[torch.nn.Module]:
    """The torch modules inside a cached value: the value itself, a container of them, or an object's attributes."""
    if isinstance(value, torch.nn.Module):
        return [value]
    if depth >= 2:
        return []
    if isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, (list, tuple)):
        children = list(value)
    elif hasattr(value, "__dict__"):
        children = list(vars(value).values())
    else:
        return []
    return [module for child in children for module in _modules_in(child, depth + 1)]


def _footprint(value: Any) -> tuple[int, str, str]:
    """(bytes, device, dtype) of the tensors of the modules in ``value``; shared tensors are counted once. A value
    that is not a torch model (an ONNX Runtime session) reports its own ``footprint()``."""
    if callable(getattr(value, "footprint", None)):
        return value.footprint()
    seen: set[int] = set()
    nbytes = 0
    device = dtype = ""
    for module in _modules_in(value):
        for tensor in [*module.parameters(), *module.buffers()]:
            if not device:
                device, dtype = str(tensor.device), str(tensor.dtype).removeprefix("torch.")
            pointer = tensor.data_ptr()
            if pointer in seen:
                continue
            seen.add(pointer)
            nbytes += tensor.numel() * tensor.element_size()
    return nbytes, device, dtype


class _Slot:
    """A cached value, or the promise of one while its loader runs."""

    def __init__(self, describe: str) -> None:
        self.describe = describe
        self.ready = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.nbytes = 0
        self.device = ""
        self.dtype = ""
        self.load_seconds = 0.0
        self.last_used = time.time()


# transformers builds a model by patching process-wide state for the duration (torch.nn.init's functions,
# torch.linspace, init_weights), so two models loading at once in two threads can spoil each other (seen: "Cannot copy
# out of meta tensor" while another model loaded). Loads therefore run one at a time in the process; the lock is
# re-entrant because a loader may load a part of its model through the cache.
LOADING = threading.RLock()


class LoadClock:
    """Seconds this process has spent loading models, every cache together (a load inside another counts once):
    a request's time less the loading done meanwhile is what the same work takes once its models are loaded."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = threading.local()

    @contextmanager
    def timing(self) -> Iterator[None]:
        depth = getattr(self._depth, "value", 0)
        self._depth.value = depth + 1
        started = time.perf_counter()
        try:
            yield
        finally:
            self._depth.value = depth
            if depth == 0:
                self.seconds += time.perf_counter() - started  # loads run one at a time (LOADING): no race


LOAD_CLOCK = LoadClock()


class ModelCache:
    """Thread-safe LRU cache of loaded models; concurrent requests for one key run the loader once."""

    def __init__(self, max_models: int = DEFAULT_MAX_MODELS, max_memory_bytes: int | None = None) -> None:
        if max_models < 1:
            raise InvalidInputError("The model cache must be allowed at least one model (max_models >= 1).")
        self.max_models = max_models
        self.max_memory_bytes = default_memory_budget() if max_memory_bytes is None else int(max_memory_bytes)
        self.load_count = 0
        # The process's anonymous resident memory before this cache loaded anything (Python, torch, the page):
        # the Models tab's memory account counts it apart from what the models brought.
        self.anonymous_before_first_load: int | None = None
        self._lock = threading.Lock()
        self._slots: OrderedDict[Hashable, _Slot] = OrderedDict()

    @classmethod
    def from_env(cls) -> ModelCache:
        """Bounds from FLAGDEMO_MAX_MODELS and FLAGDEMO_MAX_MEMORY_GB (defaults 6, and the machine's share)."""
        max_models = int(env_number("FLAGDEMO_MAX_MODELS", DEFAULT_MAX_MODELS))
        max_memory_gb = env_number("FLAGDEMO_MAX_MEMORY_GB", default_memory_budget() / 1024**3, integer=False)
        return cls(max_models=max_models, max_memory_bytes=int(max_memory_gb * 1024**3))

    def get_or_load(self, key: tuple, loader: Callable[[], T], *, describe: str = "") -> T:
        """The cached value for ``key``, loading it with ``loader`` if absent (once, however many threads ask, and
        never while another model loads: see ``LOADING``)."""
        with self._lock:
            slot = self._slots.get(key)
            if slot is not None and slot.ready.is_set() and slot.error is None:
                self._slots.move_to_end(key)
                slot.last_used = time.time()
                return slot.value
        with LOADING, LOAD_CLOCK.timing():
            return self._load_once(key, loader, describe)

    def _load_once(self, key: tuple, loader: Callable[[], T], describe: str) -> T:
        with self._lock:
            slot = self._slots.get(key)
            owner = slot is None
            if owner:
                slot = self._slots[key] = _Slot(describe or str(key))
                self.load_count += 1
            else:
                self._slots.move_to_end(key)
        if not owner:
            slot.ready.wait()
            if slot.error is not None:
                raise slot.error
            slot.last_used = time.time()
            return slot.value
        if self.anonymous_before_first_load is None:
            info = psutil.Process().memory_info()  # shared: the resident pages backed by files
            self.anonymous_before_first_load = info.rss - info.shared
        started = time.perf_counter()
        try:
            value = loader()
        except BaseException as error:
            slot.error = error
            with self._lock:
                if self._slots.get(key) is slot:
                    del self._slots[key]
            slot.ready.set()
            raise
        slot.value = value
        slot.load_seconds = time.perf_counter() - started
        slot.nbytes, slot.device, slot.dtype = _footprint(value)
        slot.last_used = time.time()
        with self._lock:
            self._evict_beyond_bounds(keep=key)
        slot.ready.set()
        return value

    def _evict_beyond_bounds(self, keep: Hashable) -> None:
        """Drop least recently used finished entries until both bounds hold (caller holds the lock)."""
        evicted = False
        while True:
            loaded = [(key, slot) for key, slot in self._slots.items() if slot.ready.is_set() or key == keep]
            total = sum(slot.nbytes for _, slot in loaded)
            if len(loaded) <= self.max_models and total <= self.max_memory_bytes:
                break
            victims = [key for key, _ in loaded if key != keep]
            if not victims:
                break
            del self._slots[victims[0]]
            evicted = True
        if evicted:
            gc.collect()

    def unload(self, key: tuple) -> bool:
        """Forget one entry; True if it was loaded. Holders of the model object keep their reference."""
        with self._lock:
            slot = self._slots.get(key)
            if slot is None or not slot.ready.is_set():
                return False
            del self._slots[key]
        gc.collect()
        return True

    def clear(self) -> None:
        """Forget every finished entry (loads in progress finish and stay)."""
        with self._lock:
            for key in [key for key, slot in self._slots.items() if slot.ready.is_set()]:
                del self._slots[key]
        gc.collect()

    def entries(self) -> list[CacheEntry]:
        """Loaded entries, least recently used first."""
        with self._lock:
            slots = [(key, slot) for key, slot in self._slots.items() if slot.ready.is_set() and slot.error is None]
        return [
            CacheEntry(key, slot.describe, slot.nbytes, slot.device, slot.dtype, slot.load_seconds, slot.last_used)
            for key, slot in slots
        ]

    def room_for_a_model(self) -> int:
        """Bytes a model that is not loaded yet may take: this machine's (or container's) memory, less what the
        process holds now, plus what unloading every cached model would give back."""
        held = sum(entry.nbytes for entry in self.entries())
        return machine_memory_bytes() - psutil.Process().memory_info().rss + held

    def holds_source(self, path: str) -> bool:
        """Whether a cached entry was loaded from ``path`` (its key starts with the source's path)."""
        return any(isinstance(entry.key, tuple) and entry.key[:1] == (path,) for entry in self.entries())

    def __contains__(self, key: object) -> bool:
        with self._lock:
            slot = self._slots.get(key)
            return slot is not None and slot.ready.is_set()

    def __len__(self) -> int:
        return len(self.entries())


MODEL_CACHE = ModelCache.from_env()


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

    def kept(self) -> list[tuple[Hashable, object]]:
        """(key, wrapper) for every wrapper kept now, for reports such as which backend each model runs on."""
        with self._lock:
            return [(key, held.wrapper) for key, held in self._held.items()]

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
