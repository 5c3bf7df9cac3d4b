"""FlagReranker: a cross-encoder (bge-reranker-base / -large / -v2-m3) scoring each pair with one logit."""

from __future__ import annotations

import time
from typing import Any

import torch

from flagdemo.models.backends.onnx import PROBE_TEXTS, BackendInfo, OnnxGraph, load_graph
from flagdemo.models.backends.runners import logits_runner
from flagdemo.models.rerankers.base import BaseReranker
from flagdemo.models.rerankers.inputs import PairBuilder, length_order, pad_batch, tokenize_texts
from flagdemo.models.sources import encoder_parameters, load_pretrained


class FlagReranker(BaseReranker):
    """FlagEmbedding's ``FlagReranker``: ``AutoModelForSequenceClassification``, score = the single logit.

    A pair is built like ``tokenizer.prepare_for_model(q, p, truncation='only_second')``: the query is cut to
    ``query_max_length`` first, then only the passage is cut so the pair fits ``max_length`` with its special tokens
    (XLM-R: ``<s> q </s></s> p </s>``). Pairs run longest first and come back in input order.

    ``backend="torch" | "onnx"`` (keyword only; default: the fastest exact one for the device) chooses what computes
    the logits; ``.backend`` and ``.backend_info`` report it.
    """

    method = "cross-encoder"
    # Keyword arguments FlagEmbedding 1.4's rerankers accept beyond the named ones (FlagAutoReranker passes them
    # through; FlagEmbedding stores them unused); any other name is a TypeError.
    EXTRA_KWARGS = frozenset({"passage_max_length", "revision", "use_bf16", "peft_path", "prompt"})

    def __init__(  # noqa: PLR0917 (FlagEmbedding accepts these positionally)
        self,
        model_name_or_path: str,
        use_fp16: bool = False,
        query_instruction_for_rerank: str | None = None,
        query_instruction_format: str = "{}{}",
        passage_instruction_for_rerank: str | None = None,
        passage_instruction_format: str = "{}{}",
        trust_remote_code: bool = False,
        cache_dir: str | None = None,
        devices: str | int | list[str] | list[int] | None = None,
        batch_size: int = 128,
        query_max_length: int | None = None,
        max_length: int = 512,
        normalize: bool = False,
        **kwargs: Any,
    ):
        backend = kwargs.pop("backend", None)
        unknown = sorted(set(kwargs) - self.EXTRA_KWARGS)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {unknown[0]!r}")
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
        self.pair_builder = PairBuilder(self.tokenizer)
        started = time.perf_counter()
        parameters = encoder_parameters(self.source, cache_dir=self.cache_dir)
        self.runner, reason = logits_runner(backend, self.device, owner="FlagReranker", parameters=parameters)
        self._probe = self._pad(self._probe_features())
        self.backend_info = self.runner.info(self, reason)
        self.load_seconds += time.perf_counter() - started

    def _load_model(self) -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification

        # FlagEmbedding loads fp32 and halves on the first non-CPU call when use_fp16; CPU always runs fp32.
        dtype = torch.float16 if self.use_fp16 and self.device.type != "cpu" else torch.float32
        return load_pretrained(
            self.source,
            AutoModelForSequenceClassification,
            dtype=dtype,
            device=self.device,
            trust_remote_code=self.trust_remote_code,
            cache_dir=self.cache_dir,
            weights_dtype=torch.float32,
        )

    def build_inputs(self, pairs: list[tuple[str, str]], settings: dict[str, Any]) -> list[dict[str, list[int]]]:
        """One unpadded feature dict per pair, in input order."""
        kwargs = settings["tokenizer_kwargs"]
        batch_size, max_length = settings["batch_size"], settings["max_length"]
        query_ids = tokenize_texts(
            self.tokenizer, [query for query, _ in pairs], settings["query_max_length"], batch_size, **kwargs
        )
        passage_ids = tokenize_texts(
            self.tokenizer, [passage for _, passage in pairs], max_length, batch_size, **kwargs
        )
        return [self.pair_builder.build(q, p, max_length) for q, p in zip(query_ids, passage_ids, strict=True)]

    def _score_pairs(self, pairs: list[tuple[str, str]], settings: dict[str, Any]) -> tuple[list[float], int]:
        features = self.build_inputs(pairs, settings)
        self.ensure_fits([len(item["input_ids"]) for item in features], settings["max_length"])
        order = length_order([len(item["input_ids"]) for item in features])
        ordered = [features[index] for index in order]
        batch_size = settings["batch_size"]
        scores_sorted: list[float] = []
        for start in range(0, len(ordered), batch_size):
            batch = self._pad(ordered[start : start + batch_size])
            scores_sorted.extend(self._logits(batch).view(-1).float().cpu().numpy().tolist())
        scores = [0.0] * len(scores_sorted)
        for rank, index in enumerate(order):
            scores[index] = scores_sorted[rank]
        return scores, sum(len(item["input_ids"]) for item in features)

    def _pad(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batch = pad_batch(
            features,
            pad_token_id=pad_id,
            padding_side=self.tokenizer.padding_side,
            pad_token_type_id=getattr(self.tokenizer, "pad_token_type_id", 0),
        )
        return {key: value.to(self.device) for key, value in batch.items()}

    def _probe_features(self) -> list[dict[str, list[int]]]:
        """Two pairs of different lengths: the export's example input."""
        settings = {"tokenizer_kwargs": {}, "batch_size": 2, "max_length": 64, "query_max_length": 48}
        return self.build_inputs([(PROBE_TEXTS[1], PROBE_TEXTS[0]), (PROBE_TEXTS[1], PROBE_TEXTS[1])], settings)

    def _onnx_graph(self) -> tuple[OnnxGraph, BackendInfo]:
        """The session of the model as it is now (weights swapped since construction get their own graph)."""
        return load_graph(self.model, "logits", self._probe)

    @property
    def backend(self) -> str:
        """'torch' or 'onnx': what computes the logits (the runner chosen when the model loaded)."""
        return self.runner.name

    def _logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.runner.logits(self, batch)
