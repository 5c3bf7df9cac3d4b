"""The LayerWise-MiniCPM architecture of bge-reranker-v2-minicpm-layerwise, implemented in flagdemo.

The checkpoint's own modelling code (and FlagEmbedding's bundled copy) imports
``transformers.modeling_attn_mask_utils``, which transformers 5.x removed, so it cannot run here. The model is a
Llama-like decoder with MiniCPM's scalings: embeddings times ``scale_emb``, every residual branch times
``scale_depth / sqrt(num_hidden_layers)``, and one ``Linear(hidden → 1, no bias)`` head per layer from
``start_layer`` to ``num_hidden_layers`` ("simple" head: no ``dim_model_base`` scaling). "Layer k" is the final
RMSNorm of the hidden state after k decoder layers; the pass stops at the highest layer asked for.

The arithmetic follows FlagEmbedding's SDPA path to the cast: RMSNorm normalises in fp32 and casts back before the
weight, rotary embeddings are applied in fp32, and the padding mask is additive with the dtype's minimum. The MLP is
transformers' ``LlamaMLP`` (the same three projections).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from flagdemo.errors import MissingModelFilesError, ModelLoadError

ARCHITECTURE = "LayerWiseMiniCPMForCausalLM"
# Keys a checkpoint may carry that this module does not need: the tied LM-head copy and old rotary buffers.
_IGNORED_KEY_SUFFIXES = ("rotary_emb.inv_freq",)
_IGNORED_KEYS = ("lm_head.weight",)


def is_layerwise_minicpm(config: dict[str, Any]) -> bool:
    """Recognise the checkpoint by ``architectures`` in its config.json (no remote code needed)."""
    return ARCHITECTURE in (config.get("architectures") or [])


class MiniCPMRMSNorm(nn.Module):
    """RMSNorm as MiniCPM computes it: fp32 statistics, cast back, then times the weight."""

    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        old_dtype = hidden.dtype
        variance = hidden.to(torch.float32).pow(2).mean(dim=-1, keepdim=True)
        hidden = (hidden * torch.rsqrt(variance + self.variance_epsilon)).to(old_dtype)
        return hidden * self.weight


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class MiniCPMAttention(nn.Module):
    """Grouped-query attention with MiniCPM's fp32 rotary step, run through torch's SDPA."""

    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.num_heads
        self.num_key_value_heads = config.num_key_value_heads
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, self.num_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, self.num_key_value_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, self.num_key_value_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=bias)

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        batch, length, _ = hidden.shape
        query = self.q_proj(hidden).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        key = self.k_proj(hidden).view(batch, length, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        value = self.v_proj(hidden).view(batch, length, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        cos = cos.to(value.dtype)[None, None]
        sin = sin.to(value.dtype)[None, None]
        query32, key32 = query.float(), key.float()
        query = ((query32 * cos) + (_rotate_half(query32) * sin)).to(key.dtype)
        key = ((key32 * cos) + (_rotate_half(key32) * sin)).to(key.dtype)
        groups = self.num_heads // self.num_key_value_heads
        if groups > 1:
            key = key.repeat_interleave(groups, dim=1)
            value = value.repeat_interleave(groups, dim=1)
        if query.device.type == "cuda" and mask is not None:
            query, key, value = query.contiguous(), key.contiguous(), value.contiguous()
        output = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, dropout_p=0.0, is_causal=mask is None and length > 1
        )
        return self.o_proj(output.transpose(1, 2).reshape(batch, length, -1))


class MiniCPMDecoderLayer(nn.Module):
    """Pre-norm decoder layer whose two residual branches are scaled by ``scale_depth / sqrt(num_layers)``."""

    def __init__(self, config: SimpleNamespace):
        from transformers.models.llama.modeling_llama import LlamaMLP

        super().__init__()
        self.self_attn = MiniCPMAttention(config)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = MiniCPMRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = MiniCPMRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.residual_scale = config.scale_depth / math.sqrt(config.num_hidden_layers)

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        hidden = hidden + self.self_attn(self.input_layernorm(hidden), mask, cos, sin) * self.residual_scale
        return hidden + self.mlp(self.post_attention_layernorm(hidden)) * self.residual_scale


class _Body(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(MiniCPMDecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = MiniCPMRMSNorm(config.hidden_size, config.rms_norm_eps)


class _Head(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear_head = nn.Linear(hidden_size, 1, bias=False)


class LayerWiseMiniCPM(nn.Module):
    """bge-reranker-v2-minicpm-layerwise with its per-layer score heads; parameter names match the checkpoint."""

    method = "native-head"

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = _namespace(config)
        self.model = _Body(self.config)
        heads = self.config.num_hidden_layers - self.config.start_layer + 1 if self.config.head_multi else 1
        self.lm_head = nn.ModuleList(_Head(self.config.hidden_size) for _ in range(heads))
        self.num_layers = self.config.num_hidden_layers
        self.valid_layers = list(range(self.config.start_layer, self.num_layers + 1))
        self._rotary_cache: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def head_for(self, layer: int) -> nn.Linear:
        index = layer - self.config.start_layer if self.config.head_multi else 0
        return self.lm_head[index].linear_head

    def rotary(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos / sin tables in fp32, built on the CPU like MiniCPM's cache (linear scaling divides positions)."""
        key = (length, str(device))
        if key not in self._rotary_cache:
            dim = self.config.hidden_size // self.config.num_attention_heads
            inv_freq = 1.0 / (self.config.rope_theta ** (torch.arange(0, dim, 2).float() / dim))
            positions = torch.arange(length, dtype=inv_freq.dtype) / self.config.rope_scaling_factor
            angles = torch.cat((torch.outer(positions, inv_freq),) * 2, dim=-1)
            self._rotary_cache = {key: (angles.cos().to(device), angles.sin().to(device))}
        return self._rotary_cache[key]

    def attention_mask_4d(self, attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        """None when nothing is padded (SDPA's own causal path), else the additive causal + padding mask."""
        if bool(attention_mask.all()):
            return None
        length = attention_mask.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=attention_mask.device).tril()
        allowed = causal[None, None] & attention_mask[:, None, None, :].bool()
        blocked = torch.zeros(allowed.shape, dtype=dtype, device=attention_mask.device)
        return blocked.masked_fill(~allowed, torch.finfo(dtype).min)

    @torch.no_grad()
    def layer_scores(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        layers: list[int],
        positions: torch.Tensor,
        on_layer: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """Scores (len(layers), batch) at ``positions``; decoder layers above ``max(layers)`` never run."""
        wanted = sorted(set(layers))
        hidden = self.model.embed_tokens(input_ids) * self.config.scale_emb
        mask = self.attention_mask_4d(attention_mask, hidden.dtype)
        cos, sin = self.rotary(input_ids.shape[1], input_ids.device)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        scores = []
        for depth in range(wanted[-1] + 1):
            if depth in wanted:
                logits = self.head_for(depth)(self.model.norm(hidden)).float().reshape(input_ids.shape[0], -1)
                scores.append(logits[rows, positions])
                if on_layer is not None:
                    on_layer(depth)
            if depth == wanted[-1]:
                break
            hidden = self.model.layers[depth](hidden, mask, cos, sin)
        return torch.stack(scores)


def _namespace(config: dict[str, Any]) -> SimpleNamespace:
    """The config values the architecture uses, with LayerWiseMiniCPMConfig's defaults."""
    head_type = config.get("head_type", "simple")
    if head_type != "simple":
        raise ModelLoadError(
            f"This layer-wise MiniCPM checkpoint uses head_type={head_type!r}; flagdemo supports the 'simple' "
            "per-layer score heads of bge-reranker-v2-minicpm-layerwise only."
        )
    if config.get("pretraining_tp", 1) != 1:
        raise ModelLoadError("Layer-wise MiniCPM checkpoints with pretraining_tp > 1 are not supported.")
    rope_scaling = config.get("rope_scaling")
    factor = 1.0
    if rope_scaling:
        if rope_scaling.get("type", rope_scaling.get("rope_type")) != "linear":
            raise ModelLoadError(f"Unsupported rope_scaling {rope_scaling!r}; only linear scaling is implemented.")
        factor = float(rope_scaling["factor"])
    heads = config.get("num_attention_heads", 32)
    return SimpleNamespace(
        vocab_size=config.get("vocab_size", 32000),
        hidden_size=config.get("hidden_size", 4096),
        intermediate_size=config.get("intermediate_size", 11008),
        num_hidden_layers=config.get("num_hidden_layers", 32),
        num_attention_heads=heads,
        num_key_value_heads=config.get("num_key_value_heads") or heads,
        hidden_act=config.get("hidden_act", "silu"),
        rms_norm_eps=config.get("rms_norm_eps", 1e-6),
        rope_theta=config.get("rope_theta", 10000.0),
        rope_scaling_factor=factor,
        attention_bias=config.get("attention_bias", False),
        mlp_bias=False,
        scale_emb=config.get("scale_emb", 1),
        scale_depth=config.get("scale_depth", 1),
        start_layer=config.get("start_layer", 8),
        head_multi=config.get("head_multi", True),
    )


def load_state_dict(files: list[Path]) -> dict[str, torch.Tensor]:
    """Tensors from the checkpoint's safetensors shards (or, failing those, its .bin files)."""
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors.update(load_file(str(file)))
        else:
            tensors.update(torch.load(str(file), map_location="cpu", weights_only=True))
    return tensors


def weight_files(folder_or_resolver: Path | Callable[[str], str | None]) -> list[Path]:
    """The checkpoint's weight files: a sharded or single safetensors file, else a sharded or single .bin file."""
    resolve = folder_or_resolver if callable(folder_or_resolver) else _folder_resolver(folder_or_resolver)
    for index_name, single_name in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        index = resolve(index_name)
        if index is not None:
            shards = sorted(set(json.loads(Path(index).read_text())["weight_map"].values()))
            found = [resolve(shard) for shard in shards]
            if any(path is None for path in found):
                raise MissingModelFilesError(f"Some weight shards listed in {index_name} are missing.")
            return [Path(path) for path in found]
        single = resolve(single_name)
        if single is not None:
            return [Path(single)]
    raise MissingModelFilesError(
        "The layer-wise MiniCPM checkpoint has no model.safetensors or pytorch_model.bin weights."
    )


def _folder_resolver(folder: Path) -> Callable[[str], str | None]:
    def resolve(name: str) -> str | None:
        path = Path(folder) / name
        return str(path) if path.is_file() else None

    return resolve


def build_layerwise_minicpm(
    config: dict[str, Any], files: list[Path], *, dtype: torch.dtype, device: torch.device
) -> LayerWiseMiniCPM:
    """Build the module and load the checkpoint's tensors into it, refusing missing or unknown weights.

    The module is built on the meta device and takes the checkpoint's tensors as its parameters (``assign``): no
    random initialisation of 2.7 B parameters, and no fp32 copy beside the loaded bf16 one, so a full-size load
    peaks near the size of the model in its run dtype (the cast frees each bf16 tensor as it goes)."""
    with torch.device("meta"):
        model = LayerWiseMiniCPM(config)
    state = load_state_dict(files)
    state = {
        key: value
        for key, value in state.items()
        if key not in _IGNORED_KEYS and not key.endswith(_IGNORED_KEY_SUFFIXES)
    }
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing:
        raise MissingModelFilesError(
            f"The layer-wise MiniCPM checkpoint lacks {len(missing)} weights the model needs, e.g. "
            f"{', '.join(missing[:3])}; the files are incomplete or belong to another architecture."
        )
    if unexpected:
        raise ModelLoadError(
            f"The layer-wise MiniCPM checkpoint has {len(unexpected)} weights this architecture does not use, e.g. "
            f"{', '.join(unexpected[:3])}; its config.json and weights do not match."
        )
    model.load_state_dict(state, strict=True, assign=True)
    state.clear()  # the module now holds the only references, so the cast below frees the originals one by one
    return model.to(device=device, dtype=dtype).eval()
