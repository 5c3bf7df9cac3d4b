"""What every flagdemo reranker shares with FlagEmbedding 1.4's ``AbsReranker``: the constructor, the instruction
handling, the per-call settings and the ``compute_score`` contract (always a list of floats, even for one pair).

flagdemo scores on ONE device (``devices`` lists use their first entry): FlagEmbedding's per-device process pool
costs seconds of start-up per call and returns an ndarray instead of a list, which an interactive explorer does not
want. Out-of-memory on a GPU shrinks the batch by 3/4 and starts over, as FlagEmbedding's probe does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from flagdemo.errors import InvalidInputError
from flagdemo.models import catalog
from flagdemo.models.devices import resolve_device, shrink_on_out_of_memory
from flagdemo.models.positions import ensure_inputs_fit
from flagdemo.models.records import RerankResult, Timings
from flagdemo.models.rerankers.inputs import apply_instructions, as_pair_list, sigmoid
from flagdemo.models.sources import ModelSource, load_tokenizer, resolve_source

T = TypeVar("T")

# Per-call options FlagEmbedding accepts that change nothing here: the passage budget is max_length, the
# dataloader path crashes in FlagEmbedding 1.4 (it reads an unset attribute) and scoring is in-process anyway.
IGNORED_CALL_OPTIONS = ("passage_max_length", "use_dataloader", "num_workers", "device")


class BaseReranker:
    """FlagEmbedding's ``AbsReranker`` arguments and defaults; subclasses load a model and score batches."""

    method = "reranker"

    def __init__(  # noqa: PLR0917 (FlagEmbedding accepts these positionally)
        self,
        model_name_or_path: str,
        use_fp16: bool = False,
        query_instruction_for_rerank: str | None = None,
        query_instruction_format: str = "{}{}",
        passage_instruction_for_rerank: str | None = None,
        passage_instruction_format: str = "{}{}",
        devices: str | int | list[str] | list[int] | None = None,
        batch_size: int = 128,
        query_max_length: int | None = None,
        max_length: int = 512,
        normalize: bool = False,
        trust_remote_code: bool = False,
        cache_dir: str | None = None,
        revision: str | None = None,
        **kwargs: Any,
    ):
        started = time.perf_counter()
        self.model_name = str(model_name_or_path)
        self.model_name_or_path = self.model_name
        self.use_fp16 = use_fp16
        self.query_instruction_for_rerank = query_instruction_for_rerank
        self.query_instruction_format = query_instruction_format
        self.passage_instruction_for_rerank = passage_instruction_for_rerank
        self.passage_instruction_format = passage_instruction_format
        self.device = resolve_device(devices)
        self.target_devices = [str(self.device)]
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.query_max_length = query_max_length
        self.max_length = _positive_int(max_length, "max_length")
        self.normalize = normalize
        self.trust_remote_code = bool(trust_remote_code)
        self.cache_dir = cache_dir
        # FlagEmbedding keeps unknown keyword arguments as attributes (passage_max_length lands here, unused).
        self.kwargs = kwargs
        for name, value in kwargs.items():
            if not hasattr(self, name):
                setattr(self, name, value)
        # Before resolve_source: a refused model must not reach the hub (or its cache) at all.
        catalog.ensure_remote_code_allowed(self.model_name, catalog.lookup(self.model_name), self.trust_remote_code)
        self.source: ModelSource = resolve_source(model_name_or_path, revision=revision)
        self.tokenizer = load_tokenizer(self.source, trust_remote_code=self.trust_remote_code, cache_dir=cache_dir)
        self.model = self._load_model()
        self.load_seconds = time.perf_counter() - started

    # --- subclasses ---------------------------------------------------------------------------------------------
    def _load_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def _score_pairs(self, pairs: list[tuple[str, str]], settings: dict[str, Any]) -> tuple[list, int]:
        """Raw scores in input order (a list, or one list per layer) and the number of real tokens scored."""
        raise NotImplementedError

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    valid_layers: list[int] | None = None

    # --- FlagEmbedding API ---------------------------------------------------------------------------------------
    def get_detailed_inputs(self, sentence_pairs) -> list[tuple[str, str]]:
        """The pairs with the query / passage instructions applied (FlagEmbedding's ``get_detailed_inputs``)."""
        return apply_instructions(
            as_pair_list(sentence_pairs),
            self.query_instruction_for_rerank,
            self.query_instruction_format,
            self.passage_instruction_for_rerank,
            self.passage_instruction_format,
        )

    def compute_score(self, sentence_pairs, **kwargs: Any) -> list:
        """Scores of one ``[query, passage]`` or a list of them, in input order: a list of floats.

        Per call: ``batch_size``, ``query_max_length``, ``max_length``, ``normalize`` (sigmoid) and the subclass's
        own options; other keyword arguments go to the tokenizer, as in FlagEmbedding.
        """
        scores, _, _ = self._run(sentence_pairs, kwargs)
        return scores

    def compute_score_detailed(self, sentence_pairs, **kwargs: Any) -> RerankResult:
        """``compute_score`` plus both raw and sigmoid scores, timings and the method that scored."""
        kwargs = {**kwargs, "normalize": False}
        scores, n_tokens, seconds = self._run(sentence_pairs, kwargs)
        timings = Timings(self.load_seconds, seconds, len(scores), n_tokens)
        return RerankResult(list(scores), [sigmoid(score) for score in scores], timings, self.method)

    # --- shared machinery ---------------------------------------------------------------------------------------
    def _settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Per-call values over constructor values over FlagEmbedding's defaults (query budget = 3/4 max_length)."""
        for name in IGNORED_CALL_OPTIONS:
            kwargs.pop(name, None)
        batch_size = _positive_int(_first(kwargs.pop("batch_size", None), self.batch_size), "batch_size")
        max_length = _positive_int(_first(kwargs.pop("max_length", None), self.max_length), "max_length")
        query_max_length = _first(kwargs.pop("query_max_length", None), self.query_max_length, max_length * 3 // 4)
        normalize = bool(_first(kwargs.pop("normalize", None), self.normalize))
        settings = {
            "batch_size": batch_size,
            "max_length": max_length,
            "query_max_length": _positive_int(query_max_length, "query_max_length"),
            "normalize": normalize,
        }
        settings.update(self._own_settings(kwargs))
        settings["tokenizer_kwargs"] = dict(kwargs)
        return settings

    def _own_settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Subclass options popped from the call's keyword arguments (prompt, cutoff_layers …)."""
        return {}

    def ensure_fits(self, token_counts: list[int], max_length: int) -> None:
        """InvalidInputError before any forward pass when a pair runs past the model's position table."""
        config = getattr(self.model, "config", None)
        ensure_inputs_fit(config, token_counts, model_name=self.model_name, max_length=max_length, what="Pair")

    def _run(self, sentence_pairs, kwargs: dict[str, Any]) -> tuple[list, int, float]:
        pairs = self.get_detailed_inputs(sentence_pairs)
        settings = self._settings(dict(kwargs))
        started = time.perf_counter()
        scores, n_tokens = self.with_oom_retry(lambda: self._score_pairs(pairs, settings), settings)
        seconds = time.perf_counter() - started
        if settings["normalize"]:
            scores = _apply_sigmoid(scores)
        return scores, n_tokens, seconds

    @torch.no_grad()
    def with_oom_retry(self, work: Callable[[], T], settings: dict[str, Any]) -> T:
        """Run ``work``; while memory runs out, shrink ``settings['batch_size']`` by 3/4 and start over, as
        FlagEmbedding's batch probe does."""

        def attempt(batch_size: int) -> T:
            settings["batch_size"] = batch_size
            return work()

        return shrink_on_out_of_memory(
            attempt, settings["batch_size"], device=self.device, what=repr(self.model_name), unit="pair"
        )


def _apply_sigmoid(scores: list) -> list:
    if scores and isinstance(scores[0], list):
        return [[sigmoid(score) for score in layer] for layer in scores]
    return [sigmoid(score) for score in scores]


def _first(*values):
    for value in values:
        if value is not None:
            return value
    return None


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive whole number, not {value!r}.")
    return value


def synchronized_clock(device: torch.device):
    """A perf_counter that first waits for queued GPU work, so per-layer times are real."""

    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    return now
