"""What runs a model's transformer, chosen once when the model loads: torch, or its ONNX Runtime graph.

A model object holds one runner and asks it for outputs; nothing tests the backend's name to decide what to run.
The runners hold no state of their own (the model object passes itself in), so a shallow copy of a model, such as
the fast modes of ``flagdemo.models.backends.precision``, can swap its runner without touching the original's.

An embedder offers ``_backbone()`` (its torch transformer) and ``_onnx_graph(kind)``; a cross-encoder offers
``model`` and ``_onnx_graph()``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from flagdemo.models.backends.onnx import BackendInfo, resolve_backend

ONNX_ATTENTION_BUDGET = 32 * 256 * 256  # texts × length² per onnx batch: 32 texts of 256 tokens, 128 of 128


class TorchBody:
    """An embedder's backbone run by torch: the last hidden state and, for ``all_layers``, every layer's."""

    name = "torch"
    runs_graph = False

    def hidden_states(self, embedder: Any, batch: dict[str, torch.Tensor], all_layers: bool):
        outputs = embedder._backbone()(**batch, return_dict=True, output_hidden_states=all_layers)
        layers = None
        if all_layers:
            # hidden_states[0] is the embedding output; the final entry is replaced by last_hidden_state so the last
            # layer is exactly what encode pools, whatever the architecture records there.
            layers = [*outputs.hidden_states[:-1], outputs.last_hidden_state]
        return outputs.last_hidden_state, layers

    def batch_size(self, longest: int, batch_size: int) -> int:
        return batch_size

    def info(self, embedder: Any, reason: str) -> BackendInfo:
        return BackendInfo("torch", reason)


class OnnxBody:
    """An embedder's backbone run by its ONNX Runtime graph (the same layer list as torch's)."""

    name = "onnx"
    runs_graph = True

    def hidden_states(self, embedder: Any, batch: dict[str, torch.Tensor], all_layers: bool):
        if not all_layers:
            graph, _ = embedder._onnx_graph("last_hidden_state")
            return graph.run(batch, graph.output_names)[0], None
        graph, _ = embedder._onnx_graph("hidden_states")
        outputs = graph.run(batch, graph.output_names)
        # Outputs: last_hidden_state, then hidden_state_0 … hidden_state_L.
        return outputs[0], [*outputs[1:-1], outputs[0]]

    def batch_size(self, longest: int, batch_size: int) -> int:
        """ONNX Runtime's CPU attention holds a whole batch × heads × length² score tensor (torch's SDPA does not):
        bounding batch × length² keeps an onnx encode's peak memory at or below torch's."""
        return max(1, min(batch_size, ONNX_ATTENTION_BUDGET // (longest * longest)))

    def info(self, embedder: Any, reason: str) -> BackendInfo:
        """Exports (or loads) the graph now, not inside the first encode, and reports it."""
        _, info = embedder._onnx_graph("last_hidden_state")
        return dataclasses.replace(info, reason=reason)


class TorchLogits:
    """A cross-encoder's logits computed by torch."""

    name = "torch"
    runs_graph = False

    def logits(self, reranker: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode():
            return reranker.model(**batch, return_dict=True).logits

    def info(self, reranker: Any, reason: str) -> BackendInfo:
        return BackendInfo("torch", reason)


class OnnxLogits:
    """A cross-encoder's logits computed by its ONNX Runtime graph."""

    name = "onnx"
    runs_graph = True

    def logits(self, reranker: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return reranker._onnx_graph()[0].run(batch, ["logits"])[0]

    def info(self, reranker: Any, reason: str) -> BackendInfo:
        _, info = reranker._onnx_graph()
        return dataclasses.replace(info, reason=reason)


TORCH_BODY, ONNX_BODY = TorchBody(), OnnxBody()
TORCH_LOGITS, ONNX_LOGITS = TorchLogits(), OnnxLogits()


def body_runner(
    backend: str | None, device: torch.device, *, owner: str, supports_onnx: bool = True, parameters: int | None = None
) -> tuple[TorchBody | OnnxBody, str]:
    """(runner, reason) for an embedder: ``resolve_backend``'s choice, made once."""
    chosen, reason = resolve_backend(backend, device, owner=owner, supports_onnx=supports_onnx, parameters=parameters)
    return (ONNX_BODY if chosen == "onnx" else TORCH_BODY), reason


def logits_runner(
    backend: str | None, device: torch.device, *, owner: str, parameters: int | None = None
) -> tuple[TorchLogits | OnnxLogits, str]:
    """(runner, reason) for a cross-encoder: ``resolve_backend``'s choice, made once."""
    chosen, reason = resolve_backend(backend, device, owner=owner, parameters=parameters)
    return (ONNX_LOGITS if chosen == "onnx" else TORCH_LOGITS), reason
