"""The exact ONNX Runtime backend: export a model's graph once with ``torch.onnx``, optimise it, cache it on disk.

flagdemo computes the same numbers on two backends. ``"torch"`` runs the transformers model; ``"onnx"`` runs the same
weights as an ONNX Runtime session, which on a CPU is markedly faster for small encoders (fused layer norms and GELU,
less per-operator overhead). Only the transformer body moves: pooling, heads such as BGE-M3's sparse and ColBERT
projections, normalisation and every other step stay the torch code both backends share, so the two agree within
float rounding (≈1e-6 on normalised embeddings).

The graph is exported on first use, optimised by ONNX Runtime's extended graph optimisations (layer-norm, GELU and
attention fusions) and saved under ``$FLAGDEMO_CACHE/onnx/<key>/``, where ``key`` hashes the weights as loaded (after
any fp16 rounding), the model's config, the graph kind and the versions of torch, onnx and onnxruntime. A cached
entry is trusted only if its files match the hashes recorded when it was written, ONNX Runtime loads it, and it
reproduces the torch model on a probe batch; anything else is deleted and exported again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flagdemo.errors import InvalidInputError
from flagdemo.models.sources import cache_root
from flagdemo.models.threads import JOB_THREADS, on_idle

BACKENDS = ("torch", "onnx")
BACKEND_LABELS = {"torch": "PyTorch", "onnx": "ONNX Runtime"}
GRAPH_FORMAT = 2  # bump when the export recipe changes: every cached graph is then rebuilt
OPSET = 17
GRAPH_FILE = "model.onnx"
WEIGHTS_FILE = "model.onnx.data"
META_FILE = "meta.json"
PROBE_FILE = "probe.npz"  # the torch model's outputs on the probe batch, recorded at export
ENTRY_FILES = frozenset({GRAPH_FILE, WEIGHTS_FILE, PROBE_FILE})
PROBE_TEXTS = ("flagdemo checks its exported graph on this sentence.", "A shorter probe.")
PROBE_TOLERANCE = 1e-4  # a faithful graph differs by ~1e-6; a stale or damaged one by orders more
# "last_hidden_state": what a plain encode pools (the fast graph); "hidden_states": every layer's state too
# (encode_detailed(all_layers=True) only: extra outputs keep ONNX Runtime from fusing residual adds into the layer
# norms); "logits": a cross-encoder's scores.
KINDS = ("last_hidden_state", "hidden_states", "logits")
# Architectures onnxruntime's transformer optimizer fuses (attention, embedding and skip layer norms, bias-GELU).
FUSED_MODEL_TYPES = frozenset({"bert", "roberta", "xlm-roberta"})
# The largest encoder the CPU default exports to ONNX. An export holds about eight times the model's fp32 weights at
# its peak, and a Space exports again after every restart (bge-m3, 566 M parameters: 89 s and 18.7 GB on 2 cores;
# bge-reranker-base, 278 M: 37 s and 9.5 GB; bge-base, 109 M: 20 s and 4.0 GB, which beside the BGE set's other
# models took the whole app to a 14.6 GB peak; bge-small, 33 M: 5 s and 0.7 GB; docs/serving.md). Bigger models run
# on torch unless ONNX is asked for (backend="onnx" or FLAGDEMO_BACKEND=onnx).
ONNX_DEFAULT_MAX_PARAMETERS = 50_000_000


@dataclass(frozen=True)
class GraphVariant:
    """A transformed graph of the same model (e.g. int8): ``name`` enters the cache key, ``transform(source,
    target)`` rewrites the exported (and, where the architecture allows, fused) fp32 ONNX file, and ``tolerance``
    bounds the probe check's relative error ‖graph − model‖ / ‖model‖ per output."""

    name: str
    transform: Callable[[Path, Path], None]
    tolerance: float
    label: str = "approximate"


# Per model object: (weights fingerprint, value). A fingerprint that no longer matches (weights loaded in place, a
# parameter replaced) makes the entry stale, so a graph always follows the weights the model holds now.
_graphs: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, dict[str, OnnxGraph]]] = weakref.WeakKeyDictionary()
_digests: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, str]] = weakref.WeakKeyDictionary()
_file_digests: dict[tuple[str, int, int], str] = {}
_folder_locks: dict[str, threading.Lock] = {}
_open_graphs: weakref.WeakSet[OnnxGraph] = weakref.WeakSet()  # every live session, for release_session_arenas
_lock = threading.Lock()


