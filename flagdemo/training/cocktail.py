"""LM-Cocktail: merge models by a weighted sum of their parameters, with weights given or derived from a few examples.

``mix_models`` and ``mix_models_with_data`` take the arguments of the ``LM_Cocktail`` package (0.0.4) and compute
the same merged tensors and the same data-derived weights (proven by golden cases run with LM_Cocktail itself, see
``golden/make_golden_cocktail.py``). What they do beyond it, on purpose:

- weights must sum to 1 within 1e-3 on both sides (LM_Cocktail checks only ``sum - 1 <= 1e-3``, so 0.5 passes);
- negatives are sampled with ``random.Random(seed)`` (LM_Cocktail uses the unseeded global ``random``; seeding it
  with the same number gives the same draws), and too few negatives is a sentence, not a crash;
- ``reranker`` works with data too: FlagEmbedding's grouped cross-entropy over (query, positive, negatives);
- saving keeps the first model's own pooling and sentence-transformers files (LM_Cocktail writes CLS pooling for
  every encoder, which turns a mean-pooled model such as all-MiniLM-L6-v2 into a different model);
- the weights are returned with the model (``model.cocktail_weights``) and saved in ``cocktail.json``.

Saving goes through ``checkpoint``; the trade-off curve the Cocktail tab draws is ``blend``'s.
"""

from __future__ import annotations

import json
import math
import numbers
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from flagdemo.errors import EmptyInputError, InvalidInputError
from flagdemo.models.positions import ensure_inputs_fit
from flagdemo.models.sources import ModelSource, instantiate_pretrained, load_tokenizer, resolve_source
from flagdemo.training.checkpoint import model_pooling, write_sentence_transformers_files

MODEL_TYPES = ("encoder", "decoder", "reranker")
WEIGHT_SUM_TOLERANCE = 1e-3
# LM_Cocktail scores query/passage similarity at this fixed temperature when it derives weights from data.
EMBEDDER_LOSS_TEMPERATURE = 0.05
DEFAULT_SEED = 42


def _auto_class(model_type: str) -> type:
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

    classes = {"encoder": AutoModel, "decoder": AutoModelForCausalLM, "reranker": AutoModelForSequenceClassification}
    if model_type not in classes:
        raise InvalidInputError(f"model_type must be one of {', '.join(MODEL_TYPES)}, not {model_type!r}.")
    return classes[model_type]


def _check_names(model_names_or_paths: Any) -> list[str]:
    if isinstance(model_names_or_paths, str) or not isinstance(model_names_or_paths, Sequence):
        raise InvalidInputError("model_names_or_paths must be a list of model names or folders.")
    names = list(model_names_or_paths)
    if not names:
        raise EmptyInputError("model_names_or_paths is empty; give at least one model to mix.")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"model_names_or_paths[{index}] must be a model name or folder, not {name!r}.")
    return names


def check_weights(weights: Any, count: int) -> list[float]:
    """The weights as floats: one finite number per model, summing to 1 within 1e-3 (either side)."""
    if isinstance(weights, str) or not isinstance(weights, Sequence):
        raise InvalidInputError("weights must be a list of numbers, one per model.")
    if len(weights) != count:
        raise InvalidInputError(f"There are {count} models but {len(weights)} weights; give one weight per model.")
    values = []
    for index, weight in enumerate(weights):
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
            raise InvalidInputError(f"weights[{index}] must be a finite number, not {weight!r}.")
        values.append(float(weight))
    total = sum(values)
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise InvalidInputError(
            f"The weights sum to {total:g}; they must sum to 1 (within {WEIGHT_SUM_TOLERANCE:g}), or the merged "
            "parameters are scaled away from every model's."
        )
    return values


def _source(name: str) -> ModelSource:
    return resolve_source(name)


def load_for_merging(source: ModelSource, model_type: str) -> torch.nn.Module:
    """The model in fp32 on CPU, uncached (merging overwrites its parameters), in eval mode."""
    return instantiate_pretrained(source, _auto_class(model_type), dtype=torch.float32).eval()


