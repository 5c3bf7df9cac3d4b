"""ZeroGPU Spaces: each handler runs inside the ``spaces`` package's GPU decorator, the ecosystem's convention.

On ZeroGPU hardware a GPU is attached only while a decorated function runs; the decorator is applied only there
(``limits.zero_gpu``), and the engine then puts its models on CUDA (``Engine.for_this_machine``). Everywhere else
the handlers stay plain functions. One duration for every handler: the longest tab (a layer sweep or a comparison
on full-size models) needs about two minutes; ZeroGPU counts what a call uses, not what it asks for.
"""

from __future__ import annotations

from collections.abc import Callable

import spaces

from flagdemo import limits

GPU_SECONDS = 120


def on_gpu(handler: Callable) -> Callable:
    """``handler`` inside ``spaces.GPU`` on a ZeroGPU Space; ``handler`` itself elsewhere."""
    if not limits.zero_gpu():
        return handler
    return spaces.GPU(duration=GPU_SECONDS)(handler)