@dataclass(frozen=True)
class WeightFiles:
    """A model whose torch weights are not loaded: its graph is keyed by the hash of its weight files and load
    settings (``identity``), checked against the outputs recorded at export, and the torch model is built
    (``load``, uncached) only to export. Its sessions live in the model cache under ``folder`` and are described
    there as ``shown``; the object holds the sessions it was given (``held``), as a model object holds its weights."""

    identity: str
    name: str
    config: Any
    load: Callable[[], torch.nn.Module]
    folder: str
    shown: str
    rounding: str = ""  # ", float16-rounded weights" where the weights were rounded before export
    held: dict[str, OnnxGraph] = field(default_factory=dict, compare=False, repr=False)


def files_identity(folder: Path, settings: str) -> str | None:
    """SHA-256 over a local model folder's config and weight files (``*.safetensors``, else ``*.bin``) and the
    load ``settings``; None when the folder has no such files. Each file is hashed once per process (keyed by
    path, size and modification time)."""
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    config = folder / "config.json"
    if not weights or not config.is_file():
        return None
    digest = hashlib.sha256(settings.encode())
    for path in [config, *weights]:
        stat = path.stat()
        memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with _lock:
            found = _file_digests.get(memo)
        if found is None:
            found = _file_digest(path)
            with _lock:
                _file_digests[memo] = found
        digest.update(f"{path.name}|{found}|".encode())
    return digest.hexdigest()


