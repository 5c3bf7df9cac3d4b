"""Cocktail: fine-tune a base embedder, derive LM-Cocktail's weight from held-back examples, measure the blends,
and (when asked) write the blend at that weight; through the same road as every other model work."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flagdemo.engine.access import ModelAccess
from flagdemo.errors import InvalidInputError, ResourceLimitError
from flagdemo.limits import Setting
from flagdemo.training import blend
from flagdemo.training.cocktail import mix_models
from flagdemo.training.finetune import FinetuneSettings

MAX_STEPS = Setting("FLAGDEMO_MAX_FINETUNE_STEPS", 60, "fine-tuning steps in one Cocktail request")


def tune_and_blend(
    access: ModelAccess,
    base_model: str,
    examples: Sequence[Mapping[str, Any]],
    in_domain_topics: Sequence[str],
    workdir: Path,
    *,
    epochs: int = 1,
    learning_rate: float = 2e-5,
    temperature: float = 5.0,
    blend_to: Path | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> blend.CocktailRun:
    """``blend.tune_and_blend`` on ``base_model`` (refused in public mode unless it is a catalog model, refused for
    LLM-Embedder, bounded by FLAGDEMO_MAX_FINETUNE_STEPS), then, with ``blend_to``, the blend at LM-Cocktail's
    weight saved there."""
    with access.training_work(base_model) as spec:
        if spec.is_llm_embedder:
            raise InvalidInputError(
                "LLM-Embedder reads every text behind one of six task instructions, and this tab fine-tunes and "
                "scores without them: choose another base embedder here (Compare scores LLM-Embedder with a task)."
            )
        steps = epochs * -(-max(0, len(examples) - blend.HELD_OUT) // FinetuneSettings.batch_size)
        if steps > MAX_STEPS.value():
            raise ResourceLimitError(
                f"{len(examples)} examples for {epochs} epoch(s) make {steps} fine-tuning steps; this server allows "
                f"{MAX_STEPS.value():g} ({MAX_STEPS.env}). Use fewer examples or epochs."
            )
        run = blend.tune_and_blend(
            base_model,
            examples,
            in_domain_topics,
            workdir,
            temperature=temperature,
            epochs=epochs,
            learning_rate=learning_rate,
            progress=progress,
        )
        if blend_to is not None:
            weight = run.data_weight
            mix_models([base_model, str(run.finetuned.output_dir)], "encoder", [1.0 - weight, weight], str(blend_to))
    return run
