"""LayerWiseFlagLLMReranker: score with the hidden state after k layers (``cutoff_layers``), from one pass.

Native bge-reranker-v2-minicpm-layerwise checkpoints (``architectures: ["LayerWiseMiniCPMForCausalLM"]``) use
their own per-layer heads through flagdemo's implementation of the architecture, loaded without remote code. Any
other causal LM gets the logit lens instead: the "Yes" logit read from layer k through the final norm and LM head.
Results say which of the two produced a score (``method``: 'native-head' or 'logit-lens').

Differences from FlagEmbedding 1.4, on purpose: a layer outside the valid range raises LayerOutOfRangeError naming
the range (FlagEmbedding warns and silently drops it), and layers are always sorted and de-duplicated (FlagEmbedding
pairs heads with layers in the caller's order, so ``[40, 28]`` there scores each layer with the other's head).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from flagdemo.errors import InvalidInputError
from flagdemo.models.backends.widened import DESCRIBED_AFTER_DTYPE, compute_in_fp32
from flagdemo.models.cache import MODEL_CACHE
from flagdemo.models.devices import resolve_device
from flagdemo.models.records import RerankResult
from flagdemo.models.rerankers.lens import LogitLens
from flagdemo.models.rerankers.llm import LENS_CHECK_PAIR, DecoderReranker, check_layers
from flagdemo.models.rerankers.minicpm import (
    LayerWiseMiniCPM,
    build_layerwise_minicpm,
    is_layerwise_minicpm,
    weight_files,
)


class LayerWiseFlagLLMReranker(DecoderReranker):
    """FlagEmbedding's ``LayerWiseFlagLLMReranker`` (plus the logit lens for causal LMs without layer heads).

    ``compute_score(pairs, cutoff_layers=[...])`` returns one score list per layer in ascending order, flattened to
    one list when a single layer is asked for; the default is the last layer. Like FlagEmbedding, when neither
    ``use_fp16`` nor ``use_bf16`` is set it runs fp16 on a GPU (with a warning; CPU runs fp32, silently).
    """

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
        cutoff_layers: int | list[int] | None = None,
        prompt: str | None = None,
        batch_size: int = 128,
        query_max_length: int | None = None,
        max_length: int = 512,
        normalize: bool = False,
        **kwargs: Any,
    ):
        if not use_fp16 and not use_bf16:
            if resolve_device(devices).type != "cpu":
                warnings.warn(
                    "LayerWiseFlagLLMReranker runs in fp16 when neither use_fp16 nor use_bf16 is set, as "
                    "FlagEmbedding does; pass use_bf16=True for bf16.",
                    UserWarning,
                    stacklevel=2,
                )
            use_fp16 = True  # FlagEmbedding's rule; the CPU runs fp32 regardless
        self.cutoff_layers = cutoff_layers
        super().__init__(
            model_name_or_path,
            peft_path=peft_path,
            use_fp16=use_fp16,
            use_bf16=use_bf16,
            query_instruction_for_rerank=query_instruction_for_rerank,
            query_instruction_format=query_instruction_format,
            passage_instruction_for_rerank=passage_instruction_for_rerank,
            passage_instruction_format=passage_instruction_format,
            cache_dir=cache_dir,
            trust_remote_code=trust_remote_code,
            devices=devices,
            prompt=prompt,
            batch_size=batch_size,
            query_max_length=query_max_length,
            max_length=max_length,
            normalize=normalize,
            **kwargs,
        )
        if self.scorer.method == "logit-lens":
            self._check_lens()
        if cutoff_layers is not None:
            self.resolve_layers(cutoff_layers)

    def _load_model(self) -> torch.nn.Module:
        config = self._config_dict()
        if is_layerwise_minicpm(config):
            self.always_bos = True  # FlagEmbedding's layer-wise class always prepends BOS
            _, dtype = self._dtypes()
            files = weight_files(self.source.path if self.source.is_local else self._hub_resolver())
            key = (self.source.path, self.source.revision, "LayerWiseMiniCPM", str(self.device), str(dtype))
            arithmetic = ""
            if self.fp32_arithmetic:
                key += ("fp32 arithmetic",)
                arithmetic = DESCRIBED_AFTER_DTYPE

            def build() -> LayerWiseMiniCPM:
                model = build_layerwise_minicpm(config, files, dtype=dtype, device=self.device)
                return compute_in_fp32(model) if self.fp32_arithmetic else model

            describe = f"{self.model_name} (LayerWiseMiniCPM, {dtype}{arithmetic}, {self.device})"
            model = MODEL_CACHE.get_or_load(key, build, describe=describe.replace("torch.", ""))
            self.scorer: LayerWiseMiniCPM | LogitLens = model
            return model
        model = self._load_causal_lm(config)  # the lens keeps FlagLLMReranker's BOS rule: its last layer equals it
        self.scorer = LogitLens(
            model, self.tokenizer("Yes", add_special_tokens=False)["input_ids"][0], self.model_name
        )
        return model

    def _hub_resolver(self):
        from transformers.utils import cached_file

        def resolve(name: str) -> str | None:
            return cached_file(
                self.source.path,
                name,
                revision=self.source.revision,
                cache_dir=self.cache_dir,
                _raise_exceptions_for_missing_entries=False,
            )

        return resolve

    def _check_lens(self) -> None:
        """Prove once, on a short real input, that the lens's last layer equals the model's own forward."""
        batches, _, _ = self.padded_batches([LENS_CHECK_PAIR], self._settings({}))
        input_ids, attention_mask, _ = batches[0]
        self.scorer.check_against_forward(input_ids, attention_mask, self.model_name)

    # --- layers -------------------------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return self.scorer.method

    @property
    def num_layers(self) -> int:
        return self.scorer.num_layers

    @property
    def valid_layers(self) -> list[int]:
        return list(self.scorer.valid_layers)

    def resolve_layers(self, cutoff_layers: int | list[int] | None) -> list[int]:
        """Requested layers, sorted and unique; None means the last layer; out-of-range layers are refused."""
        if cutoff_layers is None:
            return [self.num_layers]
        return check_layers(cutoff_layers, self.valid_layers, self.model_name, self.method)

    def _own_settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        settings = super()._own_settings(kwargs)
        cutoff = kwargs.pop("cutoff_layers", None)
        settings["layers"] = self.resolve_layers(cutoff if cutoff is not None else self.cutoff_layers)
        return settings

    def _score_pairs(self, pairs: list[tuple[str, str]], settings: dict[str, Any]) -> tuple[list, int]:
        scores, n_tokens, _ = self.layer_pass(self.scorer, pairs, settings)
        per_layer = [row.tolist() for row in scores]
        return (per_layer[0] if len(per_layer) == 1 else per_layer), n_tokens

    def compute_score_detailed(self, sentence_pairs, **kwargs: Any) -> RerankResult:
        """One layer's raw and sigmoid scores (default: the reranker's cutoff, else the last layer)."""
        cutoff = kwargs.get("cutoff_layers", self.cutoff_layers)
        layers = self.resolve_layers(cutoff)
        if len(layers) != 1:
            raise InvalidInputError(
                "compute_score_detailed scores one layer; use flagdemo.models.rerankers.layer_sweep for several "
                "layers."
            )
        result = super().compute_score_detailed(sentence_pairs, **{**kwargs, "cutoff_layers": layers})
        result.layer = layers[0]
        return result
