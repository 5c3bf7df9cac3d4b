"""The EVA02-CLIP vision tower Visualized-BGE uses, on plain torch (no eva_clip, timm, einops or xformers).

Two fixed architectures, as published in EVA02-CLIP's model configs: B/16 (width 768, 12 blocks) and L/14 (width
1024, 24 blocks), both 224 px, 64-wide heads, SwiGLU MLPs (hidden = int(width x 2.6667)) with a LayerNorm inside
("subln"), separate q/k/v projections with q and v biases, a LayerNorm after attention, and 2-D rotary position
embeddings on every patch token (the CLS token is not rotated). Visualized-BGE reads the patch tokens of the last
block before the final norm, so ``forward`` returns exactly that. Module and parameter names follow the checkpoint
(``model_visual.visual.blocks.0.attn.q_proj.weight`` ...), so a Visualized-BGE ``.pth`` loads strictly.

Pure torch on purpose: the golden environment imports this file too, to check its rotary tables against EVA's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-6
ROPE_THETA = 10000.0
PRETRAIN_GRID = 16  # EVA02's rotary tables were trained on a 16 x 16 grid and are interpolated to the real grid
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class EvaConfig:
    """One EVA02-CLIP vision architecture (the fields Visualized-BGE's two variants differ in)."""

    name: str
    width: int
    depth: int
    patch_size: int
    embed_dim: int  # the CLIP projection width (the unused ``head``)
    image_size: int = 224
    head_width: int = 64
    mlp_ratio: float = 2.6667

    @property
    def heads(self) -> int:
        return self.width // self.head_width

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def patches(self) -> int:
        return self.grid * self.grid

    @property
    def mlp_hidden(self) -> int:
        return int(self.width * self.mlp_ratio)


EVA02_B16 = EvaConfig("EVA02-CLIP-B-16", width=768, depth=12, patch_size=16, embed_dim=512)
EVA02_L14 = EvaConfig("EVA02-CLIP-L-14", width=1024, depth=24, patch_size=14, embed_dim=768)


def rotary_tables(config: EvaConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (patches, head_width): EVA02's 2-D rotary angles for the patch grid.

    Half of each head rotates with the patch's row, half with its column; each frequency drives an adjacent pair of
    channels. Grid positions are scaled to the 16 x 16 grid the tables were trained on.
    """
    half = config.head_width // 2
    frequencies = 1.0 / (ROPE_THETA ** (torch.arange(0, half, 2)[: half // 2].float() / half))
    positions = torch.arange(config.grid) / config.grid * PRETRAIN_GRID
    angles = torch.einsum("i,f->if", positions, frequencies).repeat_interleave(2, dim=-1)  # (grid, half)
    rows = angles[:, None, :].expand(config.grid, config.grid, half)
    cols = angles[None, :, :].expand(config.grid, config.grid, half)
    table = torch.cat((rows, cols), dim=-1).reshape(config.patches, config.head_width)
    return table.cos(), table.sin()


class RotaryEmbedding(nn.Module):
    """The shared rotary table (one module, referenced by every block, as in the checkpoint's key names)."""

    def __init__(self, config: EvaConfig) -> None:
        super().__init__()
        cos, sin = rotary_tables(config)
        self.register_buffer("freqs_cos", cos)
        self.register_buffer("freqs_sin", sin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pairs = x.unflatten(-1, (-1, 2))
        rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return x * self.freqs_cos + rotated * self.freqs_sin


class PatchEmbed(nn.Module):
    def __init__(self, config: EvaConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, config.width, kernel_size=config.patch_size, stride=config.patch_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.proj(pixels).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, config: EvaConfig, rope: RotaryEmbedding) -> None:
        super().__init__()
        width = config.width
        self.heads = config.heads
        self.scale = config.head_width**-0.5
        self.q_proj = nn.Linear(width, width, bias=False)
        self.k_proj = nn.Linear(width, width, bias=False)
        self.v_proj = nn.Linear(width, width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.inner_attn_ln = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.proj = nn.Linear(width, width)
        self.rope = rope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, length, self.heads, -1).permute(0, 2, 1, 3)

        q = heads(F.linear(x, self.q_proj.weight, self.q_bias))
        k = heads(F.linear(x, self.k_proj.weight))
        v = heads(F.linear(x, self.v_proj.weight, self.v_bias))
        q = torch.cat((q[:, :, :1], self.rope(q[:, :, 1:])), dim=-2)  # the CLS token is not rotated
        k = torch.cat((k[:, :, :1], self.rope(k[:, :, 1:])), dim=-2)
        weights = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, length, -1)
        return self.proj(self.inner_attn_ln(out))


class SwiGLU(nn.Module):
    def __init__(self, config: EvaConfig) -> None:
        super().__init__()
        self.w1 = nn.Linear(config.width, config.mlp_hidden)
        self.w2 = nn.Linear(config.width, config.mlp_hidden)
        self.ffn_ln = nn.LayerNorm(config.mlp_hidden, eps=LAYER_NORM_EPS)
        self.w3 = nn.Linear(config.mlp_hidden, config.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w3(self.ffn_ln(F.silu(self.w1(x)) * self.w2(x)))


class Block(nn.Module):
    def __init__(self, config: EvaConfig, rope: RotaryEmbedding) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.width, eps=LAYER_NORM_EPS)
        self.attn = Attention(config, rope)
        self.norm2 = nn.LayerNorm(config.width, eps=LAYER_NORM_EPS)
        self.mlp = SwiGLU(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class EvaVisionTransformer(nn.Module):
    """Patch embedding, CLS token, absolute positions, then the blocks; ``forward`` returns every token's state.

    ``norm`` and ``head`` exist only so checkpoints load strictly: Visualized-BGE never applies them.
    """

    def __init__(self, config: EvaConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.patches + 1, config.width))
        self.rope = RotaryEmbedding(config)
        self.blocks = nn.ModuleList(Block(config, self.rope) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.width, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(config.width, config.embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised pixels → (B, 1 + patches, width) hidden states of the last block."""
        size = self.config.image_size
        if pixels.shape[-2:] != (size, size):
            raise ValueError(f"EVA expects {size} x {size} pixels, got {tuple(pixels.shape[-2:])}.")
        x = self.patch_embed(pixels)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return x


class EvaVisionTower(nn.Module):
    """The checkpoint's ``model_visual``: an EVA-CLIP model built image-only (``visual`` plus CLIP's
    ``logit_scale``, unused here)."""

    def __init__(self, config: EvaConfig) -> None:
        super().__init__()
        self.visual = EvaVisionTransformer(config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.visual(pixels)
