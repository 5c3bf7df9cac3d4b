"""What every flagdemo embedder shares: FlagEmbedding 1.4's constructor, instruction handling and encode loop.

The encode loop is FlagEmbedding's ``encode_single_device``: pre-tokenize without padding, sort by length
(descending, numpy's default argsort, so batches are composed exactly as FlagEmbedding composes them), pad each batch
to its longest item, pool, cut to ``truncate_dim``, L2-normalise in the model dtype, and restore the input order.
Differences, all deliberate: one device (no process pool), ``torch.inference_mode``, the batch shrinks by 3/4 only on
out-of-memory errors (FlagEmbedding shrinks on any RuntimeError, which hides real bugs), typed input errors, and
``encode_detailed`` for the explorer (per-layer embeddings, tokens, timings) from the same single forward pass.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from flagdemo.errors import EmptyInputError, InvalidInputError
from flagdemo.models import catalog
from flagdemo.models.backends.onnx import (
    PROBE_TEXTS,
    BackendInfo,
    GraphVariant,
    OnnxGraph,
    WeightFiles,
    files_identity,
    load_graph,
    weights_fingerprint,
)
from flagdemo.models.backends.runners import body_runner
from flagdemo.models.devices import resolve_device, resolve_dtype, shrink_on_out_of_memory
from flagdemo.models.positions import ensure_inputs_fit
from flagdemo.models.records import EncodeResult, Timings
from flagdemo.models.sources import (
    ModelSource,
    encoder_parameters,
    load_tokenizer,
    resolve_source,
    rounding_words,
)

POOLING_METHODS = ("cls", "mean", "last_token")
# Keyword arguments FlagEmbedding 1.4's embedder constructors accept beyond their named parameters (kept as
# attributes, as FlagEmbedding does); anything else is a TypeError naming it, never silently stored.
EXTRA_KWARGS = frozenset(
    {
        "passage_instruction_for_retrieval",
        "passage_instruction_format",
        "pooling_method",
        "colbert_dim",
        "return_dense",
        "return_sparse",
        "return_colbert_vecs",
        "examples_for_task",
        "examples_instruction_format",
        "suffix",
        "domain_for_pseudo_moe",
    }
)
DETAILED_MODES = ("query", "passage", "raw")


def get_detailed_instruct(instruction_format: str, instruction: str, sentence: str) -> str:
    """FlagEmbedding's instruction template: a literal backslash-n becomes a newline, then ``str.format``."""
    if "\\n" in instruction_format:
        instruction_format = instruction_format.replace("\\n", "\n")
    return instruction_format.format(instruction, sentence)


def pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor, method: str) -> torch.Tensor:
    """cls: first position; mean: masked mean; last_token: last column if every row ends with a real token
    (left padding), else each row's last real position (FlagEmbedding's rule, also right for equal lengths)."""
    if method == "cls":
        return last_hidden_state[:, 0]
    if method == "mean":
        summed = torch.sum(last_hidden_state * attention_mask.unsqueeze(-1).float(), dim=1)
        counts = attention_mask.sum(dim=1, keepdim=True).float()
        return summed / counts
    if method == "last_token":
        left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
        if left_padding:
            return last_hidden_state[:, -1]
        sequence_lengths = attention_mask.sum(dim=1) - 1
        rows = torch.arange(last_hidden_state.shape[0], device=last_hidden_state.device)
        return last_hidden_state[rows, sequence_lengths]
    raise InvalidInputError(f"Pooling method {method!r} is not supported; use one of {', '.join(POOLING_METHODS)}.")


def as_text_list(texts: Any, what: str = "sentences") -> tuple[list[str], bool]:
    """(list of texts, was a single string); EmptyInputError / InvalidInputError for anything else."""
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    if not isinstance(texts, (list, tuple)):
        raise InvalidInputError(f"{what} must be a string or a list of strings, not {type(texts).__name__}.")
    if not texts:
        raise EmptyInputError(f"{what} is an empty list; pass at least one text.")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"{what}[{index}] is a {type(text).__name__}, not a string; every item must be text."
            )
    return list(texts), False


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be a positive whole number, not {value!r}.")
    return int(value)


