"""Saving a model the way its users load it back: with its own pooling and sentence-transformers files.

LM_Cocktail writes CLS pooling for every encoder, which turns a mean-pooled model such as all-MiniLM-L6-v2 into a
different model; both the merges (``cocktail``) and the fine-tune (``finetune``) save through here instead.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from flagdemo.models.positions import readable_tokens
from flagdemo.models.sources import ModelSource

SENTENCE_TRANSFORMERS_FILES = ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json")


def model_pooling(source: ModelSource) -> str:
    """The model's own pooling: its sentence-transformers Pooling config, else its catalog entry, else CLS."""
    if source.is_local:
        config = Path(source.path) / "1_Pooling" / "config.json"
        if config.is_file():
            settings = json.loads(config.read_text(encoding="utf-8"))
            # sentence-transformers writes either one flag per mode (before 5.x) or "pooling_mode": "mean".
            if settings.get("pooling_mode_mean_tokens") or settings.get("pooling_mode") == "mean":
                return "mean"
            if settings.get("pooling_mode_cls_token") or settings.get("pooling_mode") == "cls":
                return "cls"
    if source.entry is not None and source.entry.pooling in ("cls", "mean"):
        return source.entry.pooling
    return "cls"


def write_sentence_transformers_files(source: ModelSource, target: Path, pooling: str, config: Any) -> None:
    """Copy the source's sentence-transformers module files, or write Transformer → Pooling → Normalize."""
    origin = Path(source.path) if source.is_local else None
    if origin is not None and (origin / "modules.json").is_file():
        for name in SENTENCE_TRANSFORMERS_FILES:
            if (origin / name).is_file():
                shutil.copyfile(origin / name, target / name)
        for module in json.loads((origin / "modules.json").read_text(encoding="utf-8")):
            folder = module.get("path", "")
            if folder and (origin / folder).is_dir():
                shutil.copytree(origin / folder, target / folder, dirs_exist_ok=True)
        return
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (target / "modules.json").write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")
    (target / "1_Pooling").mkdir(exist_ok=True)
    (target / "2_Normalize").mkdir(exist_ok=True)
    pooling_config = {
        "word_embedding_dimension": config.hidden_size,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (target / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config, indent=2) + "\n", encoding="utf-8")
    settings = {"max_seq_length": max_seq_length(config), "do_lower_case": False}
    (target / "sentence_bert_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def max_seq_length(config: Any) -> int:
    """What the position table allows (512 when the model has no table, e.g. rotary decoders)."""
    return readable_tokens(config) or 512
