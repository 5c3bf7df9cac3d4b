"""Opt-in approximate CPU precisions for embedders: ``"bf16"`` (autocast) and ``"int8"`` (dynamic quantisation).

FlagEmbedding computes in fp32 on the CPU, and flagdemo's default does too, so every number matches the library.
These modes trade that exactness for speed and are therefore never the default: results and the UI must label them
"approximate". ``with_precision(embedder, precision)`` returns a shallow copy of an embedder (same tokenizer, same
settings, same encode API) whose forward passes run in the chosen precision; the original object is left untouched,
so exact and approximate encoders can be used side by side. ``FLAGDEMO_PRECISION`` sets the default
precision of ``flagdemo.embedding_cache.EmbeddingCache.encode`` (the app's cached encode path).

- ``"bf16"``: the forward pass runs under ``torch.autocast("cpu", dtype=torch.bfloat16)``; matrix products run in
  bfloat16 (a speed-up where PyTorch has fast bf16 kernels, e.g. CPUs with AMX), layer norms and softmax stay
  fp32, outputs are fp32.
- ``"int8"``: ``torch.ao.quantization.quantize_dynamic`` with per-channel int8 weights on every ``nn.Linear``
  except the down-projections (``in_features > out_features``, e.g. BERT's FFN output), whose inputs carry the
  activation outliers that per-tensor activation quantisation handles worst (on MiniLM, quantising them too drops
  the worst-case cosine from ~0.98 to ~0.93). One quantised copy per model lives as long as the fp32 model.

Both are CPU-only; on CUDA use the library's own ``use_fp16=True``. Measured on the bundled MiniLM and the labelled set
(tests/perf): bf16 keeps cosine ≥ 0.999 to the fp32 embeddings, every query's top-1 and ≥ 9 of its top-10 (only
near-ties swap); int8 is coarser (cosine ≥ 0.95, ~9 of 10 kept). Speed depends on the CPU: on an avx512_bf16 CPU
without AMX, PyTorch's bf16 matmuls are slower than fp32, while int8 is ~1.5-2× faster; ``python -m
benchmarks.run`` reports both on the machine at hand.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
import warnings
import weakref
from pathlib import Path

import torch
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

from flagdemo.errors import InvalidInputError

PRECISIONS = ("fp32", "bf16", "int8")
APPROXIMATE_PRECISIONS = ("bf16", "int8")
PRECISION_LABELS = {
    "fp32": "fp32 (exact, FlagEmbedding's numbers)",
    "bf16": "bf16 autocast (approximate)",
    "int8": "int8 dynamic quantisation (approximate)",
}

_quantised_models: weakref.WeakKeyDictionary[torch.nn.Module, torch.nn.Module] = weakref.WeakKeyDictionary()
_quantise_lock = threading.Lock()


def check_precision(precision: str) -> str:
    """The precision name, or InvalidInputError naming the valid ones."""
    if precision not in PRECISIONS:
        raise InvalidInputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    return precision


def default_precision() -> str:
    """``FLAGDEMO_PRECISION`` (fp32 | bf16 | int8), default fp32: lets a deployment opt the app into a fast mode."""
    value = os.environ.get("FLAGDEMO_PRECISION", "").strip().lower() or "fp32"
    if value not in PRECISIONS:
        raise InvalidInputError(f"FLAGDEMO_PRECISION must be one of {', '.join(PRECISIONS)}, not {value!r}.")
    return value


def is_approximate(precision: str) -> bool:
    """True when results in this precision differ from FlagEmbedding's numbers and must be labelled so."""
    return check_precision(precision) in APPROXIMATE_PRECISIONS


def cpu_features() -> set[str]:
    """CPU flags that matter for the fast modes (``avx512_bf16``, ``amx_bf16``, ``avx512_vnni`` …), Linux only."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    wanted = {"avx512_bf16", "amx_bf16", "amx_tile", "amx_int8", "avx512_vnni", "avx_vnni", "avx512f", "avx2"}
    for line in text.splitlines():
        if line.startswith("flags"):
            return wanted.intersection(line.split(":", 1)[1].split())
    return set()


def recommended_precision() -> str:
    """The faster approximate mode for this CPU: bf16 where the CPU has native bf16 dot products, else int8."""
    features = cpu_features()
    return "bf16" if {"avx512_bf16", "amx_bf16"} & features else "int8"


def quantised(model: torch.nn.Module) -> torch.nn.Module:
    """An int8 dynamically quantised copy of ``model`` (its Linear layers), made once per model object."""
    with _quantise_lock:
        found = _quantised_models.get(model)
        if found is None:
            plan = {
                name: per_channel_dynamic_qconfig
                for name, module in model.named_modules()
                if isinstance(module, torch.nn.Linear) and module.in_features <= module.out_features
            }
            with warnings.catch_warnings():  # PyTorch's notice that eager quantisation is moving to torchao
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                found = quantize_dynamic(copy.deepcopy(model), plan, dtype=torch.qint8)
            found.eval()
            _quantised_models[model] = found
        return found


def with_precision(embedder, precision: str):
    """``embedder`` itself for ``"fp32"``; otherwise a copy whose forward passes run in ``precision`` (CPU only).

    The copy shares the tokenizer and settings, exposes the same ``encode*`` methods, and carries ``precision``
    and ``approximate`` attributes for labelling. Its embeddings are float32 numpy arrays like the fp32 ones.
    """
    check_precision(precision)
    if precision == "fp32":
        return embedder
    if embedder.device.type != "cpu":
        raise InvalidInputError(
            f"The {precision} fast mode is for CPUs; on {embedder.device.type} load the model with use_fp16=True "
            "instead."
        )
    fast = copy.copy(embedder)
    fast.precision = precision
    fast.approximate = True
    if precision == "int8":
        fast.model = quantised(embedder.model)
    else:
        fast._run_batches = _autocast_bf16(embedder._run_batches)
    return fast


def _autocast_bf16(run_batches):
    """Wrap the encode loop in CPU bf16 autocast and hand back fp32 tensors, as the fp32 path does."""

    @functools.wraps(run_batches)
    def run(*args, **kwargs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            results = run_batches(*args, **kwargs)
        return [{key: _as_fp32(value) for key, value in batch.items()} for batch in results]

    return run


def _as_fp32(value):
    """Floating tensors (also inside lists, e.g. per-text ColBERT vectors) back to fp32; anything else unchanged."""
    if torch.is_tensor(value):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, list):
        return [_as_fp32(item) for item in value]
    return value
