"""Seeded random Visualized-BGE checkpoints that the golden environment and the test suite both rebuild.

The full-size checkpoints are hundreds of MB (the bge-m3 variant ~3.5 GB), so none is committed: each side builds
the same state dict from a parameter list (name → shape) and a seed. Every tensor comes from its own generator,
seeded by (SEED, name), so the values do not depend on the order parameters are listed in. The rotary tables are
not random: they are EVA02's (``flagdemo.models.visual.eva.rotary_tables``; the golden run checks them against
EVA's own).
``checksum`` lets the replay prove it rebuilt exactly the weights the goldens were computed on.

Pure torch: runs on the golden environment's torch 2.14 and the suite's 2.13 alike.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence

import torch

SEED = 20261130
WEIGHT_STD = 0.02  # BERT's initializer_range: keeps 12-24 random layers numerically tame
NORM_STD = 0.1  # norm scales 1 + N(0, 0.1): a missing or misplaced norm shows in the outputs
ROTARY_SUFFIXES = ("rope.freqs_cos", "rope.freqs_sin")


def is_rotary(name: str) -> bool:
    return name.endswith(ROTARY_SUFFIXES)


def seeded_tensor(name: str, shape: Sequence[int]) -> torch.Tensor:
    """The tensor ``name`` gets: matrices, embeddings and biases ~ N(0, 0.02), 1-D norm scales ~ 1 + N(0, 0.1)."""
    generator = torch.Generator().manual_seed(SEED + zlib.crc32(name.encode()))
    noise = torch.randn(tuple(shape), generator=generator, dtype=torch.float32)
    if len(shape) == 1 and not name.endswith("bias"):
        return 1.0 + noise * NORM_STD
    return noise * WEIGHT_STD


def seeded_state_dict(
    shapes: Mapping[str, Sequence[int]], rotary: tuple[torch.Tensor, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A full checkpoint for the parameter list ``shapes``; ``rotary`` = (cos, sin) fills every rotary table."""
    cos, sin = rotary
    state = {}
    for name in sorted(shapes):
        if is_rotary(name):
            table = cos if name.endswith("cos") else sin
            if tuple(table.shape) != tuple(shapes[name]):
                raise ValueError(f"{name}: rotary table {tuple(table.shape)} != {tuple(shapes[name])}")
            state[name] = table.clone()
        else:
            state[name] = seeded_tensor(name, shapes[name])
    return state


def checksum(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over the sorted names and the float32 bytes of every tensor."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def shape_list(state_or_shapes: Mapping[str, object]) -> dict[str, list[int]]:
    """name → shape as plain lists (for the golden header), from a state dict or from shapes."""
    return {
        name: list(value.shape) if isinstance(value, torch.Tensor) else list(value)
        for name, value in sorted(state_or_shapes.items())
    }
