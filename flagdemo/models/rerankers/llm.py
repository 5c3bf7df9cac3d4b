"""FlagLLMReranker: a causal LM scores a pair by the raw logit of "Yes" after a fixed prompt (bge-reranker-v2-gemma).

Input per pair (FlagEmbedding 1.4): ``[BOS] "A: "+query \\n "B: "+passage \\n prompt``. The query is cut to
``query_max_length`` and the passage to ``max_length`` (prefixes included); then only the passage side is cut so
BOS + query + \\n + passage fits ``max_length + len(\\n) + len(prompt)``, and \\n + prompt are appended after that.
Batches run longest first, padded to a multiple of 8 on the tokenizer's own padding side, without position ids;
the score is read at the last real token (a full last mask column means left padding).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import numpy as np
import torch

from flagdemo.errors import InvalidInputError, LayerOutOfRangeError, ModelLoadError
from flagdemo.models.rerankers.base import BaseReranker, synchronized_clock
from flagdemo.models.rerankers.inputs import (
    DEFAULT_PROMPT,
    LLM_SEPARATOR,
    last_real_positions,
    length_order,
    llm_bos,
    llm_pair_ids,
    pad_batch,
    tokenize_texts,
)
from flagdemo.models.rerankers.lens import LogitLens
from flagdemo.models.rerankers.minicpm import is_layerwise_minicpm
from flagdemo.models.sources import config_of, load_pretrained

CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
LENS_CHECK_PAIR = ("What is the capital of France?", "Paris is the capital of France.")


class DecoderReranker(BaseReranker):
    """Input building, batching and dtype rules shared by the LLM and layer-wise rerankers."""

    always_bos = False

    def __init__(  # noqa: PLR0917 (FlagEmbedding accepts these positionally)
        self,
        model_name_or_path: str,
        peft_path: str | None = None,
        use_fp16: bool = False,
        use_bf16: bool = False,
        query_instruction_for_rerank: str = "A: ",
        query_instruction_format: str = "{}{}",
        passage_instruction_for_rerank: str = "B: ",
        passage_instruction_format: str = "{}{}",
        cache_dir: str | None = None,
        trust_remote_code: bool = False,
        devices: str | int | list[str] | list[int] | None = None,
        prompt: str | None = None,
        batch_size: int = 128,
        query_max_length: int | None = None,
        max_length: int = 512,
        normalize: bool = False,
        fp32_arithmetic: bool = False,
        **kwargs: Any,
    ):
        if peft_path:
            raise InvalidInputError(
                "flagdemo does not load PEFT adapters; merge the adapter into the model (merge_and_unload) and save "
                "it as a folder, then load that folder."
            )
        if fp32_arithmetic and not use_bf16:
            raise InvalidInputError("fp32_arithmetic keeps bf16 weights and computes in fp32: it needs use_bf16=True.")
        self.use_bf16 = use_bf16
        self.fp32_arithmetic = fp32_arithmetic  # flagdemo's own: bf16 weights widened to fp32 as they are used
        self.prompt = prompt
        super().__init__(
            model_name_or_path,
            use_fp16=use_fp16,
            query_instruction_for_rerank=query_instruction_for_rerank,
            query_instruction_format=query_instruction_format,
            passage_instruction_for_rerank=passage_instruction_for_rerank,
            passage_instruction_format=passage_instruction_format,
            devices=devices,
            batch_size=batch_size,
            query_max_length=query_max_length,
            max_length=max_length,
            normalize=normalize,
            trust_remote_code=trust_remote_code,
            cache_dir=cache_dir,
            **kwargs,
        )
        self.yes_loc = self.tokenizer("Yes", add_special_tokens=False)["input_ids"][0]

    # --- loading ------------------------------------------------------------------------------------------------
    def _dtypes(self) -> tuple[torch.dtype, torch.dtype]:
        """(weights dtype, run dtype), FlagEmbedding's rule: bf16 if use_bf16, else fp32, on every device (a CPU
        included); halved on an accelerator if use_fp16 (a CPU ignores use_fp16)."""
        weights = torch.bfloat16 if self.use_bf16 else torch.float32
        if self.device.type == "cpu":
            return weights, weights
        return weights, torch.float16 if self.use_fp16 else weights

    def _config_dict(self) -> dict[str, Any]:
        """The checkpoint's config.json as plain data (read without transformers, so no remote code is involved)."""
        config = config_of(self.source, cache_dir=self.cache_dir)
        if config is None:
            raise ModelLoadError(
                f"{self.model_name!r} has no config.json, so it cannot be loaded as a language model."
            )
        return config

    def _load_causal_lm(self, config: dict[str, Any]) -> torch.nn.Module:
        from transformers import AutoModelForCausalLM

        architectures = config.get("architectures") or []
        if architectures and not any(name.endswith(CAUSAL_SUFFIXES) for name in architectures):
            raise InvalidInputError(
                f"{self.model_name!r} is a {architectures[0]}, not a causal language model: {type(self).__name__} "
                "scores pairs with the 'Yes' logit of a decoder LM. Load cross-encoders with FlagReranker."
            )
        weights_dtype, dtype = self._dtypes()
        return load_pretrained(
            self.source,
            AutoModelForCausalLM,
            dtype=dtype,
            device=self.device,
            trust_remote_code=self.trust_remote_code,
            cache_dir=self.cache_dir,
            weights_dtype=weights_dtype,
            fp32_arithmetic=self.fp32_arithmetic,
        )

    # --- inputs -------------------------------------------------------------------------------------------------
    def _own_settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        prompt = kwargs.pop("prompt", None)
        return {"prompt": prompt if prompt is not None else self.prompt}

    def build_inputs(
        self, pairs: list[tuple[str, str]], settings: dict[str, Any]
    ) -> tuple[list[list[int]], np.ndarray]:
        """Token ids per pair (input order) and FlagEmbedding's processing order (by query + passage length)."""
        kwargs = settings["tokenizer_kwargs"]
        batch_size, max_length = settings["batch_size"], settings["max_length"]
        query_ids = tokenize_texts(
            self.tokenizer, [query for query, _ in pairs], settings["query_max_length"], batch_size, **kwargs
        )
        passage_ids = tokenize_texts(
            self.tokenizer, [passage for _, passage in pairs], max_length, batch_size, **kwargs
        )
        order = length_order([len(q) + len(p) for q, p in zip(query_ids, passage_ids, strict=True)])
        prompt = settings["prompt"] if settings["prompt"] is not None else DEFAULT_PROMPT
        prompt_ids = self.tokenizer(prompt, return_tensors=None, add_special_tokens=False)["input_ids"]
        sep_ids = self.tokenizer(LLM_SEPARATOR, return_tensors=None, add_special_tokens=False)["input_ids"]
        bos = llm_bos(self.tokenizer, always=self.always_bos)
        if self.always_bos and bos is None:
            raise ModelLoadError(f"{self.model_name!r} has no BOS token, which the layer-wise reranker always adds.")
        features = [
            llm_pair_ids(
                q, p, bos_id=bos, sep_ids=sep_ids, prompt_ids=prompt_ids,
                encode_max_length=max_length + len(sep_ids) + len(prompt_ids),
                truncation_side=getattr(self.tokenizer, "truncation_side", "right"),
            )
            for q, p in zip(query_ids, passage_ids, strict=True)
        ]  # fmt: skip
        self.ensure_fits([len(ids) for ids in features], max_length)
        return features, order

    def padded_batches(self, pairs: list[tuple[str, str]], settings: dict[str, Any]):
        """Yield (input_ids, attention_mask, scoring positions) per batch, longest pairs first; also the order."""
        features, order = self.build_inputs(pairs, settings)
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:  # FlagEmbedding cannot pad such a tokenizer; EOS is the usual stand-in
            pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        batch_size = settings["batch_size"]
        ordered = [features[index] for index in order]
        batches = []
        for start in range(0, len(ordered), batch_size):
            batch = pad_batch(
                [{"input_ids": ids, "attention_mask": [1] * len(ids)} for ids in ordered[start : start + batch_size]],
                pad_token_id=pad_id,
                padding_side=self.tokenizer.padding_side,
                pad_to_multiple_of=8,
            )
            input_ids = batch["input_ids"].to(self.device)
            attention_mask = batch["attention_mask"].to(self.device)
            batches.append((input_ids, attention_mask, last_real_positions(attention_mask)))
        return batches, order, sum(len(ids) for ids in features)

    def layer_pass(
        self, scorer, pairs: list[tuple[str, str]], settings: dict[str, Any], *, timed: bool = False
    ) -> tuple[np.ndarray, int, list[float]]:
        """Scores (n_layers, n_pairs) in input order from one truncated pass per batch, the token count, and the
        cumulative seconds until each layer's scores were ready (summed over batches)."""
        layers = settings["layers"]
        batches, order, n_tokens = self.padded_batches(pairs, settings)
        clock = synchronized_clock(self.device)
        cumulative = [0.0] * len(layers)
        per_batch = []
        for input_ids, attention_mask, positions in batches:
            marks: dict[int, float] = {}
            started = clock()

            def mark(layer: int, started: float = started, marks: dict[int, float] = marks) -> None:
                marks[layer] = clock() - started

            scores = scorer.layer_scores(
                input_ids, attention_mask, layers, positions, on_layer=mark if timed else None
            )
            per_batch.append(scores.cpu().float().numpy())
            for index, layer in enumerate(layers):
                cumulative[index] += marks.get(layer, 0.0)
        sorted_scores = np.concatenate(per_batch, axis=1)
        restored = np.stack([restore_order(row.tolist(), order) for row in sorted_scores])
        return restored, n_tokens, cumulative