def onnxruntime_available() -> bool:
    """True when both onnxruntime (to run) and onnx (to export) import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class BackendInfo:
    """How a model object computes, for the Models tab: backend, why, and what loading the graph cost.

    ``source`` is ``"exported"`` (exported now, then cached), ``"disk cache"`` (a cached graph was reused),
    ``"memory"`` (another object of this process already loaded it) or ``None`` on torch. ``rebuilt`` says why a
    cached graph was thrown away, when one was.
    """

    backend: str
    reason: str
    source: str | None = None
    export_seconds: float | None = None
    session_seconds: float | None = None
    rebuilt: str | None = None

    @property
    def cache_hit(self) -> bool | None:
        """True when the graph came from the disk cache or memory, False when exported now, None on torch."""
        return None if self.source is None else self.source != "exported"

    def summary(self) -> str:
        """One sentence for people: the backend and what its graph cost to get."""
        label = BACKEND_LABELS[self.backend]
        if self.backend == "torch":
            return f"{label} ({self.reason})."
        if self.source == "exported":
            text = (
                f"{label}: graph exported in {self.export_seconds:.1f} s, "
                f"session ready in {self.session_seconds:.1f} s"
            )
        elif self.source == "disk cache":
            text = f"{label}: cached graph loaded in {self.session_seconds:.1f} s"
        else:
            text = f"{label}: graph already loaded"
        if self.rebuilt:
            text += f" (the cached graph was rebuilt: {self.rebuilt})"
        return text + "."


FROM_MEMORY = BackendInfo("onnx", "", source="memory", session_seconds=0.0)  # a session this process already held


def release_session_arenas() -> None:
    """Shrink the memory arena of every open session (the app calls this when its last running job ends)."""
    with _lock:
        graphs = list(_open_graphs)
    for graph in graphs:
        graph.release_arena()


on_idle(release_session_arenas)


def default_backend(device: torch.device, parameters: int | None = None) -> tuple[str, str]:
    """(backend, reason): ``FLAGDEMO_BACKEND`` if set, else the fastest exact backend for the device.

    On a CPU that is ONNX Runtime when it imports (the fused graph beats PyTorch eager there, docs/performance.md)
    for models up to ONNX_DEFAULT_MAX_PARAMETERS (``parameters``: config.json's estimate); on CUDA and MPS, and for
    bigger models, it is torch (fp16 kernels; an export too slow and too big for the machines the app runs on).
    """
    configured = os.environ.get("FLAGDEMO_BACKEND", "").strip().lower()
    if configured:
        if configured not in BACKENDS:
            raise InvalidInputError(
                f"FLAGDEMO_BACKEND must be 'torch' or 'onnx', not {configured!r}; unset it to pick the fastest "
                "exact backend for the device."
            )
        return configured, "chosen by FLAGDEMO_BACKEND"
    if device.type != "cpu":
        return "torch", f"the fastest exact backend on {device.type}"
    if not onnxruntime_available():
        return "torch", "onnxruntime is not installed"
    if parameters is not None and parameters > ONNX_DEFAULT_MAX_PARAMETERS:
        return "torch", (
            f"a {parameters / 1e6:,.0f} M-parameter model: exporting its ONNX graph would take minutes and about "
            "eight times its weights in memory"
        )
    return "onnx", "the fastest exact backend on a CPU"


def resolve_backend(
    backend: str | None,
    device: torch.device,
    *,
    owner: str,
    supports_onnx: bool = True,
    parameters: int | None = None,
) -> tuple[str, str]:
    """(backend, reason) for a model object; InvalidInputError with a sentence when the request cannot be met.

    An explicit ``backend="onnx"`` that cannot run is refused; the default (or FLAGDEMO_BACKEND) picks torch for a
    model class without an ONNX path and says so in the reason.
    """
    if backend is None:
        chosen, reason = default_backend(device, parameters)
        explicit = False
    elif backend in BACKENDS:
        chosen, reason, explicit = backend, "chosen when the model was loaded", True
    else:
        raise InvalidInputError(f"backend must be 'torch' or 'onnx', not {backend!r}.")
    if chosen == "torch":
        return chosen, reason
    if device.type != "cpu":
        raise InvalidInputError(
            f"The onnx backend runs on the CPU; {owner} on {device.type} uses backend='torch' (use_fp16 for speed)."
        )
    if not onnxruntime_available():
        raise InvalidInputError(
            "The onnx backend needs onnxruntime and onnx: pip install onnxruntime==1.32.0 onnx==1.23.2."
        )
    if not supports_onnx:
        if explicit:
            raise InvalidInputError(f"{owner} runs on torch only; the onnx backend covers encoder models.")
        return "torch", f"{owner} runs on torch only"
    return chosen, reason


class OnnxGraph:
    """An ONNX Runtime session of one exported model: torch tensors in, torch tensors out (CPU, fp32)."""

    def __init__(self, session, folder: Path) -> None:
        self.session = session
        self.folder = folder
        self.input_names = [item.name for item in session.get_inputs()]
        self.output_names = [item.name for item in session.get_outputs()]
        with _lock:
            _open_graphs.add(self)

    def release_arena(self) -> None:
        """Give back the activation memory ONNX Runtime's arena kept from the largest batch this session ran: a
        one-token run with arena shrinkage (running it after every batch would cost ~6% of encode speed)."""
        import onnxruntime

        options = onnxruntime.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        feed = {name: np.ones((1, 1), np.int64) if name == "attention_mask" else np.zeros((1, 1), np.int64)
                for name in self.input_names}  # fmt: skip
        self.session.run(self.output_names[:1], feed, options)

    def footprint(self) -> tuple[int, str, str]:
        """(bytes, device, dtype) for the model cache: the size of the graph's weights on disk, which the session
        holds in memory."""
        files = [self.folder / WEIGHTS_FILE, self.folder / GRAPH_FILE]
        return sum(path.stat().st_size for path in files if path.is_file()), "cpu", "onnx"

    def run(self, batch: Mapping[str, torch.Tensor], outputs: Sequence[str]) -> list[torch.Tensor]:
        """The named outputs for one padded batch. Inputs the graph does not use are left out (the exporter drops
        inputs the model ignores); a missing ``token_type_ids`` is all zeros, as the model's own default."""
        feed = {}
        for name in self.input_names:
            value = batch.get(name)
            if value is None and name == "token_type_ids":
                value = torch.zeros_like(batch["input_ids"])
            if value is None:
                raise InvalidInputError(f"The exported graph needs {name!r}, which this batch does not have.")
            feed[name] = value.detach().cpu().numpy().astype(np.int64, copy=False)
        return [torch.from_numpy(array) for array in self.session.run(list(outputs), feed)]


class _Exportable(torch.nn.Module):
    """Positional tensors in (the exporter's convention), the kind's outputs as a flat tuple."""

    def __init__(self, model: torch.nn.Module, input_names: Sequence[str], kind: str) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.kind = kind

    def forward(self, *tensors: torch.Tensor):
        inputs = dict(zip(self.input_names, tensors, strict=True))
        if self.kind == "logits":
            return self.model(**inputs, return_dict=True).logits
        if self.kind == "last_hidden_state":
            return self.model(**inputs, return_dict=True).last_hidden_state
        outputs = self.model(**inputs, return_dict=True, output_hidden_states=True)
        return (outputs.last_hidden_state, *outputs.hidden_states)


def output_names(model: torch.nn.Module | WeightFiles, kind: str) -> list[str]:
    """'logits'; 'last_hidden_state'; or 'last_hidden_state', 'hidden_state_0' (embeddings) … 'hidden_state_<L>'."""
    if kind in ("logits", "last_hidden_state"):
        return [kind]
    layers = int(model.config.num_hidden_layers)
    return ["last_hidden_state", *(f"hidden_state_{index}" for index in range(layers + 1))]


def weights_fingerprint(model: torch.nn.Module) -> tuple:
    """Cheap identity of the weights a model holds now: each tensor's storage address and in-place version
    counter (``load_state_dict``, ``mul_`` … bump it; assigning a new tensor changes the address)."""
    return tuple((tensor.data_ptr(), tensor._version) for tensor in model.state_dict(keep_vars=True).values())


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer as held now (names, dtypes, shapes, bytes); recomputed only when the
    weights fingerprint changes."""
    fingerprint = weights_fingerprint(model)
    with _lock:
        found = _digests.get(model)
    if found is not None and found[0] == fingerprint:
        return found[1]
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy())
    found = digest.hexdigest()
    with _lock:
        _digests[model] = (fingerprint, found)
    return found


def graph_key(
    model: torch.nn.Module | WeightFiles, kind: str, input_names: Sequence[str], variant: str = "fp32"
) -> str:
    """The cache key: weights (as held, or the files they load from), config, graph kind, inputs and the versions
    that shape the graph."""
    import onnx
    import onnxruntime

    files = isinstance(model, WeightFiles)
    settings = {
        "format": GRAPH_FORMAT,
        "kind": kind,
        "variant": variant,
        "class": model.name if files else type(model).__qualname__,
        "weights": f"files:{model.identity}" if files else weights_digest(model),
        "config": hashlib.sha256(model.config.to_json_string().encode()).hexdigest(),
        "dtype": "torch.float32" if files else str(next(model.parameters()).dtype),
        "inputs": list(input_names),
        "opset": OPSET,
        "versions": [torch.__version__, onnx.__version__, onnxruntime.__version__],
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]


def graph_dir() -> Path:
    """Where exported graphs live: ``$FLAGDEMO_CACHE/onnx``."""
    return cache_root() / "onnx"


def load_graph(
    model: torch.nn.Module | WeightFiles,
    kind: str,
    probe: Mapping[str, torch.Tensor],
    variant: GraphVariant | None = None,
) -> tuple[OnnxGraph, BackendInfo]:
    """The session for ``model``'s graph of ``kind`` (and ``variant``; default the exact fp32 graph): from this
    process, else from the disk cache, else exported now. ``probe`` is one padded batch in the model's input
    format; it is used for the export and the checks."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    memo_key = kind if variant is None else f"{kind}/{variant.name}"
    if isinstance(model, WeightFiles):
        return _file_graph(model, kind, probe, variant, memo_key)
    fingerprint = weights_fingerprint(model)
    found = _memo(model, fingerprint, memo_key)
    if found is not None:
        return found, FROM_MEMORY
    folder = graph_dir() / graph_key(model, kind, list(probe), "fp32" if variant is None else variant.name)
    with _folder_lock(folder):  # two threads asking for one graph: the second waits and reuses the first's export
        found = _memo(model, fingerprint, memo_key)
        if found is not None:
            return found, FROM_MEMORY
        graph, info = _from_disk(model, kind, probe, folder, variant)
        with _lock:
            held = _graphs.get(model)
            if held is None or held[0] != fingerprint:
                held = _graphs[model] = (fingerprint, {})
            held[1][memo_key] = graph
    return graph, info


def _file_graph(
    model: WeightFiles, kind: str, probe: Mapping[str, torch.Tensor], variant: GraphVariant | None, memo_key: str
) -> tuple[OnnxGraph, BackendInfo]:
    """The session of a model known by its files: the one this object holds, else the model cache's (shared by
    every object of the process and counted against its bounds like torch weights), else loaded from disk or
    exported into the cache."""
    from flagdemo.models.cache import MODEL_CACHE

    with _lock:
        found = model.held.get(memo_key)
    if found is not None:
        return found, FROM_MEMORY
    loaded: list[BackendInfo] = []

    def load() -> OnnxGraph:
        folder = graph_dir() / graph_key(model, kind, list(probe), "fp32" if variant is None else variant.name)
        with _folder_lock(folder):
            graph, info = _from_disk(model, kind, probe, folder, variant)
        loaded.append(info)
        return graph

    what = "ONNX Runtime graph" if variant is None else f"ONNX Runtime graph, {variant.label}"
    if kind == "hidden_states":
        what += ", every layer"
    what += model.rounding
    graph = MODEL_CACHE.get_or_load(
        (model.folder, "onnx", memo_key, model.identity), load, describe=f"{model.shown} ({what})"
    )
    with _lock:
        model.held[memo_key] = graph
    return graph, (loaded[0] if loaded else FROM_MEMORY)


def _folder_lock(folder: Path) -> threading.Lock:
    with _lock:
        return _folder_locks.setdefault(folder.name, threading.Lock())


def _memo(model: torch.nn.Module, fingerprint: tuple, memo_key: str) -> OnnxGraph | None:
    """This process's session for the model's current weights, if one is loaded (a stale one is dropped)."""
    with _lock:
        held = _graphs.get(model)
        if held is not None and held[0] != fingerprint:
            del _graphs[model]
            return None
        return None if held is None else held[1].get(memo_key)


def _from_disk(model, kind, probe, folder: Path, variant: GraphVariant | None) -> tuple[OnnxGraph, BackendInfo]:
    rebuilt = None
    tolerance = None if variant is None else variant.tolerance
    if folder.exists():
        started = time.perf_counter()
        try:
            graph = _open_checked(model, kind, probe, folder, tolerance)
            return graph, BackendInfo("onnx", "", source="disk cache", session_seconds=time.perf_counter() - started)
        except _UntrustedGraphError as error:
            rebuilt = str(error)
            shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    if isinstance(model, WeightFiles):
        model = model.load()  # only to export; dropped afterwards
    _export(model, kind, probe, folder, variant)
    exported = time.perf_counter() - started
    started = time.perf_counter()
    try:
        graph = _open_checked(model, kind, probe, folder, tolerance)
    except _UntrustedGraphError as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"The freshly exported ONNX graph does not reproduce the model: {error}") from error
    return graph, BackendInfo(
        "onnx",
        "",
        source="exported",
        export_seconds=exported,
        session_seconds=time.perf_counter() - started,
        rebuilt=rebuilt,
    )


