"""BGEM3FlagModel: BGE-M3's dense, lexical (sparse) and multi-vector (ColBERT) outputs, as FlagEmbedding 1.4."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from flagdemo.errors import EmptyInputError, InvalidInputError, MissingModelFilesError
from flagdemo.models.cache import MODEL_CACHE
from flagdemo.models.embedders.base import BaseEmbedder, as_text_list, pool
from flagdemo.models.sources import instantiate_pretrained, model_file, rounding_words

HEAD_FILES = ("colbert_linear.pt", "sparse_linear.pt")
SCORE_MODES = ("colbert", "sparse", "dense", "sparse+dense", "colbert+sparse+dense")


class M3Model(torch.nn.Module):
    """The XLM-R backbone with BGE-M3's two heads: ``colbert_linear`` (token vectors), ``sparse_linear`` (weights)."""

    def __init__(
        self, backbone: torch.nn.Module, colbert_linear: torch.nn.Linear, sparse_linear: torch.nn.Linear
    ) -> None:
        super().__init__()
        self.model = backbone
        self.colbert_linear = colbert_linear
        self.sparse_linear = sparse_linear
        self.config = backbone.config


class BGEM3FlagModel(BaseEmbedder):
    """BGE-M3 as FlagEmbedding 1.4's ``M3Embedder``.

    ``encode*`` return ``{"dense_vecs", "lexical_weights", "colbert_vecs"}`` (choose with ``return_dense`` /
    ``return_sparse`` / ``return_colbert_vecs``): lexical weights map token-id strings to numpy scalars (the max
    ReLU weight per id, special tokens cls/eos/pad/unk dropped); ColBERT keeps every token after CLS including
    ``</s>``. ``compute_score`` gives all five modes. Unlike FlagEmbedding, missing head files raise
    MissingModelFilesError instead of silently using random heads.
    """

    DEFAULT_POOLING_METHOD = "cls"
    SUPPORTS_ONNX = True

    def __init__(  # noqa: PLR0917 - positional order is FlagEmbedding's public API
        self,
        model_name_or_path: str,
        normalize_embeddings: bool = True,
        use_fp16: bool = True,
        use_bf16: bool = False,
        query_instruction_for_retrieval: str | None = None,
        query_instruction_format: str = "{}{}",
        devices: str | int | list[str] | list[int] | None = None,
        pooling_method: str = "cls",
        trust_remote_code: bool = False,
        cache_dir: str | None = None,
        colbert_dim: int = -1,
        batch_size: int = 256,
        query_max_length: int = 512,
        passage_max_length: int = 512,
        return_dense: bool = True,
        return_sparse: bool = False,
        return_colbert_vecs: bool = False,
        truncate_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        if pooling_method not in ("cls", "mean", "last_token"):
            raise InvalidInputError(f"BGE-M3 pools with 'cls', 'mean' or 'last_token', not {pooling_method!r}.")
        self.pooling_method = pooling_method
        self.colbert_dim = colbert_dim
        kwargs.pop("convert_to_numpy", None)  # M3 always returns numpy / Python objects
        super().__init__(
            model_name_or_path,
            normalize_embeddings=normalize_embeddings,
            use_fp16=use_fp16,
            use_bf16=use_bf16,
            query_instruction_for_retrieval=query_instruction_for_retrieval,
            query_instruction_format=query_instruction_format,
            devices=devices,
            batch_size=batch_size,
            query_max_length=query_max_length,
            passage_max_length=passage_max_length,
            truncate_dim=truncate_dim,
            trust_remote_code=trust_remote_code,
            cache_dir=cache_dir,
            return_dense=return_dense,
            return_sparse=return_sparse,
            return_colbert_vecs=return_colbert_vecs,
            **kwargs,
        )
        self.unused_token_ids = self._unused_token_ids()

    # --- loading --------------------------------------------------------------------------------------------------
    def _load_model(self) -> torch.nn.Module:
        key = (
            self.source.path,
            self.source.revision,
            "BGEM3FlagModel",
            str(self.device),
            str(self.dtype),
            f"colbert_dim={self.colbert_dim}",
            f"weights={self.weights_dtype}",
        )
        rounding = rounding_words(self.dtype, self.weights_dtype)
        describe = f"{self.model_name} (BGE-M3, {self.dtype}{rounding}, {self.device})".replace("torch.", "")
        return MODEL_CACHE.get_or_load(key, self._build_m3, describe=describe)

    def _build_m3(self) -> M3Model:
        head_paths = {name: model_file(self.source, name, cache_dir=self.cache_dir) for name in HEAD_FILES}
        missing = [name for name, path in head_paths.items() if path is None]
        if missing:
            raise MissingModelFilesError(
                f"{self.model_name!r} has no {' and '.join(missing)}, so BGE-M3's "
                f"{'ColBERT and sparse heads' if len(missing) == 2 else 'head'} cannot be loaded. Use a full BGE-M3 "
                "checkpoint, or load a plain encoder with FlagModel."
            )
        from transformers import AutoModel

        backbone = instantiate_pretrained(
            self.source,
            AutoModel,
            dtype=self.weights_dtype,
            trust_remote_code=self.trust_remote_code,
            cache_dir=self.cache_dir,
        )
        hidden = backbone.config.hidden_size
        colbert_out = hidden if self.colbert_dim <= 0 else self.colbert_dim
        colbert_linear = torch.nn.Linear(hidden, colbert_out, dtype=self.weights_dtype)
        sparse_linear = torch.nn.Linear(hidden, 1, dtype=self.weights_dtype)
        for head, name in ((colbert_linear, "colbert_linear.pt"), (sparse_linear, "sparse_linear.pt")):
            try:
                head.load_state_dict(torch.load(head_paths[name], map_location="cpu", weights_only=True))
            except Exception as error:
                raise MissingModelFilesError(
                    f"{name} of {self.model_name!r} could not be loaded ({error}); the file is damaged or does not "
                    "match the model size."
                ) from error
        return M3Model(backbone, colbert_linear, sparse_linear).to(device=self.device, dtype=self.dtype).eval()

    def _backbone(self) -> torch.nn.Module:
        return self.model.model

    def _unused_token_ids(self) -> set[int]:
        """Ids dropped from lexical weights: cls, eos, pad and unk as listed in ``special_tokens_map``."""
        unused: set[int] = set()
        special = self.tokenizer.special_tokens_map
        for name in ("cls_token", "eos_token", "pad_token", "unk_token"):
            if name in special:
                unused.add(self.tokenizer.convert_tokens_to_ids(special[name]))
        return unused

    # --- encode ---------------------------------------------------------------------------------------------------
    def encode_queries(  # noqa: PLR0917 - FlagEmbedding's signature
        self,
        queries: list[str] | str,
        batch_size: int | None = None,
        max_length: int | None = None,
        return_dense: bool | None = None,
        return_sparse: bool | None = None,
        return_colbert_vecs: bool | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """``encode`` with the query instruction and ``query_max_length``."""
        kwargs.pop("convert_to_numpy", None)
        return self.encode(
            queries,
            batch_size=batch_size,
            max_length=self.query_max_length if max_length is None else max_length,
            return_dense=return_dense,
            return_sparse=return_sparse,
            return_colbert_vecs=return_colbert_vecs,
            instruction=self.query_instruction_for_retrieval,
            instruction_format=self.query_instruction_format,
            **kwargs,
        )

    def encode_corpus(  # noqa: PLR0917 - FlagEmbedding's signature
        self,
        corpus: list[str] | str,
        batch_size: int | None = None,
        max_length: int | None = None,
        return_dense: bool | None = None,
        return_sparse: bool | None = None,
        return_colbert_vecs: bool | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """``encode`` with the optional passage instruction and ``passage_max_length``."""
        kwargs.pop("convert_to_numpy", None)
        return self.encode(
            corpus,
            batch_size=batch_size,
            max_length=self.passage_max_length if max_length is None else max_length,
            return_dense=return_dense,
            return_sparse=return_sparse,
            return_colbert_vecs=return_colbert_vecs,
            instruction=self.kwargs.get("passage_instruction_for_retrieval"),
            instruction_format=self.kwargs.get("passage_instruction_format", "{}{}"),
            **kwargs,
        )

    def encode(  # noqa: PLR0917 - FlagEmbedding's signature
        self,
        sentences: list[str] | str,
        batch_size: int | None = None,
        max_length: int | None = None,
        return_dense: bool | None = None,
        return_sparse: bool | None = None,
        return_colbert_vecs: bool | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """``{"dense_vecs": (N, D) or (D,), "lexical_weights": [dict] or dict, "colbert_vecs": [array] or array}``,
        each None when not requested. An empty string encodes as ``<s></s>``: its lexical weights are empty."""
        kwargs.pop("convert_to_numpy", None)
        instruction = kwargs.pop("instruction", None)
        instruction_format = kwargs.pop("instruction_format", None)
        want = {
            "dense": self.return_dense if return_dense is None else bool(return_dense),
            "sparse": self.return_sparse if return_sparse is None else bool(return_sparse),
            "colbert": self.return_colbert_vecs if return_colbert_vecs is None else bool(return_colbert_vecs),
        }
        if not any(want.values()):
            raise InvalidInputError("Choose at least one of return_dense, return_sparse or return_colbert_vecs.")
        texts, single = as_text_list(sentences)
        texts = self._apply_instruction(texts, instruction, instruction_format)
        run = self._run(
            texts,
            batch_size=self.batch_size if batch_size is None else batch_size,
            max_length=self.passage_max_length if max_length is None else max_length,
            tokenizer_kwargs=kwargs,
            all_layers=False,
            forward=lambda batch, all_layers: self._m3_forward(batch, want, all_layers),
        )
        results: dict[str, Any] = {
            "dense_vecs": self._to_numpy(run.outputs["dense"]) if want["dense"] else None,
            "lexical_weights": run.outputs["lexical_weights"] if want["sparse"] else None,
            "colbert_vecs": run.outputs["colbert_vecs"] if want["colbert"] else None,
        }
        if single:
            results = {key: None if value is None else value[0] for key, value in results.items()}
        return results

    def _m3_forward(self, batch: dict[str, torch.Tensor], want: dict[str, bool], all_layers: bool) -> dict[str, Any]:
        last_hidden_state, layers = self.runner.hidden_states(self, batch, all_layers)
        mask = batch["attention_mask"]
        outputs: dict[str, Any] = {}
        if want["dense"]:
            outputs["dense"] = self._postprocess(pool(last_hidden_state, mask, self.pooling_method))
        if layers is not None:
            outputs["layers"] = torch.stack(
                [self._postprocess(pool(state, mask, self.pooling_method)) for state in layers], dim=1
            )
        if want["sparse"]:
            token_weights = torch.relu(self.model.sparse_linear(last_hidden_state)).squeeze(-1)
            outputs["lexical_weights"] = [
                self._token_weights_to_dict(weights, ids)
                for weights, ids in zip(
                    self._to_numpy(token_weights), batch["input_ids"].cpu().numpy().tolist(), strict=True
                )
            ]
        if want["colbert"]:
            colbert = self._colbert_vectors(last_hidden_state, mask)
            if self.truncate_dim is not None:
                colbert = colbert[..., : self.truncate_dim]
            if self.normalize_embeddings:
                colbert = F.normalize(colbert, dim=-1)
            lengths = mask.sum(dim=1).cpu().numpy()
            outputs["colbert_vecs"] = [
                vectors[: length - 1] for vectors, length in zip(self._to_numpy(colbert), lengths, strict=True)
            ]
        return outputs

    def _colbert_vectors(self, last_hidden_state: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token vectors after CLS; padding positions are zeroed."""
        vectors = self.model.colbert_linear(last_hidden_state[:, 1:])
        return vectors * mask[:, 1:][:, :, None].float()

    def _token_weights_to_dict(self, weights: np.ndarray, input_ids: list[int]) -> defaultdict:
        """Max weight per token id (as a string key), positive weights only, special ids dropped."""
        result: defaultdict = defaultdict(int)
        for weight, token_id in zip(weights, input_ids, strict=True):
            if token_id not in self.unused_token_ids and weight > 0:
                key = str(token_id)
                result[key] = max(result[key], weight)
        return result

    def _detailed_forward(self):
        """encode_detailed computes all three outputs, so the views get lexical weights and ColBERT vectors too."""
        want = {"dense": True, "sparse": True, "colbert": True}
        return lambda batch, all_layers: self._m3_forward(batch, want, all_layers)

    def _detailed_extras(self, run) -> dict[str, Any]:
        lexical = [
            {
                self.tokenizer.convert_ids_to_tokens(int(token_id)): float(weight)
                for token_id, weight in weights.items()
            }
            for weights in run.outputs["lexical_weights"]
        ]
        colbert = [np.asarray(vectors, dtype=np.float32) for vectors in run.outputs["colbert_vecs"]]
        return {"lexical_weights": lexical, "colbert_vecs": colbert}

    # --- helpers from FlagEmbedding -------------------------------------------------------------------------------
    def convert_id_to_token(self, lexical_weights: dict | list[dict]) -> dict | list[dict]:
        """Replace id keys by decoded token text; one dict in, one dict out (as FlagEmbedding)."""
        items = [lexical_weights] if isinstance(lexical_weights, dict) else lexical_weights
        converted = [
            {self.tokenizer.decode([int(token_id)]): weight for token_id, weight in item.items()} for item in items
        ]
        return converted[0] if len(converted) == 1 else converted

    def compute_lexical_matching_score(
        self, lexical_weights_1: dict | list[dict], lexical_weights_2: dict | list[dict]
    ) -> float | np.ndarray:
        """Sum of w1·w2 over shared tokens: dict×dict → number, list×list → (len1, len2) matrix."""

        def single(first: dict, second: dict):
            score = 0
            for token, weight in first.items():
                if token in second:
                    score += weight * second[token]
            return score

        if isinstance(lexical_weights_1, dict) and isinstance(lexical_weights_2, dict):
            return single(lexical_weights_1, lexical_weights_2)
        if isinstance(lexical_weights_1, list) and isinstance(lexical_weights_2, list):
            return np.array([[single(first, second) for second in lexical_weights_2] for first in lexical_weights_1])
        raise InvalidInputError("Pass two lexical-weight dicts, or two lists of them.")

    def colbert_score(self, q_reps: np.ndarray, p_reps: np.ndarray) -> torch.Tensor:
        """ColBERT late interaction for ONE pair: mean over query vectors of the best passage match (0-d tensor)."""
        q_reps, p_reps = torch.from_numpy(np.asarray(q_reps)), torch.from_numpy(np.asarray(p_reps))
        token_scores = torch.einsum("in,jn->ij", q_reps, p_reps)
        scores, _ = token_scores.max(-1)
        return torch.sum(scores) / q_reps.size(0)

    def compute_score(
        self,
        sentence_pairs: list[tuple[str, str]] | tuple[str, str],
        batch_size: int | None = None,
        max_query_length: int | None = None,
        max_passage_length: int | None = None,
        weights_for_different_modes: list[float] | None = None,
        **kwargs: Any,
    ) -> dict[str, list[float] | float]:
        """Scores of every pair in five modes: dense, sparse, colbert, and the weighted means 'sparse+dense' and
        'colbert+sparse+dense' with ``weights_for_different_modes = [dense, sparse, colbert]`` (default [1, 1, 1]).
        One pair in → one float per mode. ``truncate_dim`` does not apply here (as in FlagEmbedding)."""
        pairs, single = _as_pairs(sentence_pairs)
        if weights_for_different_modes is not None:
            if len(weights_for_different_modes) != 3:
                raise InvalidInputError("weights_for_different_modes needs three numbers: [dense, sparse, colbert].")
            weights = [float(weight) for weight in weights_for_different_modes]
            weight_sum = sum(weights_for_different_modes)
        else:
            weights, weight_sum = [1.0, 1.0, 1.0], 3
        batch_size = self.batch_size if batch_size is None else batch_size
        max_query_length = self.query_max_length if max_query_length is None else max_query_length
        max_passage_length = self.passage_max_length if max_passage_length is None else max_passage_length
        scores: dict[str, list[float]] = {mode: [] for mode in SCORE_MODES}
        with torch.inference_mode():
            for start in range(0, len(pairs), batch_size):
                chunk = pairs[start : start + batch_size]
                queries = self._score_inputs([pair[0] for pair in chunk], max_query_length, kwargs)
                passages = self._score_inputs([pair[1] for pair in chunk], max_passage_length, kwargs)
                q_dense, q_sparse, q_colbert = self._score_representations(queries)
                p_dense, p_sparse, p_colbert = self._score_representations(passages)
                dense = (q_dense * p_dense).sum(-1).float()
                sparse = (q_sparse * p_sparse).sum(-1).float()
                token_scores = torch.einsum("bin,bjn->bij", q_colbert, p_colbert)
                colbert = token_scores.max(-1).values.sum(1) / queries["attention_mask"][:, 1:].sum(-1)
                colbert = colbert.float()
                scores["colbert"].extend(colbert.cpu().tolist())
                scores["sparse"].extend(sparse.cpu().tolist())
                scores["dense"].extend(dense.cpu().tolist())
                scores["sparse+dense"].extend(
                    ((sparse * weights[1] + dense * weights[0]) / (weights[1] + weights[0])).cpu().tolist()
                )
                scores["colbert+sparse+dense"].extend(
                    ((colbert * weights[2] + sparse * weights[1] + dense * weights[0]) / weight_sum).cpu().tolist()
                )
        if single:
            return {mode: values[0] for mode, values in scores.items()}
        return scores

    def _score_inputs(self, texts: list[str], max_length: int, kwargs: dict) -> dict[str, torch.Tensor]:
        with self._tokenizer_lock:
            encoded = self.tokenizer(
                texts,
                max_length=max_length,
                padding=True,
                return_token_type_ids=False,
                truncation=True,
                return_tensors="pt",
                **kwargs,
            )
        self._ensure_fits(encoded["attention_mask"].sum(dim=1).tolist(), max_length)
        return {key: value.to(self.device) for key, value in encoded.items()}

    def _score_representations(self, inputs: dict[str, torch.Tensor]):
        """(dense, full-vocabulary sparse, ColBERT) for compute_score: no truncate_dim, padding vectors zero."""
        last_hidden_state, _ = self.runner.hidden_states(self, inputs, False)
        mask = inputs["attention_mask"]
        dense = pool(last_hidden_state, mask, self.pooling_method)
        token_weights = torch.relu(self.model.sparse_linear(last_hidden_state)).squeeze(-1)
        sparse = torch.zeros(
            inputs["input_ids"].size(0), self.model.config.vocab_size, dtype=token_weights.dtype, device=self.device
        )
        sparse = sparse.scatter_reduce(dim=-1, index=inputs["input_ids"], src=token_weights, reduce="amax")
        unused = [
            self.tokenizer.cls_token_id,
            self.tokenizer.eos_token_id,
            self.tokenizer.pad_token_id,
            self.tokenizer.unk_token_id,
        ]
        sparse[:, [token_id for token_id in unused if token_id is not None]] *= 0.0
        colbert = self._colbert_vectors(last_hidden_state, mask)
        if self.normalize_embeddings:
            dense = F.normalize(dense, dim=-1)
            colbert = F.normalize(colbert, dim=-1)
        return dense, sparse, colbert


def _as_pairs(sentence_pairs: Any) -> tuple[list[tuple[str, str]], bool]:
    """(pairs, was a single pair); typed errors for anything that is not (query, passage) strings."""
    if not isinstance(sentence_pairs, (list, tuple)):
        raise InvalidInputError(
            f"sentence_pairs must be a (query, passage) pair or a list of them, not {type(sentence_pairs).__name__}."
        )
    if not sentence_pairs:
        raise EmptyInputError("sentence_pairs is an empty list; pass at least one (query, passage) pair.")
    single = isinstance(sentence_pairs[0], str)
    pairs = [sentence_pairs] if single else list(sentence_pairs)
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(text, str) for text in pair)):
            raise InvalidInputError(f"Pair {index} must be two strings (query, passage), not {pair!r}.")
    return [(pair[0], pair[1]) for pair in pairs], single
