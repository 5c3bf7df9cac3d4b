"""The logit lens: a layer-cutoff score for any causal LM that has no layer-wise heads of its own.

The "Yes" logit is read from the hidden state after k decoder layers through the model's own final norm and LM
head (and final soft-capping, for Gemma 2/3). One pass serves every requested layer: this module runs the decoder
layers itself, up to the highest one asked for, after preparing their inputs the way transformers 5.x's decoder
``forward`` does (embeddings, position ids, the causal + padding mask per attention type, the rotary tables). At
the last layer the score therefore equals FlagLLMReranker's; ``check_against_forward`` proves it on a real input
once per model and refuses architectures whose forward does something else.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from flagdemo.errors import ModelLoadError

# (absolute, relative) agreement the self-check demands: fp32 rounding, or the coarser steps of fp16 / bf16.
_CHECK_TOLERANCE = {torch.float32: (1e-4, 1e-4), torch.float16: (5e-2, 1e-2), torch.bfloat16: (1e-1, 3e-2)}


class LogitLens:
    """Per-layer "Yes" logits of a transformers decoder LM (Llama, Mistral, Qwen2/3, Gemma 1/2/3, SmolLM …)."""

    method = "logit-lens"

    def __init__(self, model: nn.Module, token_id: int, model_name: str = "the model"):
        self.model = model
        self.token_id = int(token_id)
        base = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "model", None)
        parts = ("embed_tokens", "layers", "norm", "rotary_emb")
        if base is None or not all(hasattr(base, part) for part in parts):
            raise ModelLoadError(
                f"{model_name!r} ({type(model).__name__}) is not built like a transformers decoder LM (embeddings, "
                "decoder layers, final norm, rotary embeddings), so its layers cannot be read with the logit lens."
            )
        head = model.get_output_embeddings()
        if not isinstance(head, nn.Linear):
            raise ModelLoadError(f"{model_name!r} has no linear LM head, so the logit lens cannot read its layers.")
        self.base = base
        self.config = base.config
        self.head = head
        self.softcap = getattr(model.config, "final_logit_softcapping", None)
        self.num_layers = int(self.config.num_hidden_layers)
        self.valid_layers = list(range(0, self.num_layers + 1))
        self.layer_types = list(getattr(self.config, "layer_types", None) or [self._uniform_kind()] * self.num_layers)
        unknown = sorted(set(self.layer_types) - {"full_attention", "sliding_attention"})
        if unknown:
            raise ModelLoadError(
                f"{model_name!r} has {', '.join(unknown)} layers; the logit lens handles full and sliding-window "
                "attention only."
            )
        if getattr(self.config, "use_bidirectional_attention", False):
            raise ModelLoadError(f"{model_name!r} attends bidirectionally; the logit lens needs a causal LM.")
        self._rotary_takes_type = "layer_type" in inspect.signature(base.rotary_emb.forward).parameters

    def _uniform_kind(self) -> str:
        """Models without ``layer_types`` (Mistral, Mixtral, Phi-3 …) pick one mask by whether a window is set."""
        return "full_attention" if getattr(self.config, "sliding_window", None) is None else "sliding_attention"

    def _masks(self, hidden: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor) -> dict:
        from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

        arguments = {
            "config": self.config,
            "inputs_embeds": hidden,
            "attention_mask": attention_mask,
            "past_key_values": None,
            "position_ids": position_ids,
        }
        masks = {}
        if "full_attention" in self.layer_types:
            masks["full_attention"] = create_causal_mask(**arguments)
        if "sliding_attention" in self.layer_types:
            masks["sliding_attention"] = create_sliding_window_causal_mask(**arguments)
        return masks

    def _read(self, hidden: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The token's logit at each row's scoring position: final norm, one LM-head row, optional soft-cap."""
        normed = self.base.norm(hidden)[rows, positions]
        bias = None if self.head.bias is None else self.head.bias[self.token_id : self.token_id + 1]
        logits = nn.functional.linear(normed, self.head.weight[self.token_id : self.token_id + 1], bias)
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits[:, 0].float()

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
        hidden = self.base.embed_tokens(input_ids)
        position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        masks = self._masks(hidden, attention_mask, position_ids)
        if self._rotary_takes_type:
            rotary = {kind: self.base.rotary_emb(hidden, position_ids, kind) for kind in set(self.layer_types)}
        else:
            shared = self.base.rotary_emb(hidden, position_ids=position_ids)
            rotary = dict.fromkeys(set(self.layer_types), shared)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        scores = []
        for depth in range(wanted[-1] + 1):
            if depth in wanted:
                scores.append(self._read(hidden, rows, positions))
                if on_layer is not None:
                    on_layer(depth)
            if depth == wanted[-1]:
                break
            kind = self.layer_types[depth]
            output = self.base.layers[depth](
                hidden,
                attention_mask=masks[kind],
                position_embeddings=rotary[kind],
                position_ids=position_ids,
                past_key_values=None,
                use_cache=False,
            )
            hidden = output[0] if isinstance(output, tuple) else output
        return torch.stack(scores)

    @torch.no_grad()
    def check_against_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, model_name: str) -> None:
        """Refuse the lens when its last layer disagrees with the model's own forward on this input."""
        positions = attention_mask.sum(dim=1) - 1 if int(attention_mask[:, -1].sum()) < len(attention_mask) else None
        if positions is None:
            positions = torch.full((len(input_ids),), input_ids.shape[1] - 1, device=input_ids.device)
        lens = self.layer_scores(input_ids, attention_mask, [self.num_layers], positions)[0]
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        direct = logits[torch.arange(len(input_ids), device=input_ids.device), positions, self.token_id].float()
        atol, rtol = _CHECK_TOLERANCE.get(self.head.weight.dtype, _CHECK_TOLERANCE[torch.float32])
        if not torch.allclose(lens, direct, atol=atol, rtol=rtol):
            raise ModelLoadError(
                f"{model_name!r} ({type(self.model).__name__}) computes its logits in a way the logit lens does not "
                f"reproduce (last layer {lens.tolist()} vs forward {direct.tolist()}), so layer cutoffs are not "
                "available for it."
            )
