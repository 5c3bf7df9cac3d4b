"""Opt-in approximate CPU precisions for embedders: ``"bf16"`` (autocast) and ``"int8"`` (dynamic quantisation).

FlagEmbedding computes in fp32 on the CPU, and flagdemo's default does too, so every number matches the library.
These modes trade that exactness for speed and are therefore never the default: results and the UI must label them
"approximate". ``with_precision(embedder, precision)`` returns a shallow copy of an embedder (same tokenizer, same
settings, same encode API) whose forward passes run in the chosen precision; the original object is left untouched,
so exact and approximate encoders can be used side by side. ``FLAGDEMO_PRECISION`` sets the default
precision of ``flagdemo.serving.embedding_cache.EmbeddingCache.encode`` (the app's cached encode path).

- ``"bf16"``: the forward pass runs under ``torch.autocast("cpu", dtype=torch.bfloat16)``; matrix products run in
  bfloat16 (a speed-up where PyTorch has fast bf16 kernels, e.g. CPUs with AMX), layer norms and softmax stay
  fp32, outputs are fp32.
- ``"int8"`` on an onnx embedder (the CPU default): an int8 ONNX Runtime graph quantised from the fused fp32 graph
  (``int8_variant``, ``flagdemo.models.backends.onnx_int8``).
- ``"int8"`` on a torch embedder: every ``nn.Linear`` except the down-projections (``in_features >
  out_features``, e.g. BERT's FFN output, the layers most sensitive to int8) becomes an ``Int8Linear``: per-channel
  int8 weights and 8-bit dynamic activations through fbgemm's fused kernel, after SmoothQuant-style smoothing of the
  activation outlier channels, calibrated once per model on the bundled demo sentences. One quantised copy per model
  lives as long as the fp32 model.

Both are CPU-only; on CUDA use the library's own ``use_fp16=True``. Measured on the bundled MiniLM and the labelled
set (tests/perf, docs/performance.md): bf16 keeps cosine ≥ 0.9999 to the fp32 embeddings and every query's
top-1; onnx int8 keeps cosine ≥ 0.998 and every top-1; torch int8 is close to that only on CPUs with VNNI. Speed
depends on the CPU; ``python -m benchmarks.run`` reports every mode on the machine at hand.
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

from flagdemo.errors import InvalidInputError
from flagdemo.models.backends.cpu import cpu_features
from flagdemo.models.backends.runners import TORCH_BODY

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


class Int8Linear(torch.nn.Module):
    """A Linear layer in int8: per-output-channel int8 weights and 8-bit dynamic activations (fbgemm's fused
    kernel), with the activation outliers smoothed into the weights first.

    Dynamic quantisation scales a whole activation matrix by its largest value. In BERT-style encoders a handful of
    hidden channels (set by LayerNorm weights) run 5-15x larger than the rest, so one scale for all wastes most of
    the 8 bits. Dividing each input channel by ``smoothing`` and multiplying the matching weight column by it leaves
    the product unchanged in exact arithmetic and moves part of the outliers' range into the weights, which are
    quantised per output channel (SmoothQuant's migration, with strength ``SMOOTHING_ALPHA``).
    """

    def __init__(self, linear: torch.nn.Linear, smoothing: torch.Tensor, *, reduce_range: bool) -> None:
        super().__init__()
        weight = linear.weight.detach().float() * smoothing
        scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # PyTorch's notice that eager quantised tensors are moving to torchao
            warnings.simplefilter("ignore", UserWarning)
            int8_weight = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
        bias = None if linear.bias is None else linear.bias.detach().float()
        self.packed = torch.ops.quantized.linear_prepack(int8_weight, bias)
        self.register_buffer("inverse_smoothing", 1.0 / smoothing)
        self.reduce_range = reduce_range
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x * self.inverse_smoothing, self.packed, self.reduce_range)


SMOOTHING_ALPHA = 0.75  # 0: all range stays in the activations; 1: all of it moves into the weights


def smoothing_factors(peaks: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per input channel: peak |activation|^alpha / peak |weight column|^(1 - alpha) (SmoothQuant's rule)."""
    activation = peaks.clamp(min=1e-5)
    column = weight.detach().float().abs().amax(dim=0).clamp(min=1e-5)
    return (activation.pow(SMOOTHING_ALPHA) / column.pow(1 - SMOOTHING_ALPHA)).clamp(min=1e-5)


def activation_peaks(embedder, layer_names: list[str], texts: list[str]) -> dict[str, torch.Tensor]:
    """Per-channel peak |input| of the named Linear layers while ``embedder`` encodes ``texts`` (fp32)."""
    peaks: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(module, inputs, output):
            peak = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).abs().amax(dim=0).float()
            peaks[name] = peak if name not in peaks else torch.maximum(peaks[name], peak)

        return hook

    handles = [embedder.model.get_submodule(name).register_forward_hook(record(name)) for name in layer_names]
    try:
        on_torch(embedder).encode(texts)
    finally:
        for handle in handles:
            handle.remove()
    return peaks