def check_layers(requested: object, valid: list[int], model_name: str, method: str) -> list[int]:
    """Layer numbers sorted and unique, each within ``valid`` (else LayerOutOfRangeError naming the range)."""
    items = [requested] if isinstance(requested, (int, np.integer)) else requested
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise InvalidInputError(f"Layers must be a layer number or a list of them, not {requested!r}.")
    layers = []
    for layer in items:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise InvalidInputError(f"Layers must be whole numbers, not {layer!r}.")
        layers.append(int(layer))
    if not layers:
        raise InvalidInputError("The list of layers is empty; name at least one layer.")
    low, high = valid[0], valid[-1]
    outside = sorted({layer for layer in layers if not low <= layer <= high})
    if outside:
        plural = len(outside) > 1
        raise LayerOutOfRangeError(
            f"Layer{'s' if plural else ''} {', '.join(map(str, outside))} {'are' if plural else 'is'} outside the "
            f"valid range {low}–{high} of {model_name!r} ({method}); pick layers from {low} to {high}."
        )
    return sorted(set(layers))


def restore_order(sorted_scores: list[float], order: np.ndarray) -> list[float]:
    """Put scores computed in processing order back into input order."""
    scores = [0.0] * len(sorted_scores)
    for rank, index in enumerate(order):
        scores[index] = sorted_scores[rank]
    return scores