def merge_state_dicts(state_dicts: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> dict:
    """LM_Cocktail's merge: Σ wᵢ·paramᵢ per key of the first dict, accumulated in model order; int32/int64
    tensors (position ids and other index buffers) are copied, the last model's value winning."""
    merged: dict[str, torch.Tensor] = {}
    for state_dict, weight in zip(state_dicts, weights, strict=True):
        _accumulate(merged, state_dicts[0], state_dict, weight)
    return merged


def _accumulate(merged: dict, reference: Mapping, state_dict: Mapping, weight: float) -> None:
    for key, first in reference.items():
        param = state_dict.get(key)
        if param is None or param.shape != first.shape:
            found = "is missing" if param is None else f"has shape {tuple(param.shape)}"
            raise InvalidInputError(
                f"The models do not share one architecture: parameter {key!r} {found} in one model but has shape "
                f"{tuple(first.shape)} in the first. Only models fine-tuned from the same base can be mixed."
            )
        if param.dtype in (torch.int64, torch.int32):
            merged[key] = param
        elif key not in merged:
            merged[key] = weight * param
        else:
            merged[key] += weight * param


def _merge_loaded(sources: Sequence[ModelSource], model_type: str, weights: Sequence[float]) -> torch.nn.Module:
    """Load the models one at a time (the same sums in the same order as LM_Cocktail, two models in memory)."""
    base = load_for_merging(sources[0], model_type)
    reference = base.state_dict()
    merged: dict[str, torch.Tensor] = {}
    _accumulate(merged, reference, reference, weights[0])
    for source, weight in zip(sources[1:], weights[1:], strict=True):
        _accumulate(merged, reference, load_for_merging(source, model_type).state_dict(), weight)
    base.load_state_dict(merged)
    return base


def mix_models(
    model_names_or_paths: Sequence[str],
    model_type: str,
    weights: Sequence[float],
    output_path: str | None = None,
) -> torch.nn.Module:
    """The weighted sum of the models' parameters, as a model of the first model's transformers class.

    ``model_type``: 'encoder' (AutoModel), 'decoder' (AutoModelForCausalLM) or 'reranker'
    (AutoModelForSequenceClassification). ``model.cocktail_weights`` holds the weights; ``output_path`` saves the
    model, the first model's tokenizer and (encoders) its sentence-transformers configuration.
    """
    names = _check_names(model_names_or_paths)
    _auto_class(model_type)
    values = check_weights(weights, len(names))
    sources = [_source(name) for name in names]
    model = _merge_loaded(sources, model_type, values)
    return _finish(model, sources, model_type, values, output_path=output_path)


def _finish(model, sources, model_type, weights, *, output_path, tokenizer=None) -> torch.nn.Module:
    model.cocktail_weights = list(weights)
    model.cocktail_models = [source.name for source in sources]
    if output_path is not None:
        save_merged(model, sources[0], model_type, output_path, tokenizer=tokenizer)
    return model


# --- weights from data --------------------------------------------------------------------------------------------
def data_weights(losses: Sequence[float], temperature: float) -> list[float]:
    """softmax(−loss / temperature) in fp32, as LM_Cocktail computes it: lower loss, larger weight."""
    return torch.softmax(-torch.FloatTensor(list(losses)) / temperature, -1).numpy().tolist()


def mix_models_with_data(  # noqa: PLR0917 - LM_Cocktail's signature
    model_names_or_paths: Sequence[str],
    model_type: str,
    example_data: Sequence[Mapping[str, Any]] | None = None,
    temperature: float = 5.0,
    batch_size: int = 2,
    max_input_length: int = 2048,
    neg_number: int = 7,
    output_path: str | None = None,
    *,
    seed: int = DEFAULT_SEED,
    pooling_method: str = "cls",
    example_ata: Sequence[Mapping[str, Any]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.nn.Module:
    """Weights from the models' losses on a few examples (softmax of −loss / temperature), then ``mix_models``.

    Examples: encoder and reranker ``{"query", "pos": [...], "neg": [...]}`` (the first positive and ``neg_number``
    negatives sampled with ``seed``), decoder ``{"input", "output"}``. ``example_ata`` is LM_Cocktail 0.0.4's
    spelling of the data keyword. The encoder loss pools the CLS vector as LM_Cocktail does; pass
    ``pooling_method='mean'`` for mean-pooled models. ``progress(done, total)`` is called after each model's loss.
    ``model.cocktail_weights`` and ``model.cocktail_losses`` hold what was computed.
    """
    names = _check_names(model_names_or_paths)
    _auto_class(model_type)
    if example_data is not None and example_ata is not None:
        raise InvalidInputError("Pass the examples once: example_data (or LM_Cocktail's example_ata), not both.")
    examples = _check_examples(example_data if example_data is not None else example_ata, model_type)
    temperature = _positive_number(temperature, "temperature")
    batch_size = _positive_whole(batch_size, "batch_size")
    max_input_length = _positive_whole(max_input_length, "max_input_length")
    if pooling_method not in ("cls", "mean"):
        raise InvalidInputError(f"pooling_method must be 'cls' or 'mean', not {pooling_method!r}.")
    sources = [_source(name) for name in names]
    tokenizer = load_tokenizer(sources[0])
    if model_type == "decoder":
        batches = decoder_batches(examples, tokenizer, batch_size, max_input_length)
        loss_of = decoder_loss
    else:
        neg_number = _whole(neg_number, "neg_number")
        groups = sample_groups(examples, neg_number, seed)
        if model_type == "encoder":
            batches = encoder_batches(groups, tokenizer, batch_size, max_input_length)
            loss_of = lambda model, data: encoder_loss(model, data, pooling_method)  # noqa: E731
        else:
            batches = reranker_batches(groups, tokenizer, batch_size, max_input_length)
            loss_of = reranker_loss
    losses, state_dicts, base = [], [], None
    for index, source in enumerate(sources):
        model = load_for_merging(source, model_type)
        if index == 0:
            base = model
            _check_lengths(model, batches, source.name)
        losses.append(loss_of(model, batches))
        state_dicts.append(model.state_dict())
        if progress is not None:
            progress(index + 1, len(sources))
    weights = data_weights(losses, temperature)
    base.load_state_dict(merge_state_dicts(state_dicts, weights))
    base.cocktail_losses = losses
    return _finish(base, sources, model_type, weights, output_path=output_path, tokenizer=tokenizer)


def _positive_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive number, not {value!r}.")
    return float(value)


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{name} must be a whole number ≥ 0, not {value!r}.")
    return value


def _positive_whole(value: Any, name: str) -> int:
    if _whole(value, name) < 1:
        raise InvalidInputError(f"{name} must be at least 1, not {value!r}.")
    return value


def _check_examples(examples: Any, model_type: str) -> list[Mapping[str, Any]]:
    if examples is None or isinstance(examples, (str, Mapping)) or not isinstance(examples, Sequence):
        raise InvalidInputError("example_data must be a list of examples (dicts).")
    if not examples:
        raise EmptyInputError("example_data is empty; give at least one example.")
    fields = ("input", "output") if model_type == "decoder" else ("query", "pos", "neg")
    for index, example in enumerate(examples):
        if not isinstance(example, Mapping) or any(field not in example for field in fields):
            raise InvalidInputError(
                f"Example {index} must be a dict with the keys {', '.join(fields)} for model_type {model_type!r}."
            )
        if model_type == "decoder":
            if not all(isinstance(example[field], str) for field in fields):
                raise InvalidInputError(f"Example {index}: 'input' and 'output' must be strings.")
            continue
        if not isinstance(example["query"], str):
            raise InvalidInputError(f"Example {index}: 'query' must be a string.")
        for field in ("pos", "neg"):
            texts = example[field]
            if isinstance(texts, str) or not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
                raise InvalidInputError(f"Example {index}: {field!r} must be a list of strings.")
        if not example["pos"]:
            raise InvalidInputError(f"Example {index} has no positive passage; 'pos' needs at least one.")
    return list(examples)


def sample_groups(examples: Sequence[Mapping[str, Any]], neg_number: int, seed: int) -> list[tuple[str, list[str]]]:
    """(query, [first positive, *negatives]) per example; negatives drawn with ``random.Random(seed).sample`` in
    example order, which is what LM_Cocktail draws after ``random.seed(seed)``."""
    rng = random.Random(seed)
    groups = []
    for index, example in enumerate(examples):
        negatives = list(example["neg"])
        if len(negatives) < neg_number:
            raise InvalidInputError(
                f"Example {index} has {len(negatives)} negatives but neg_number is {neg_number}; give every example "
                "at least neg_number negatives or lower neg_number."
            )
        groups.append((example["query"], [example["pos"][0], *rng.sample(negatives, neg_number)]))
    return groups


def encoder_batches(groups, tokenizer, batch_size: int, max_input_length: int) -> list[tuple[dict, dict]]:
    """(query tokens, passage tokens) per ``batch_size`` examples, padded and truncated as LM_Cocktail does."""
    batches = []
    for start in range(0, len(groups), batch_size):
        chunk = groups[start : start + batch_size]
        queries = [query for query, _ in chunk]
        passages = [passage for _, group in chunk for passage in group]
        batches.append((_tokens(tokenizer, queries, max_input_length), _tokens(tokenizer, passages, max_input_length)))
    return batches


def reranker_batches(groups, tokenizer, batch_size: int, max_input_length: int) -> list[tuple[dict, int]]:
    """(pair tokens, group size) per ``batch_size`` examples: every (query, passage) pair of each group."""
    batches = []
    for start in range(0, len(groups), batch_size):
        chunk = groups[start : start + batch_size]
        queries = [query for query, group in chunk for _ in group]
        passages = [passage for _, group in chunk for passage in group]
        tokens = tokenizer(
            queries, passages, padding=True, truncation=True, max_length=max_input_length, return_tensors="pt"
        )
        batches.append((dict(tokens), len(chunk[0][1])))
    return batches


def _tokens(tokenizer, texts: list[str], max_input_length: int) -> dict:
    return dict(tokenizer(texts, padding=True, truncation=True, max_length=max_input_length, return_tensors="pt"))


def decoder_batches(examples, tokenizer, batch_size: int, max_input_length: int) -> list[dict]:
    """LM_Cocktail's causal-LM batches: ``input + ' ' + output`` + EOS, prompt labels −100, every example
    right-padded to exactly ``max_input_length`` with the pad token, mask = ids ≠ pad."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    if pad is None or eos is None:
        raise InvalidInputError(
            "This tokenizer has no padding or end-of-sequence token, which the decoder loss needs; set one first."
        )
    all_ids, all_labels = [], []
    for example in examples:
        ids = [*tokenizer.encode(example["input"] + " " + example["output"]), eos]
        prompt_length = len(tokenizer.encode(example["input"]))
        labels = [-100] * prompt_length + ids[prompt_length:]
        ids, labels = ids[:max_input_length], labels[:max_input_length]
        all_ids.append(ids + [pad] * (max_input_length - len(ids)))
        all_labels.append(labels + [-100] * (max_input_length - len(labels)))
    ids_tensor, labels_tensor = torch.LongTensor(all_ids), torch.LongTensor(all_labels)
    mask = ids_tensor.ne(pad)
    return [
        {
            "input_ids": ids_tensor[start : start + batch_size],
            "labels": labels_tensor[start : start + batch_size],
            "attention_mask": mask[start : start + batch_size],
        }
        for start in range(0, len(all_ids), batch_size)
    ]


def _check_lengths(model: torch.nn.Module, batches: list, name: str) -> None:
    """Refuse inputs longer than the model's position table with a sentence, before any forward pass."""
    for batch in batches:
        for tokens in batch if isinstance(batch, tuple) else (batch,):
            if isinstance(tokens, Mapping):
                width = tokens["input_ids"].shape[1]
                ensure_inputs_fit(model.config, [width], model_name=name, max_length=width, what="An example")


def _pooled(model, tokens: Mapping[str, torch.Tensor], pooling_method: str) -> torch.Tensor:
    from flagdemo.models.embedders.base import pool

    hidden = model(**tokens, return_dict=True).last_hidden_state
    return F.normalize(pool(hidden, tokens["attention_mask"], pooling_method), dim=-1)


def encoder_loss(model, batches, pooling_method: str = "cls") -> float:
    """Mean over batches of the cross-entropy of q·pᵀ / 0.05 with each query's own first passage as the target."""
    total = 0
    with torch.no_grad():
        for query_tokens, passage_tokens in batches:
            queries = _pooled(model, query_tokens, pooling_method)
            passages = _pooled(model, passage_tokens, pooling_method)
            scores = torch.matmul(queries, passages.transpose(0, 1)) / EMBEDDER_LOSS_TEMPERATURE
            target = torch.arange(scores.size(0), dtype=torch.long) * (passages.size(0) // queries.size(0))
            total += F.cross_entropy(scores, target)
    return float(total / len(batches))


def reranker_loss(model, batches) -> float:
    """Mean over batches of the grouped cross-entropy of the relevance logits, the positive first in each group."""
    total = 0
    with torch.no_grad():
        for tokens, group_size in batches:
            logits = model(**tokens, return_dict=True).logits[:, 0].view(-1, group_size)
            total += F.cross_entropy(logits, torch.zeros(logits.size(0), dtype=torch.long))
    return float(total / len(batches))


def decoder_loss(model, batches) -> float:
    """Mean over batches of the model's own causal-LM loss."""
    total = 0
    with torch.no_grad():
        for batch in batches:
            total += model(**batch).loss
    return float(total / len(batches))


# --- saving -------------------------------------------------------------------------------------------------------
def save_merged(model, source: ModelSource, model_type: str, output_path: str, tokenizer=None) -> Path:
    """Save the model, the first model's tokenizer, ``cocktail.json`` and, for encoders, sentence-transformers
    files: the first model's own when it has them, else written for its pooling with normalisation."""
    target = Path(output_path)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    (tokenizer or load_tokenizer(source)).save_pretrained(target)
    pooling = model_pooling(source) if model_type == "encoder" else None
    if model_type == "encoder":
        write_sentence_transformers_files(source, target, pooling, model.config)
    record = {
        "model_type": model_type,
        "models": getattr(model, "cocktail_models", []),
        "weights": getattr(model, "cocktail_weights", []),
        "pooling_method": pooling,
    }
    if getattr(model, "cocktail_losses", None) is not None:
        record["losses"] = model.cocktail_losses
    (target / "cocktail.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target