# How an embedder's checkpoint weights are held (the arithmetic's precision is fastpath's). "fp16": rounded to fp16
# on load, FlagEmbedding's default (use_fp16=True; a CPU then computes in fp32 on the rounded weights, so the vectors
# are FlagEmbedding's, up to ~1e-4 from sentence-transformers'). "fp32": the checkpoint's own values.
WEIGHTS = ("fp16", "fp32")


def check_weights(weights: str) -> str:
    """``weights`` itself when it is one of ``WEIGHTS``; else a sentence naming them."""
    if weights not in WEIGHTS:
        raise InvalidInputError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}.")
    return weights


def default_weights() -> str:
    """``FLAGDEMO_WEIGHTS`` (fp16 | fp32), default fp16: the app shows FlagEmbedding's own numbers unless a
    deployment asks for the checkpoint's full-precision weights."""
    value = os.environ.get("FLAGDEMO_WEIGHTS", "").strip().lower() or "fp16"
    if value not in WEIGHTS:
        raise InvalidInputError(f"FLAGDEMO_WEIGHTS must be one of {', '.join(WEIGHTS)}, not {value!r}.")
    return value


def describe_weights(weights_dtype: torch.dtype, dtype: torch.dtype) -> str:
    """What ran, in words: the weights as held and the arithmetic."""
    held, run = (str(d).removeprefix("torch.") for d in (weights_dtype, dtype))
    if held == run:
        return f"{run} weights and arithmetic" + (" (the checkpoint's own values)" if run == "float32" else "")
    why = "as FlagEmbedding's default (use_fp16=True)" if held == "float16" else "as use_bf16=True asks"
    return f"weights rounded to {held} on load, {why}; computed in {run}"