class FlagLLMReranker(DecoderReranker):
    """FlagEmbedding's ``FlagLLMReranker``: the raw logit of the first "Yes" sub-token at the last real position."""

    method = "yes-logit"

    def _load_model(self) -> torch.nn.Module:
        config = self._config_dict()
        if is_layerwise_minicpm(config):
            raise InvalidInputError(
                f"{self.model_name!r} is a layer-wise MiniCPM reranker, which scores with per-layer heads rather than "
                "the 'Yes' logit; load it with LayerWiseFlagLLMReranker."
            )
        return self._load_causal_lm(config)

    @property
    def valid_layers(self) -> list[int]:
        """Layers the logit lens can read (0 = embeddings … num_layers = the normal output)."""
        return list(range(0, self.num_layers + 1))

    @functools.cached_property
    def lens(self) -> LogitLens:
        """The logit lens on this model (for ``layer_sweep``), checked once against the model's own forward."""
        lens = LogitLens(self.model, self.yes_loc, self.model_name)
        batches, _, _ = self.padded_batches([LENS_CHECK_PAIR], self._settings({}))
        input_ids, attention_mask, _ = batches[0]
        lens.check_against_forward(input_ids, attention_mask, self.model_name)
        return lens

    def _score_pairs(self, pairs: list[tuple[str, str]], settings: dict[str, Any]) -> tuple[list[float], int]:
        batches, order, n_tokens = self.padded_batches(pairs, settings)
        sorted_scores: list[float] = []
        keeps_some_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        for input_ids, attention_mask, positions in batches:
            rows = torch.arange(len(input_ids), device=input_ids.device)
            if keeps_some_logits:
                # Only the scoring positions go through the LM head: a full (batch, length, vocab) logit tensor
                # is gigabytes at FlagEmbedding's batch size. The head is per position: same scores up to rounding.
                kept, columns = torch.unique(positions, return_inverse=True)
                logits = self.model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=kept).logits
            else:
                logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
                columns = positions
            sorted_scores.extend(logits[rows, columns, self.yes_loc].cpu().float().tolist())
        return restore_order(sorted_scores, order), n_tokens
