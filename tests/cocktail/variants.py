"""Seeded "fine-tuned" variants of the tiny models, for merging: the base weights plus fixed Gaussian noise.

Shared by golden/make_golden_cocktail.py (golden env) and the tests (normal env). It uses only torch and safetensors
(no transformers), and the same torch on both sides, so both build byte-identical files; the golden header records
their parameter hashes and the replay test checks them before comparing anything.
"""

from __future__ import annotations

import hashlib
import shutil
import zlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

NOISE_STD = 0.05
SEED = 20261130

# variant name → (tiny model it perturbs, seed offset)
VARIANTS = {
    "bert-embedder-a": ("bert-embedder", 1),
    "bert-embedder-b": ("bert-embedder", 2),
    "bert-cross-encoder-a": ("bert-cross-encoder", 1),
    "llama-decoder-a": ("llama-decoder", 1),
}


def _noise(name: str, offset: int, shape: torch.Size) -> torch.Tensor:
    generator = torch.Generator().manual_seed(SEED + 1000 * offset + zlib.crc32(name.encode()))
    return torch.randn(shape, generator=generator, dtype=torch.float32) * NOISE_STD


def build_variant(tiny_dir: Path, variant: str, target_root: Path) -> Path:
    """Copy the tiny model's folder and add seeded noise to every floating-point tensor of its weights."""
    base, offset = VARIANTS[variant]
    target = Path(target_root) / variant
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(Path(tiny_dir) / base, target)
    tensors = load_file(str(target / "model.safetensors"))
    perturbed = {
        name: (tensor + _noise(name, offset, tensor.shape)).contiguous() if tensor.is_floating_point() else tensor
        for name, tensor in tensors.items()
    }
    save_file(perturbed, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


def parameter_sha256(folder: Path) -> str:
    """sha256 over the weights file's tensors (name, dtype, shape, bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(load_file(str(Path(folder) / "model.safetensors")).items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and raw bytes: equal only for bit-identical tensors."""
    tensor = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()