class _UntrustedGraphError(Exception):
    """A cached graph that must not be used (damaged, incomplete or not matching the model)."""


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _session(path: Path, *, optimised_to: Path | None = None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # A session's thread count is fixed when it opens: the whole CPU budget, not the share of whichever app job
    # happened to open it (torch threads are re-shared per job; see flagdemo.models.threads).
    options.intra_op_num_threads = JOB_THREADS.total()
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    if os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE":
        # The app's policy for a shared CPU (see app.py): idle threads sleep instead of spinning.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimised_to is None:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    else:
        # Extended level: the fusions that hold on any x86 CPU; saved so later loads skip them.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(optimised_to)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", optimised_to.name + ".data"
        )
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _open_checked(model, kind, probe, folder: Path, tolerance: float | None) -> OnnxGraph:
    """Open a cached graph only if its files hash as recorded, ONNX Runtime loads it and it matches torch."""
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        recorded = meta["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _UntrustedGraphError(f"its record is missing or unreadable ({type(error).__name__})") from error
    if meta.get("key") != folder.name or set(recorded) != ENTRY_FILES:
        raise _UntrustedGraphError("its record does not describe this entry")
    for name, expected in recorded.items():
        path = folder / name
        if not path.is_file() or _file_digest(path) != expected:
            raise _UntrustedGraphError(f"{name} is missing or changed since it was written")
    try:
        graph = OnnxGraph(_session(folder / GRAPH_FILE), folder)
    except Exception as error:  # onnxruntime raises its own Fail / InvalidGraph types
        raise _UntrustedGraphError(f"ONNX Runtime could not load it ({type(error).__name__})") from error
    names = output_names(model, kind)
    if graph.output_names != names:
        raise _UntrustedGraphError("its outputs are not the ones this model needs")
    _check_probe(model, kind, probe, graph, names, tolerance=tolerance)
    return graph


def _probe_outputs(model: torch.nn.Module, kind: str, probe: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
    """The torch model's outputs for the probe batch, in the graph's output order."""
    with torch.inference_mode():
        expected = _Exportable(model, list(probe), kind)(*probe.values())
    return list(expected) if kind == "hidden_states" else [expected]


def _check_probe(model, kind, probe, graph: OnnxGraph, names: list[str], *, tolerance: float | None) -> None:
    """The exact graph must agree elementwise (PROBE_TOLERANCE of the largest value); a variant within its
    relative error (``tolerance``). Against the torch model, or for WeightFiles the outputs recorded at export."""
    if isinstance(model, WeightFiles):
        try:
            with np.load(graph.folder / PROBE_FILE) as recorded:
                expected = [torch.from_numpy(recorded[name]) for name in names]
        except (OSError, ValueError, KeyError) as error:
            raise _UntrustedGraphError(f"its probe record is unreadable ({type(error).__name__})") from error
    else:
        expected = _probe_outputs(model, kind, probe)
    try:
        actual = graph.run(probe, names)
    except Exception as error:
        raise _UntrustedGraphError(f"it failed on the probe batch ({type(error).__name__})") from error
    for name, want, got in zip(names, expected, actual, strict=True):
        if want.shape != got.shape:
            raise _UntrustedGraphError(f"{name} has shape {tuple(got.shape)}, the model gives {tuple(want.shape)}")
        if tolerance is None:
            difference = float((want.float() - got).abs().max())
            bound = PROBE_TOLERANCE * max(1.0, float(want.abs().max()))
        else:
            difference = float((want.float() - got).norm() / want.float().norm().clamp(min=1e-12))
            bound = tolerance
        if not difference <= bound:
            raise _UntrustedGraphError(f"{name} differs from the model by {difference:.2g} on the probe batch")


def _export(
    model: torch.nn.Module, kind: str, probe: Mapping[str, torch.Tensor], folder: Path, variant: GraphVariant | None
) -> None:
    """Export, transform (a variant), optimise and write the entry atomically: a crash leaves no half-written
    folder under its key."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    try:
        names = list(probe)
        outputs = output_names(model, kind)
        axes = {name: {0: "batch", 1: "sequence"} for name in names}
        axes.update({name: {0: "batch"} if kind == "logits" else {0: "batch", 1: "sequence"} for name in outputs})
        wrapper = _Exportable(model, names, kind).eval()
        raw = work / "exported.onnx"
        fuse = getattr(model.config, "model_type", None) in FUSED_MODEL_TYPES
        with warnings.catch_warnings(), torch.no_grad(), _quiet(), _eager_attention(model if fuse else None):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                tuple(probe.values()),
                str(raw),
                input_names=names,
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        entry = work / "entry"
        entry.mkdir()
        if fuse:
            fused = entry / GRAPH_FILE if variant is None else work / "fused" / GRAPH_FILE
            fused.parent.mkdir(exist_ok=True)
            _fuse(raw, model.config, fused)
            raw = fused
        if variant is not None:
            transformed = work / "transformed" / GRAPH_FILE
            transformed.parent.mkdir()
            variant.transform(raw, transformed)
            raw = transformed
        if raw.parent != entry:
            _session(raw, optimised_to=entry / GRAPH_FILE)
        expected = _probe_outputs(model, kind, probe)
        np.savez(
            entry / PROBE_FILE, **{name: value.float().numpy() for name, value in zip(outputs, expected, strict=True)}
        )
        files = {name: _file_digest(entry / name) for name in sorted(ENTRY_FILES)}
        meta = {"key": folder.name, "kind": kind, "files": files, "outputs": outputs, "inputs": names}
        (entry / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(entry, folder)
        except OSError:
            if not folder.is_dir():  # else another process wrote the same entry meanwhile; it is checked on open
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _eager_attention(model: torch.nn.Module | None):
    """Trace ``model`` with transformers' eager attention (explicit MatMul / Softmax), the pattern onnxruntime's
    optimizer fuses into one Attention kernel; SDPA traces into a form it leaves unfused. Restored afterwards."""
    setter = getattr(model, "set_attn_implementation", None)
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if setter is None or before in (None, "eager"):
        yield
        return
    setter("eager")
    try:
        yield
    finally:
        setter(before)


def _fuse(raw: Path, config, target: Path) -> None:
    """onnxruntime's transformer optimizer (what fastembed and sentence-transformers' onnx backend apply): attention,
    embedding layer norm, skip layer norm and bias-GELU fusions; saved with its weights beside it."""
    import logging

    import onnx
    from onnxruntime.transformers import optimizer

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the optimizer logs every fusion it tries at WARNING/INFO
    try:
        fused = optimizer.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=0,
            use_gpu=False,
        )
    finally:
        root.setLevel(level)
    onnx.save_model(
        fused.model,
        str(target),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS_FILE,
        size_threshold=1024,
    )


@contextlib.contextmanager
def _quiet():
    """The TorchScript exporter prints deprecation notices; keep them out of the app's log."""
    import logging

    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
