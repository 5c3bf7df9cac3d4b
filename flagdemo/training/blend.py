"""The workshop study the Cocktail tab draws: a base and a fine-tuned embedder blended at weights 0 … 1
(``merge_curve``), each blend scored on in-domain and out-of-domain labelled queries, and the whole experiment
(``tune_and_blend``: fine-tune, derive LM-Cocktail's weight from held-back examples, measure the curve).
"""

from __future__ import annotations

import copy
import math
import random
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from flagdemo.analysis.evaluation import retrieve
from flagdemo.data.datasets import load_retrieval_set
from flagdemo.errors import InvalidInputError
from flagdemo.models import catalog
from flagdemo.models.embedders import FlagAutoModel
from flagdemo.models.sources import resolve_source
from flagdemo.training import finetune
from flagdemo.training.checkpoint import model_pooling
from flagdemo.training.cocktail import load_for_merging, merge_state_dicts, mix_models_with_data

DEFAULT_CURVE_WEIGHTS = tuple(round(0.1 * step, 1) for step in range(11))


def merge_curve(
    base_model: str,
    finetuned_model: str,
    in_domain_topics: Sequence[str],
    weights: Sequence[float] = DEFAULT_CURVE_WEIGHTS,
    *,
    retrieval_set: Any = None,
    k: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """nDCG@k of ``mix_models([base, fine-tuned], 'encoder', [1 - w, w])`` for every w, on the labelled set's
    queries split into in-domain (``in_domain_topics``) and out-of-domain ones.

    w = 0 is the base model and w = 1 the fine-tuned one, exactly. Every blend is read with the base model's own
    embedder settings (pooling, instruction, lengths). Returns a DataFrame with one row per weight: ``weight``,
    ``in-domain nDCG@k``, ``out-of-domain nDCG@k``, ``all nDCG@k`` and the query counts.
    """
    data = retrieval_set if retrieval_set is not None else load_retrieval_set()
    topics = set(data.queries["topic"])
    chosen = set(in_domain_topics)
    unknown = sorted(chosen - topics)
    if unknown or not chosen or chosen == topics:
        raise InvalidInputError(
            f"Choose at least one in-domain topic and leave at least one out, from: {', '.join(sorted(topics))}"
            + (f" ({', '.join(unknown)} is not one of them)." if unknown else ".")
        )
    grid = [float(weight) for weight in weights]
    if not grid or any(not math.isfinite(weight) for weight in grid):
        raise InvalidInputError("Give at least one finite weight for the fine-tuned model.")
    # torch: every blend is read once, so exporting an ONNX graph per weight would cost more than it saves.
    base_embedder = FlagAutoModel.from_finetuned(base_model, use_fp16=False, backend="torch") if catalog_has(
        base_model) else FlagAutoModel.from_finetuned(
            base_model, model_class="encoder-only-base", use_fp16=False, backend="torch",
            pooling_method=model_pooling(resolve_source(base_model)))  # fmt: skip
    base_source, tuned_source = resolve_source(base_model), resolve_source(finetuned_model)
    base_state = load_for_merging(base_source, "encoder").state_dict()
    tuned_state = load_for_merging(tuned_source, "encoder").state_dict()
    blend = load_for_merging(base_source, "encoder")
    reader = copy.copy(base_embedder)
    reader.model = blend
    rows = []
    for done, weight in enumerate(grid, start=1):
        blend.load_state_dict(merge_state_dicts([base_state, tuned_state], [1.0 - weight, weight]))
        per_query = retrieve(reader, data, k, name=f"w={weight:g}").per_query
        inside = per_query["topic"].isin(chosen)
        column = f"nDCG@{k}"
        rows.append(
            {
                "weight": weight,
                f"in-domain nDCG@{k}": float(per_query.loc[inside, column].mean()),
                f"out-of-domain nDCG@{k}": float(per_query.loc[~inside, column].mean()),
                f"all nDCG@{k}": float(per_query[column].mean()),
                "in-domain queries": int(inside.sum()),
                "out-of-domain queries": int((~inside).sum()),
            }
        )
        if progress is not None:
            progress(done, len(grid))
    return pd.DataFrame(rows)


def catalog_has(name: str) -> bool:
    """Whether FlagAutoModel can configure ``name`` from the catalog (else it needs an explicit model class)."""
    return catalog.lookup(name, kind="embedder") is not None


HELD_OUT = 8  # examples held back for LM-Cocktail's data-derived weight


@dataclass(frozen=True, eq=False)
class CocktailRun:
    """One fine-tune-and-blend experiment: the training run, the weight LM-Cocktail derives from held-back
    examples, and the merge curve on the labelled set."""

    finetuned: Any  # flagdemo.training.finetune.FinetuneResult
    held_out_examples: int
    data_weight: float
    data_losses: list[float]
    curve: Any  # pandas DataFrame from merge_curve


def tune_and_blend(
    base_model: str,
    examples: Sequence[Mapping[str, Any]],
    in_domain_topics: Sequence[str],
    workdir: str | Path,
    *,
    held_out: int = HELD_OUT,
    temperature: float = 5.0,
    weights: Sequence[float] = DEFAULT_CURVE_WEIGHTS,
    progress: Callable[[float, str], None] | None = None,
    **settings: Any,
) -> CocktailRun:
    """Fine-tune ``base_model`` on all but ``held_out`` examples (chosen with the seed), derive the fine-tuned
    model's weight with ``mix_models_with_data`` on the held-back ones, and measure the merge curve.

    The fine-tuned checkpoint is written under ``workdir`` (the caller decides its lifetime). ``progress(fraction,
    message)`` reports the three stages: training 0–0.5, data weights 0.5–0.55, curve 0.55–1.
    """
    report = progress or (lambda fraction, message: None)
    checked = finetune.check_examples(examples)
    if len(checked) <= held_out:
        raise InvalidInputError(
            f"The training data has {len(checked)} examples; it needs more than the {held_out} held back for "
            "LM-Cocktail's data-derived weight."
        )
    order = list(range(len(checked)))
    random.Random(settings.get("seed", finetune.FinetuneSettings.seed)).shuffle(order)
    held = [checked[i] for i in sorted(order[:held_out])]
    train = [checked[i] for i in sorted(order[held_out:])]
    tuned = finetune.finetune(
        base_model,
        train,
        Path(workdir) / "finetuned",
        progress=lambda step, total, loss: report(0.5 * step / total, f"Fine-tuning: step {step} of {total}"),
        **settings,
    )
    report(0.5, "Deriving LM-Cocktail's weight from the held-back examples")
    source = resolve_source(base_model)
    negatives = min(len(example["neg"]) for example in held)
    blended = mix_models_with_data(
        [base_model, str(tuned.output_dir)],
        "encoder",
        held,
        temperature=temperature,
        neg_number=min(7, negatives),
        max_input_length=tuned.settings.passage_max_length,
        pooling_method=model_pooling(source),
    )
    data_weight = float(blended.cocktail_weights[1])
    grid = sorted({*(float(weight) for weight in weights), round(data_weight, 4)})
    curve = merge_curve(
        base_model,
        str(tuned.output_dir),
        in_domain_topics,
        grid,
        progress=lambda done, total: report(0.55 + 0.45 * done / total, f"Evaluating blend {done} of {total}"),
    )
    curve["data-derived"] = curve["weight"] == round(data_weight, 4)
    return CocktailRun(tuned, len(held), data_weight, list(blended.cocktail_losses), curve)


def main() -> None:
    """``python -m flagdemo.training.blend``: the Cocktail tab's default experiment on the bundled MiniLM."""
    started = time.perf_counter()
    examples = finetune.read_training_file(finetune.bundled_training_files()["cooking_health_finance"])
    with tempfile.TemporaryDirectory() as workdir:
        run = tune_and_blend(
            "all-MiniLM-L6-v2",
            examples,
            ["cooking", "health", "personal_finance"],
            workdir,
            progress=lambda fraction, message: print(f"{fraction:5.0%} {message}", flush=True),
        )
    print(f"fine-tuning: {run.finetuned.steps} steps in {run.finetuned.seconds:.0f} s; losses {run.finetuned.losses}")
    seconds = time.perf_counter() - started
    print(f"data-derived weight {run.data_weight:.4f} (losses {run.data_losses}); total {seconds:.0f} s")
    print(run.curve.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