class BaseEmbedder:
    """FlagEmbedding's ``AbsEmbedder`` constructor and encode entry points, on one device.

    ``devices`` may be a device string, an index, or a list of them; a list uses its FIRST device only (flagdemo does
    not start one process per GPU). The model loads through the shared MODEL_CACHE: several embedder objects for one
    checkpoint share its weights. On CPU the model always computes in fp32, as FlagEmbedding's CPU path does; with the
    default ``use_fp16=True`` the weights are first rounded to fp16, exactly like FlagEmbedding's fp16 load followed
    by ``model.float()``.

    ``backend="torch" | "onnx"`` (keyword only; default: the fastest exact one for the device, see
    ``flagdemo.models.backends.onnx``) chooses what runs the transformer body; ``.backend`` and ``.backend_info``
    report it.
    """

    DEFAULT_POOLING_METHOD: ClassVar[str] = "cls"
    SUPPORTS_ONNX: ClassVar[bool] = False
    # On onnx, the torch weights load only when something must run on torch (fast modes, hooks): the subclass
    # gives _weight_files; a local model folder is needed to key its graph by its files.
    LAZY_TORCH: ClassVar[bool] = False
    DEFAULT_QUERY_INSTRUCTION_FORMAT: ClassVar[str] = "{}{}"

    def __init__(  # noqa: PLR0917 - positional order is FlagEmbedding's public API
        self,
        model_name_or_path: str,
        normalize_embeddings: bool = True,
        use_fp16: bool = True,
        use_bf16: bool = False,
        query_instruction_for_retrieval: str | None = None,
        query_instruction_format: str | None = None,
        devices: str | int | list[str] | list[int] | None = None,
        batch_size: int = 256,
        query_max_length: int = 512,
        passage_max_length: int = 512,
        convert_to_numpy: bool = True,
        truncate_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        if query_instruction_format is None:
            query_instruction_format = self.DEFAULT_QUERY_INSTRUCTION_FORMAT
        if not isinstance(query_instruction_format, str):
            raise InvalidInputError(
                f"query_instruction_format must be a string such as '{{}}{{}}', not {query_instruction_format!r}."
            )
        if query_instruction_for_retrieval is not None and not isinstance(query_instruction_for_retrieval, str):
            raise InvalidInputError("query_instruction_for_retrieval must be a string or None.")
        self.model_name_or_path = model_name_or_path
        self.model_name = str(model_name_or_path)
        self.normalize_embeddings = bool(normalize_embeddings)
        self.use_fp16 = bool(use_fp16)
        self.use_bf16 = bool(use_bf16)
        self.query_instruction_for_retrieval = query_instruction_for_retrieval
        self.query_instruction_format = query_instruction_format
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.query_max_length = _positive_int(query_max_length, "query_max_length")
        self.passage_max_length = _positive_int(passage_max_length, "passage_max_length")
        self.convert_to_numpy = bool(convert_to_numpy)
        self.truncate_dim = None if truncate_dim is None else _positive_int(truncate_dim, "truncate_dim")
        self.device = resolve_device(devices)
        self.target_devices = [str(self.device)]
        self.dtype = resolve_dtype(self.device, use_fp16=self.use_fp16, use_bf16=self.use_bf16)
        # FlagEmbedding loads in the flag dtype, then upcasts to fp32 on CPU: keep that rounding.
        self.weights_dtype = torch.bfloat16 if self.use_bf16 else torch.float16 if self.use_fp16 else torch.float32
        trust_remote_code = bool(kwargs.pop("trust_remote_code", False))
        cache_dir = kwargs.pop("cache_dir", None)
        revision = kwargs.pop("revision", None)
        backend = kwargs.pop("backend", None)
        unknown = sorted(set(kwargs) - EXTRA_KWARGS)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {unknown[0]!r}")
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.kwargs = kwargs
        self._tokenizer_lock = threading.Lock()

        started = time.perf_counter()
        self.source: ModelSource = resolve_source(model_name_or_path, revision=revision)
        catalog.ensure_remote_code_allowed(self.model_name, self.source.entry, trust_remote_code)
        self.trust_remote_code = trust_remote_code
        self.cache_dir = cache_dir
        self.tokenizer = load_tokenizer(self.source, trust_remote_code=trust_remote_code, cache_dir=cache_dir)
        self.runner, reason = body_runner(
            backend,
            self.device,
            owner=type(self).__name__,
            supports_onnx=self.SUPPORTS_ONNX,
            parameters=encoder_parameters(self.source, cache_dir=cache_dir),
        )
        self._model_lock = threading.Lock()
        self._graph_variant: GraphVariant | None = None  # e.g. the int8 graph of fastpath.with_precision
        self._probe: dict[str, torch.Tensor] | None = None
        self._weight_files = self._lazy_weights() if self.runner.runs_graph and self.LAZY_TORCH else None
        self._model: torch.nn.Module | None = None
        self._lazy_loaded: tuple[torch.nn.Module, tuple] | None = None  # (model, its fingerprint when loaded)
        if self._weight_files is None:
            self._model = self._load_model()
        self.backend_info = self.runner.info(self, reason)
        self.load_seconds = time.perf_counter() - started
        self.num_layers = int(getattr(self._backbone_config(), "num_hidden_layers", 0) or 0)

    # --- the torch model, loaded when first needed on onnx --------------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        """The torch model (shared through MODEL_CACHE); on an onnx embedder it loads on first use."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    model = self._load_model()
                    self._lazy_loaded = (model, weights_fingerprint(model))
                    self._model = model
        return self._model

    @model.setter
    def model(self, value: torch.nn.Module) -> None:
        self._model = value

    @property
    def backend(self) -> str:
        """'torch' or 'onnx': what runs the transformer body (the runner chosen when the model loaded)."""
        return self.runner.name

    @property
    def torch_loaded(self) -> bool:
        """Whether this object holds torch weights now (an onnx embedder loads them only when needed)."""
        return self._model is not None

    @property
    def graph_is_cache_entry(self) -> bool:
        """Whether this model's onnx session is its own model-cache entry (loaded from its files; the torch weights
        load only when needed) rather than a session next to cached torch weights."""
        return self._weight_files is not None

    @property
    def weights_note(self) -> str:
        """How the weights are held and the arithmetic runs, in words (recorded with corpus stores)."""
        return describe_weights(self.weights_dtype, self.dtype)

    def _lazy_weights(self) -> WeightFiles | None:
        """The files an onnx graph of this model is keyed by (None: a hub model, loaded into torch up front)."""
        from pathlib import Path

        if not self.source.is_local:
            return None
        settings = f"{type(self).__name__}|{self.weights_dtype}|{self.dtype}|{self.source.revision}"
        identity = files_identity(Path(self.source.path), settings)
        if identity is None:
            return None
        return WeightFiles(
            identity,
            type(self).__name__,
            self._load_config(),
            self._load_uncached,
            folder=self.source.path,
            shown=self.source.name,
            rounding=rounding_words(self.dtype, self.weights_dtype),
        )

    def _graph_target(self) -> torch.nn.Module | WeightFiles:
        """What the onnx graph is keyed by: the weight files while the torch model is not loaded or still holds
        exactly what it loaded from them; else the weights the model holds now (swapped or changed in place)."""
        files, model = self._weight_files, self._model
        if files is not None and (
            model is None
            or (self._lazy_loaded is not None
                and model is self._lazy_loaded[0]
                and weights_fingerprint(model) == self._lazy_loaded[1])
        ):  # fmt: skip
            return files
        return self._backbone()

    def _backbone_config(self):
        """The backbone's transformers config, without loading torch weights."""
        if self._model is None and self._weight_files is not None:
            return self._weight_files.config
        return self._backbone().config

    # --- subclass hooks -------------------------------------------------------------------------------------------
    def _load_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def _load_config(self):
        """The model's config (LAZY_TORCH subclasses)."""
        raise NotImplementedError

    def _load_uncached(self) -> torch.nn.Module:
        """A private torch copy of the backbone for an export (LAZY_TORCH subclasses): dropped afterwards."""
        raise NotImplementedError

    def _backbone(self) -> torch.nn.Module:
        """The transformers model whose hidden states are pooled."""
        return self.model

    @property
    def pooling_name(self) -> str:
        return getattr(self, "pooling_method", self.DEFAULT_POOLING_METHOD)

    def _probe_batch(self) -> dict[str, torch.Tensor]:
        """Two padded texts of different lengths in this tokenizer's format: the export's example input."""
        if self._probe is None:
            self._probe = self._pad(self._tokenize(list(PROBE_TEXTS), len(PROBE_TEXTS), 64, {}), {})
        return self._probe

    def _onnx_graph(self, kind: str) -> tuple[OnnxGraph, BackendInfo]:
        """The ONNX Runtime session of the backbone as it is now (weights swapped or reloaded since construction get
        their own graph): the last hidden state alone for plain encodes, every layer's for ``all_layers``."""
        return load_graph(self._graph_target(), kind, self._probe_batch(), self._graph_variant)

    # --- FlagEmbedding API ----------------------------------------------------------------------------------------
    def encode_queries(
        self,
        queries: list[str] | str,
        batch_size: int | None = None,
        max_length: int | None = None,
        convert_to_numpy: bool | None = None,
        **kwargs: Any,
    ):
        """Encode queries with the query instruction and ``query_max_length`` (FlagEmbedding's encode_queries)."""
        return self.encode(
            queries,
            batch_size=self.batch_size if batch_size is None else batch_size,
            max_length=self.query_max_length if max_length is None else max_length,
            convert_to_numpy=self.convert_to_numpy if convert_to_numpy is None else convert_to_numpy,
            instruction=self.query_instruction_for_retrieval,
            instruction_format=self.query_instruction_format,
            **kwargs,
        )

    def encode_corpus(
        self,
        corpus: list[str] | str,
        batch_size: int | None = None,
        max_length: int | None = None,
        convert_to_numpy: bool | None = None,
        **kwargs: Any,
    ):
        """Encode passages with the optional passage instruction and ``passage_max_length``."""
        return self.encode(
            corpus,
            batch_size=self.batch_size if batch_size is None else batch_size,
            max_length=self.passage_max_length if max_length is None else max_length,
            convert_to_numpy=self.convert_to_numpy if convert_to_numpy is None else convert_to_numpy,
            instruction=self.kwargs.get("passage_instruction_for_retrieval"),
            instruction_format=self.kwargs.get("passage_instruction_format", "{}{}"),
            **kwargs,
        )

    def encode(  # noqa: PLR0917 - FlagEmbedding's signature
        self,
        sentences: list[str] | str,
        batch_size: int | None = None,
        max_length: int | None = None,
        convert_to_numpy: bool | None = None,
        instruction: str | None = None,
        instruction_format: str | None = None,
        **kwargs: Any,
    ):
        """Embeddings (N, D), or (D,) for a single string; numpy in the model dtype, or a tensor on the device.

        ``max_length`` defaults to ``passage_max_length``. Extra kwargs go into every tokenizer and pad call (e.g.
        ``pad_to_multiple_of=8``), as in FlagEmbedding. An empty string is encoded as the tokenizer's special tokens
        alone (e.g. ``[CLS] [SEP]``); a text that tokenizes to no token at all raises InvalidInputError.
        """
        texts, single = as_text_list(sentences)
        texts = self._apply_instruction(texts, instruction, instruction_format)
        convert = self.convert_to_numpy if convert_to_numpy is None else bool(convert_to_numpy)
        run = self._run(
            texts,
            batch_size=self.batch_size if batch_size is None else batch_size,
            max_length=self.passage_max_length if max_length is None else max_length,
            tokenizer_kwargs=kwargs,
            all_layers=False,
        )
        embeddings = run.outputs["dense"]
        embeddings = self._to_numpy(embeddings) if convert else embeddings
        return embeddings[0] if single else embeddings

    # --- explorer extras ------------------------------------------------------------------------------------------
    def encode_detailed(
        self,
        texts: list[str],
        *,
        mode: str = "passage",
        max_length: int | None = None,
        all_layers: bool = False,
        instruction: str | None = None,
        batch_size: int | None = None,
    ) -> EncodeResult:
        """Embeddings as ``encode_queries`` ('query'), ``encode_corpus`` ('passage') or ``encode`` ('raw') give them,
        plus tokens, truncation flags, timings and, with ``all_layers``, every layer's pooled embedding from the same
        forward pass. ``instruction`` replaces the mode's default instruction."""
        items, _ = as_text_list(texts, "texts")
        instruction_text, instruction_format, default_length = self._mode_settings(mode)
        if instruction is not None:
            instruction_text = instruction
        items = self._apply_instruction(items, instruction_text, instruction_format)
        max_length = default_length if max_length is None else max_length
        run = self._run(
            items,
            batch_size=self.batch_size if batch_size is None else batch_size,
            max_length=max_length,
            tokenizer_kwargs={},
            all_layers=all_layers,
            forward=self._detailed_forward(),
        )
        return self._detailed_result(items, run)

    def _detailed_forward(self) -> Callable[[dict, bool], dict[str, Any]] | None:
        """The batch function encode_detailed uses (None: the plain dense one)."""
        return None

    def _mode_settings(self, mode: str) -> tuple[str | None, str, int]:
        if mode == "query":
            return self.query_instruction_for_retrieval, self.query_instruction_format, self.query_max_length
        if mode == "passage":
            return (
                self.kwargs.get("passage_instruction_for_retrieval"),
                self.kwargs.get("passage_instruction_format", "{}{}"),
                self.passage_max_length,
            )
        if mode == "raw":
            return None, "{}{}", self.passage_max_length
        raise InvalidInputError(f"mode must be one of {', '.join(DETAILED_MODES)}, not {mode!r}.")

    def _detailed_result(self, texts: list[str], run: _Run) -> EncodeResult:
        token_ids = run.outputs["input_ids"]
        with self._tokenizer_lock:
            tokens = [self.tokenizer.convert_ids_to_tokens(ids) for ids in token_ids]
            full_lengths = [len(ids) for ids in self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
        counts = [len(ids) for ids in token_ids]
        layers = run.outputs.get("layers")
        return EncodeResult(
            embeddings=self._to_float32(run.outputs["dense"]),
            layer_embeddings=None if layers is None else self._to_float32(layers).transpose(1, 0, 2).copy(),
            input_texts=texts,
            tokens=tokens,
            token_counts=counts,
            truncated=[full > count for full, count in zip(full_lengths, counts, strict=True)],
            timings=Timings(self.load_seconds, run.seconds, len(texts), sum(counts)),
            **self._detailed_extras(run),
        )

    def _detailed_extras(self, run: _Run) -> dict[str, Any]:
        return {}

    # --- the shared encode loop -----------------------------------------------------------------------------------
    def _apply_instruction(self, texts: list[str], instruction: str | None, instruction_format: str | None):
        if instruction is None:
            return texts
        if not isinstance(instruction, str):
            raise InvalidInputError("The instruction must be a string or None.")
        fmt = "{}{}" if instruction_format is None else instruction_format
        try:
            return [get_detailed_instruct(fmt, instruction, text) for text in texts]
        except (IndexError, KeyError, ValueError) as error:
            raise InvalidInputError(
                f"The instruction format {fmt!r} must contain exactly two '{{}}' placeholders "
                "(instruction, then text)."
            ) from error

    def _tokenize(self, texts: list[str], batch_size: int, max_length: int, tokenizer_kwargs: dict) -> list[dict]:
        """Per-example features, tokenized in input order in chunks of ``batch_size`` (no padding yet)."""
        features: list[dict] = []
        with self._tokenizer_lock:
            for start in range(0, len(texts), batch_size):
                chunk = texts[start : start + batch_size]
                encoded = self.tokenizer(chunk, truncation=True, max_length=max_length, **tokenizer_kwargs)
                features.extend({key: encoded[key][i] for key in encoded} for i in range(len(chunk)))
        for index, feature in enumerate(features):
            if not feature["input_ids"]:
                raise InvalidInputError(
                    f"Text {index} tokenizes to no tokens at all with this tokenizer (it adds no special tokens "
                    "to an empty string); give it some text."
                )
        return features

    def _ensure_fits(self, token_counts: list[int], max_length: int) -> None:
        """InvalidInputError before any forward pass when a text runs past the model's position table."""
        ensure_inputs_fit(self._backbone_config(), token_counts, model_name=self.model_name, max_length=max_length)

    def _pad(self, features: list[dict], tokenizer_kwargs: dict) -> dict[str, torch.Tensor]:
        with self._tokenizer_lock:
            batch = self.tokenizer.pad(features, padding=True, return_tensors="pt", **tokenizer_kwargs)
        return {key: value.to(self.device) for key, value in batch.items()}

    def _postprocess(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cut to ``truncate_dim`` first, then L2-normalise (FlagEmbedding's order)."""
        if self.truncate_dim is not None:
            embeddings = embeddings[..., : self.truncate_dim]
        if self.normalize_embeddings:
            embeddings = F.normalize(embeddings, dim=-1)
        return embeddings

    def _forward(self, batch: dict[str, torch.Tensor], all_layers: bool) -> dict[str, Any]:
        """One padded batch → batch-first outputs: 'dense' (B, D) and, with all_layers, 'layers' (B, L+1, D)."""
        last_hidden_state, layers = self.runner.hidden_states(self, batch, all_layers)
        mask = batch["attention_mask"]
        outputs: dict[str, Any] = {"dense": self._postprocess(pool(last_hidden_state, mask, self.pooling_name))}
        if layers is not None:
            outputs["layers"] = torch.stack(
                [self._postprocess(pool(state, mask, self.pooling_name)) for state in layers], dim=1
            )
        return outputs

    def _run(
        self,
        texts: list[str],
        *,
        batch_size: int,
        max_length: int,
        tokenizer_kwargs: dict,
        all_layers: bool,
        forward: Callable[[dict, bool], dict[str, Any]] | None = None,
    ) -> _Run:
        """FlagEmbedding's sorted, batched loop; the batch shrinks by 3/4 only when memory runs out."""
        batch_size = _positive_int(batch_size, "batch_size")
        max_length = _positive_int(max_length, "max_length")
        forward = forward or self._forward
        started = time.perf_counter()
        features = self._tokenize(texts, batch_size, max_length, tokenizer_kwargs)
        self._ensure_fits([len(feature["input_ids"]) for feature in features], max_length)
        order = np.argsort([-len(feature["input_ids"]) for feature in features])
        ordered = [features[i] for i in order]
        batches = shrink_on_out_of_memory(
            lambda size: self._run_batches(
                ordered, batch_size=size, tokenizer_kwargs=tokenizer_kwargs, all_layers=all_layers, forward=forward
            ),
            batch_size,
            device=self.device,
            what="Encoding",
            unit="text",
        )
        inverse = np.argsort(order)
        outputs = _merge(batches, inverse)
        outputs["input_ids"] = [list(features[i]["input_ids"]) for i in range(len(features))]
        return _Run(outputs, time.perf_counter() - started)

    def _run_batches(self, ordered, *, batch_size, tokenizer_kwargs, all_layers, forward):
        results = []
        start = 0
        with torch.inference_mode():
            while start < len(ordered):  # longest texts first (``_run`` sorts them)
                size = self.runner.batch_size(len(ordered[start]["input_ids"]), batch_size)
                batch = self._pad(ordered[start : start + size], tokenizer_kwargs)
                results.append(forward(batch, all_layers))
                start += size
        return results

    # --- conversions ----------------------------------------------------------------------------------------------
    def _to_numpy(self, tensor: torch.Tensor) -> np.ndarray:
        """FlagEmbedding's conversion: model dtype kept, only bf16 upcast (numpy has no bf16)."""
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return tensor.cpu().numpy()

    @staticmethod
    def _to_float32(tensor: torch.Tensor) -> np.ndarray:
        return tensor.float().cpu().numpy()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.model_name!r}, device={self.device}, dtype={str(self.dtype)[6:]}, "
            f"layers={self.num_layers}, backend={self.backend})"
        )


class _Run:
    """Outputs of one encode loop, back in input order, and how long it took."""

    def __init__(self, outputs: dict[str, Any], seconds: float) -> None:
        self.outputs = outputs
        self.seconds = seconds


def _merge(batches: Sequence[dict[str, Any]], inverse: np.ndarray) -> dict[str, Any]:
    """Concatenate batch outputs (tensors along dim 0, lists by extension) and undo the length sort."""
    merged: dict[str, Any] = {}
    for key in batches[0]:
        parts = [batch[key] for batch in batches]
        if isinstance(parts[0], torch.Tensor):
            joined = torch.cat(parts, dim=0)
            merged[key] = joined[torch.as_tensor(inverse, device=joined.device)]
        else:
            flat = [item for part in parts for item in part]
            merged[key] = [flat[i] for i in inverse]
    return merged
