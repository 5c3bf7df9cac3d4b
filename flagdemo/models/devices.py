"""Device and dtype choice, shared by embedders and rerankers.

flagdemo runs every model on ONE device: FlagEmbedding spreads lists over a process pool per device, which costs
seconds of start-up and pickles the whole model; an interactive explorer is better served by one warm model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

from flagdemo.errors import InvalidInputError, ResourceLimitError

T = TypeVar("T")


def _accelerator_available(name: str) -> bool:
    backend = getattr(torch.backends, name, None)
    return bool(backend is not None and backend.is_available())


def resolve_device(devices: str | int | torch.device | list | tuple | None = None) -> torch.device:
    """Pick the device to run on.

    ``None`` picks ``cuda:0`` when CUDA is available, else ``mps``, else ``cpu``. A string (``"cuda:1"``, ``"cpu"``)
    or a ``torch.device`` is used as is; an int ``i`` means ``cuda:i``. A list or tuple (FlagEmbedding's multi-device
    form) uses its FIRST entry only: flagdemo never starts one process per device.
    """
    if isinstance(devices, (list, tuple)):
        if not devices:
            raise InvalidInputError("The devices list is empty; pass a device such as 'cpu' or 'cuda:0', or None.")
        devices = devices[0]
    if devices is None:
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        if _accelerator_available("mps"):
            return torch.device("mps")
        return torch.device("cpu")
    if isinstance(devices, bool):
        raise InvalidInputError(f"devices must be a device name, an index or None, not {devices!r}.")
    if isinstance(devices, int):
        return torch.device(f"cuda:{devices}")
    if isinstance(devices, torch.device):
        return devices
    if isinstance(devices, str):
        try:
            return torch.device(devices)
        except RuntimeError as error:
            raise InvalidInputError(
                f"{devices!r} is not a device name; use 'cpu', 'cuda', 'cuda:0' or 'mps'."
            ) from error
    raise InvalidInputError(f"devices must be a device name, an index, a list of them or None, not {devices!r}.")


def resolve_dtype(device: torch.device | str, *, use_fp16: bool = False, use_bf16: bool = False) -> torch.dtype:
    """bf16 beats fp16 beats fp32, as in FlagEmbedding; on CPU always fp32 (FlagEmbedding upcasts there too)."""
    if torch.device(device).type == "cpu":
        return torch.float32
    if use_bf16:
        return torch.bfloat16
    if use_fp16:
        return torch.float16
    return torch.float32


def is_out_of_memory(error: BaseException) -> bool:
    """True only for genuine out-of-memory failures (CUDA, MPS or host allocator)."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def shrink_on_out_of_memory(
    work: Callable[[int], T], batch_size: int, *, device: torch.device, what: str, unit: str
) -> T:
    """``work(batch_size)``, retried with 3/4 of the batch (FlagEmbedding's probe factor) while memory runs out.

    Only out-of-memory errors shrink the batch (FlagEmbedding shrinks on any RuntimeError, which hides real bugs);
    when one ``unit`` at a time still does not fit, a ResourceLimitError says what to change.
    """
    while True:
        try:
            return work(batch_size)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if batch_size <= 1:
                raise ResourceLimitError(
                    f"{what} ran out of memory on {device} even one {unit} at a time; use shorter texts "
                    "(max_length), a smaller model or another device."
                ) from error
            batch_size = max(1, batch_size * 3 // 4)