def calibration_texts() -> list[str]:
    """The bundled demo sentences: varied lengths, topics and languages, shipped with the package."""
    from flagdemo.data.datasets import load_demo_sentences

    return load_demo_sentences()["text"].tolist()


def vnni_available() -> bool:
    """fbgemm's int8 kernels use VNNI dot products where present; without them they need 7-bit activations
    (``reduce_range``) to avoid 16-bit saturation."""
    return bool({"avx512_vnni", "avx_vnni"} & cpu_features())


def quantised(embedder) -> torch.nn.Module:
    """The int8 copy of ``embedder.model``, made once per model object and calibrated on the demo sentences.

    Every Linear layer whose output is at least as wide as its input is quantised; the down-projections (e.g.
    BERT's FFN output, fed by GELU) stay fp32: on MiniLM, quantising them too roughly doubles the cosine error.
    """
    model = embedder.model
    with _quantise_lock:
        found = _quantised_models.get(model)
        if found is None:
            names = [
                name
                for name, module in model.named_modules()
                if isinstance(module, torch.nn.Linear) and module.in_features <= module.out_features
            ]
            peaks = activation_peaks(embedder, names, calibration_texts())
            found = copy.deepcopy(model)
            reduce_range = not vnni_available()
            for name in names:
                if name not in peaks:  # a layer the forward pass never reaches (e.g. an unused pooler)
                    continue
                parent_name, _, child = name.rpartition(".")
                parent = found.get_submodule(parent_name) if parent_name else found
                linear = getattr(parent, child)
                smoothing = smoothing_factors(peaks[name], linear.weight)
                setattr(parent, child, Int8Linear(linear, smoothing, reduce_range=reduce_range))
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
    if precision == "int8" and embedder.runner.runs_graph:
        fast = copy.copy(embedder)
        fast._graph_variant = int8_variant(embedder)
        fast._onnx_graph("last_hidden_state")  # exported (or loaded) now, not inside the first encode
    else:
        fast = on_torch(embedder)
        if precision == "int8":
            fast.model = quantised(embedder)
        else:
            fast._run_batches = _autocast_bf16(embedder._run_batches)
    fast.precision = precision
    fast.approximate = True
    return fast


def int8_variant(embedder):
    """The int8 ONNX Runtime graph variant of an onnx-backend embedder, exported and cached like the exact one.

    The fused fp32 graph with SmoothQuant-style smoothing (strength ``SMOOTHING_ALPHA``, calibrated on the demo
    sentences through the fp32 graph itself), then uint8 per-channel weights and 8-bit dynamic activations for every
    Attention and every MatMul except the down-projections (``flagdemo.models.backends.onnx_int8``): the
    configuration of docs/performance.md's int8 frontier that is clearly faster than exact onnx while keeping the best
    worst-case cosine of those that are. Returns the GraphVariant.
    """
    from flagdemo.models.backends.onnx import GraphVariant
    from flagdemo.models.backends.onnx_int8 import smooth_and_quantise

    def transform(source: Path, target: Path) -> None:
        texts = calibration_texts()
        batches = [
            embedder._pad(embedder._tokenize(texts[start : start + 32], 32, embedder.passage_max_length, {}), {})
            for start in range(0, len(texts), 32)
        ]
        smooth_and_quantise(source, target, batches, smoothing_factors)

    return GraphVariant(
        name=f"int8-fused-smoothing-{SMOOTHING_ALPHA}-all-but-down-projections-{_calibration_digest()}",
        transform=transform,
        tolerance=INT8_PROBE_TOLERANCE,
        label="int8",
    )


INT8_PROBE_TOLERANCE = 0.25  # relative error of the int8 hidden states (a few % on real models); a broken graph ~1


def _calibration_digest() -> str:
    import hashlib

    return hashlib.sha256("\n".join(calibration_texts()).encode()).hexdigest()[:12]


def on_torch(embedder):
    """A shallow copy of ``embedder`` whose forward passes run the torch model (the fast modes and the
    calibration hooks act on torch modules, which an ONNX Runtime session never calls)."""
    copied = copy.copy(embedder)
    if embedder.runner.runs_graph:
        copied.runner = TORCH_BODY
        copied._graph_variant = None
    return copied


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
