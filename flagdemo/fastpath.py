"""Opt-in approximate CPU precisions for embedders: ``"bf16"`` (autocast) and ``"int8"`` (dynamic quantisation).

FlagEmbedding computes in fp32 on the CPU, and flagdemo's default does too, so every number matches the library.
These modes trade that exactness for speed and are therefore never the default: results and the UI must label them
"approximate". ``with_precision(embedder, precision)`` returns a shallow copy of an embedder (same tokenizer, same
settings, same encode API) whose forward passes run in the chosen precision; the original object is left untouched,
so exact and approximate encoders can be used side by side.

- ``"bf16"``: the forward pass runs under ``torch.autocast("cpu", dtype=torch.bfloat16)``; matrix products run in
  bfloat16 (fast on CPUs with ``avx512_bf16`` or AMX), layer norms and softmax stay fp32, outputs are fp32.
- ``"int8"``: ``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear`` (int8 weights, activations
  quantised per batch); one quantised copy per model is kept for the life of the fp32 model.

Both are CPU-only; on CUDA use the library's own ``use_fp16=True``. The accuracy contract (tested on the bundled
MiniLM and the labelled set): cosine ≥ 0.999 to the fp32 embeddings and an unchanged top-10 ranking.
"""

from __future__ import annotations

import copy
import functools
import threading
import weakref
from pathlib import Path

import torch

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
            found = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
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
            f"The {precision} fast mode is for CPUs; on {embedder.device.type} load the model with use_fp16=True instead."
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
