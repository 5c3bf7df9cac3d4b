"""A models folder that serves the rest of the family offline, on seeded random weights (tests and demos).

``write_visualized_base(models_dir)`` writes ``bge-visualized-base-en-v1.5/`` (the seeded checkpoint the goldens use,
as ``Visualized_base_en_v1.5.pth`` beside a bge-base-en-v1.5-shaped config and tokenizer), and
``write_llm_embedder(models_dir, source)`` copies a small BERT folder as ``llm-embedder/``. Point FLAGDEMO_MODELS_DIR
at the folder and the app offers both by their catalog names. The numbers are a random model's: for trying the app
and for tests, not for meaning.

    python tests/family/demo_models.py MODELS_DIR   # ~800 MB, ~15 s
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from family_goldens import ASSETS
from seeded_weights import seeded_state_dict

from flagdemo.models.visual.eva import rotary_tables
from flagdemo.models.visual.model import VARIANTS, checkpoint_shapes

BASE = VARIANTS[0]
TINY_BERT = Path(__file__).parents[1] / "assets" / "tiny" / "bert-embedder"


def write_visualized_base(models_dir: Path) -> Path:
    """The base variant's folder under ``models_dir`` (kept when already written)."""
    folder = Path(models_dir) / BASE.catalog_key
    weight = folder / BASE.weight_file
    if weight.is_file():
        return folder
    shutil.copytree(ASSETS / BASE.bge_name, folder, dirs_exist_ok=True)
    shapes = checkpoint_shapes(BASE.bge_name, from_pretrained=str(folder))
    state = seeded_state_dict(shapes, rotary_tables(BASE.eva))
    torch.save(state, weight.with_suffix(".tmp"))
    weight.with_suffix(".tmp").rename(weight)
    return folder


def write_llm_embedder(models_dir: Path, source: Path = TINY_BERT) -> Path:
    """A small BERT served as LLM-Embedder (the catalog finds a folder by its name)."""
    folder = Path(models_dir) / "llm-embedder"
    shutil.copytree(source, folder, dirs_exist_ok=True)
    return folder


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "models")
    print(write_visualized_base(target))
    print(write_llm_embedder(target))
