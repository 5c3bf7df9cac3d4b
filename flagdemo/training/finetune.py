"""Fine-tune an encoder embedder with FlagEmbedding's embedder objective, small enough for a CPU and a minute.

The objective is FlagEmbedding 1.4's (``finetune/embedder/encoder_only/base``): every query is paired with one
positive drawn from its ``pos`` list and ``train_group_size - 1`` negatives drawn from its ``neg`` list; queries
(with the model's query instruction) and passages are pooled the model's own way (CLS or mean) and L2-normalised;
scores are q·pᵀ / temperature (0.02) against every passage of the batch, so the other queries' passages are
in-batch negatives; the loss is the cross-entropy with each query's own positive as the target. AdamW with a linear
warm-up and decay, gradient norm clipped at 1 (the transformers Trainer's defaults).

Deterministic on CPU: one seed drives the example order, the sampling of positives and negatives, and dropout (in a
forked torch RNG, so the caller's random state is left alone). The saved folder holds the model, its tokenizer,
sentence-transformers files with the base model's pooling, and ``finetune.json`` (settings and per-step losses).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from flagdemo.errors import EmptyInputError, InvalidInputError
from flagdemo.models.embedders.base import get_detailed_instruct, pool
from flagdemo.models.sources import ModelSource, instantiate_pretrained, load_tokenizer, resolve_source
from flagdemo.training.checkpoint import model_pooling, write_sentence_transformers_files

TRAINING_FOLDER = ("data", "training")


@dataclass(frozen=True)
class FinetuneSettings:
    """Training settings; defaults are FlagEmbedding's where it has one (temperature, lengths), sized for a CPU."""

    epochs: int = 1
    learning_rate: float = 2e-5
    batch_size: int = 8
    train_group_size: int = 4
    temperature: float = 0.02
    query_max_length: int = 32
    passage_max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_steps: int | None = None
    seed: int = 42

    def check(self) -> FinetuneSettings:
        for name in ("epochs", "batch_size", "train_group_size", "query_max_length", "passage_max_length", "seed"):
            value = getattr(self, name)
            minimum = 0 if name == "seed" else 1 + (name == "train_group_size")
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidInputError(f"{name} must be a whole number ≥ {minimum}, not {value!r}.")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise InvalidInputError(f"max_steps must be a whole number ≥ 1 or None, not {self.max_steps!r}.")
        for name in ("learning_rate", "temperature", "max_grad_norm"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise InvalidInputError(f"{name} must be a positive number, not {value!r}.")
        for name in ("warmup_ratio", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise InvalidInputError(f"{name} must be a number from 0 up to (not including) 1, not {value!r}.")
        return self


@dataclass
class FinetuneResult:
    """What a run produced: the saved folder, the loss of every step, and how the model was read."""

    output_dir: Path
    base_model: str
    pooling_method: str
    query_instruction: str | None
    settings: FinetuneSettings
    examples: int
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)


# --- training data ------------------------------------------------------------------------------------------------
def bundled_training_files() -> dict[str, Path]:
    """The bundled CC0 training files (flagdemo/data/training/*.jsonl) by file stem."""
    folder = resources.files("flagdemo").joinpath(*TRAINING_FOLDER)
    return {Path(str(item)).stem: Path(str(item)) for item in sorted(folder.iterdir(), key=str) if
            str(item).endswith(".jsonl")}  # fmt: skip


def read_training_file(path: str | Path, *, max_examples: int | None = None) -> list[dict[str, Any]]:
    """Examples from a FlagEmbedding training file: one ``{"query", "pos": [...], "neg": [...]}`` object per line."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            examples.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise InvalidInputError(f"Line {number} of the training file is not valid JSON ({error.msg}).") from error
        if max_examples is not None and len(examples) > max_examples:
            raise InvalidInputError(f"The training file has more than {max_examples} examples; use a smaller file.")
    return check_examples(examples)


def check_examples(examples: Iterable[Any]) -> list[dict[str, Any]]:
    """Each example needs a query, at least one positive and one negative (all strings); extra keys are ignored."""
    checked = []
    for index, example in enumerate(examples):
        where = f"Training example {index + 1}"
        if not isinstance(example, Mapping):
            raise InvalidInputError(f"{where} is not a JSON object with query, pos and neg.")
        query, positives, negatives = example.get("query"), example.get("pos"), example.get("neg")
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"{where} needs a non-empty 'query' string.")
        for name, texts in (("pos", positives), ("neg", negatives)):
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                raise InvalidInputError(f"{where} needs '{name}': a list of at least one non-empty string.")
        prompt = {"prompt": example["prompt"]} if isinstance(example.get("prompt"), str) else {}
        checked.append({"query": query, "pos": list(positives), "neg": list(negatives), **prompt})
    if not checked:
        raise EmptyInputError("The training data has no examples.")
    return checked


def sample_group(example: Mapping[str, Any], group_size: int, rng: random.Random) -> list[str]:
    """One positive, then ``group_size - 1`` negatives (repeated as needed when the example has fewer), as
    FlagEmbedding's training dataset samples them."""
    positive = rng.choice(example["pos"])
    negatives = list(example["neg"])
    wanted = group_size - 1
    if len(negatives) < wanted:
        negatives = negatives * math.ceil(wanted / len(negatives))
    return [positive, *rng.sample(negatives, wanted)]


# --- the objective ------------------------------------------------------------------------------------------------
def embed(model: torch.nn.Module, tokens: Mapping[str, torch.Tensor], pooling_method: str) -> torch.Tensor:
    """Pooled, L2-normalised embeddings (with gradients when the model trains)."""
    hidden = model(**tokens, return_dict=True).last_hidden_state
    return F.normalize(pool(hidden, tokens["attention_mask"], pooling_method), dim=-1)


def contrastive_loss(queries: torch.Tensor, passages: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with in-batch negatives: each query against every passage of the batch, its own positive (the first
    of its group) as the target."""
    scores = queries @ passages.T / temperature
    group_size = passages.size(0) // queries.size(0)
    target = torch.arange(queries.size(0), dtype=torch.long) * group_size
    return F.cross_entropy(scores, target)


def _linear_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _resolve_settings(settings: FinetuneSettings | None, overrides: dict[str, Any]) -> FinetuneSettings:
    base = settings or FinetuneSettings()
    unknown = sorted(set(overrides) - set(asdict(base)))
    if unknown:
        raise InvalidInputError(f"Unknown fine-tuning setting(s): {', '.join(unknown)}.")
    return FinetuneSettings(**(asdict(base) | overrides)).check()


def finetune(
    base_model: str,
    train_data: str | Path | Sequence[Mapping[str, Any]],
    output_dir: str | Path,
    *,
    settings: FinetuneSettings | None = None,
    pooling_method: str | None = None,
    query_instruction: str | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    **overrides: Any,
) -> FinetuneResult:
    """Fine-tune ``base_model`` (catalog name, hub id or folder of an encoder) on ``train_data`` (a JSONL path or a
    list of examples) and save it in ``output_dir``.

    ``pooling_method`` and ``query_instruction`` default to the model's own (its sentence-transformers pooling or
    catalog entry; the catalog's query instruction). ``progress(step, total_steps, loss)`` is called after each
    step. Settings come from ``settings`` and keyword overrides (``epochs=2``, ``learning_rate=1e-5`` …).
    """
    config = _resolve_settings(settings, overrides)
    examples = read_training_file(train_data) if isinstance(train_data, (str, Path)) else check_examples(train_data)
    source = resolve_source(base_model)
    pooling = pooling_method or model_pooling(source)
    if pooling not in ("cls", "mean"):
        raise InvalidInputError(f"pooling_method must be 'cls' or 'mean', not {pooling!r}.")
    instruction, instruction_format = _query_instruction(source, query_instruction)
    tokenizer = load_tokenizer(source)
    from transformers import AutoModel

    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = instantiate_pretrained(source, AutoModel, dtype=torch.float32)
        losses = _train(
            model,
            tokenizer,
            examples,
            config,
            pooling=pooling,
            instruction=instruction,
            instruction_format=instruction_format,
            progress=progress,
        )
    model.eval()
    target = _save(
        model,
        tokenizer,
        source,
        Path(output_dir),
        pooling=pooling,
        instruction=instruction,
        config=config,
        losses=losses,
    )
    return FinetuneResult(
        output_dir=target,
        base_model=str(base_model),
        pooling_method=pooling,
        query_instruction=instruction,
        settings=config,
        examples=len(examples),
        steps=len(losses),
        seconds=time.perf_counter() - started,
        losses=losses,
    )


def _query_instruction(source: ModelSource, override: str | None) -> tuple[str | None, str]:
    entry = source.entry
    instruction = override if override is not None else (entry.query_instruction if entry else None)
    return instruction or None, entry.query_instruction_format if entry else "{}{}"


def _train(model, tokenizer, examples, config, *, pooling, instruction, instruction_format, progress) -> list[float]:
    rng = random.Random(config.seed)
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or name.endswith("bias") else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    scheduler = _linear_schedule(optimizer, math.ceil(total * config.warmup_ratio), total)
    model.train()
    losses: list[float] = []
    while len(losses) < total:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            if len(losses) >= total:
                break
            batch = [examples[i] for i in order[start : start + config.batch_size]]
            queries = [_with_instruction(e, instruction, instruction_format) for e in batch]
            passages = [text for e in batch for text in sample_group(e, config.train_group_size, rng)]
            query_tokens = tokenizer(
                queries, padding=True, truncation=True, max_length=config.query_max_length, return_tensors="pt"
            )
            passage_tokens = tokenizer(
                passages, padding=True, truncation=True, max_length=config.passage_max_length, return_tensors="pt"
            )
            loss = contrastive_loss(
                embed(model, query_tokens, pooling), embed(model, passage_tokens, pooling), config.temperature
            )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(len(losses), total, losses[-1])
    return losses


def _with_instruction(example: Mapping[str, Any], instruction: str | None, instruction_format: str) -> str:
    """FlagEmbedding's rule: with an instruction, an example's own ``prompt`` replaces it; without, the bare query."""
    if instruction is None:
        return example["query"]
    return get_detailed_instruct(instruction_format, example.get("prompt", instruction), example["query"])


def _save(model, tokenizer, source, target: Path, *, pooling, instruction, config, losses) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    write_sentence_transformers_files(source, target, pooling, model.config)
    record = {
        "base_model": source.name,
        "pooling_method": pooling,
        "query_instruction": instruction,
        "objective": "InfoNCE over positive, sampled hard negatives and in-batch negatives (FlagEmbedding)",
        "settings": asdict(config),
        "losses": losses,
    }
    (target / "finetune.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target
