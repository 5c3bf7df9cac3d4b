"""Run FlagEmbedding 1.2.11's LLMEmbedder and Visualized_BGE and write replayable goldens to tests/family/golden/.

Runs in the family golden env (../../.venv-golden-family: FlagEmbedding 1.2.11, transformers 4.57, torch 2.14.1 +
torchvision 0.29.1; `make golden-family`). FlagEmbedding 1.4 dropped both classes, so they are recorded from 1.2.11:

- llm_embedder.json: ``LLMEmbedder`` on the tiny BERT in tests/assets/tiny/bert-embedder, every task, both sides.
- visual_bge_base.json / visual_bge_m3.json: ``FlagEmbedding.visual.modeling.Visualized_BGE`` on seeded random
  weights (tests/family/seeded_weights.py rebuilds them from the parameter list recorded in the header, whose
  checksum the replay checks) and on the images in tests/family/images/ (drawn by flagdemo.models.visual.drawing).

    python golden/family/make_golden_family.py [llm_embedder] [visual_bge_base] [visual_bge_m3]

Everything runs on CPU in fp32 (torch 2.14.1 here is a CUDA build; the machine has no GPU, so CUDA is unavailable
and 1.2.11 picks the CPU itself).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers

os.environ.setdefault("TQDM_DISABLE", "1")
transformers.logging.set_verbosity_error()

REPO = Path(__file__).resolve().parent.parent.parent
TESTS = REPO / "tests"
FAMILY = TESTS / "family"
OUT = FAMILY / "golden"
TINY = TESTS / "assets" / "tiny"
ASSETS = FAMILY / "assets"
IMAGES = FAMILY / "images"
for extra in (TESTS / "golden", FAMILY, REPO):
    sys.path.insert(0, str(extra))

from golden_codec import decode, encode  # noqa: E402
from seeded_weights import checksum, is_rotary, seeded_state_dict, shape_list  # noqa: E402

from flagdemo.models.visual.eva import EVA02_B16, EVA02_L14, rotary_tables  # noqa: E402  (pure torch)

TOLERANCE = 1e-5
QUERIES = [
    "What is the capital of France?",
    "how do cats sleep",
    "Wie schnell läuft der Hund?",
    "我们喜欢学习什么？",
]
KEYS = [
    "Paris is the capital and largest city of France, on the river Seine.",
    "Cats sleep for twelve to sixteen hours a day, mostly in short naps.",
    "Der Hund läuft schnell über die große Straße und die Kinder spielen im Garten.",
    "我们喜欢学习机器语言模型。",
]
LONG_TEXT = (
    "Dense retrieval encodes queries and passages into vectors, and a reranker then reads each query with each "
    "candidate passage to score how well the passage answers the query, which is slower but more accurate."
)
MIXED = ["The cat sat on the mat.", LONG_TEXT, "Rocket launch 🚀 tonight 🎉 with a fox 🦊", "", "ok"]
TASKS = ("qa", "convsearch", "chat", "lrlm", "icl", "tool")
CAPTIONS = {
    "shapes-rgb.png": "a red circle",
    "shapes-rgba.png": "a red circle behind a translucent blue square",
    "noise.jpg": "random coloured noise",
    "large-scene.jpg": "a small house with a red roof",
    "wide.png": "a row of coloured dots",
}
M3_IMAGES = ("shapes-rgba.png", "noise.jpg", "tall-grey-alpha.png")
VISUAL_TEXTS = ["a red circle", "Find a picture of a house.", "", LONG_TEXT, "Le chat est sur la table 🐱"]


def versions() -> dict[str, str]:
    names = ("FlagEmbedding", "transformers", "tokenizers", "torchvision", "pillow", "numpy")
    found = {name: importlib.metadata.version(name) for name in names}
    return {**found, "torch": torch.__version__, "python": platform.python_version()}


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def recorded(case_id: str, call: Callable[[], Any], **fields: Any) -> dict[str, Any]:
    with torch.no_grad():
        result = encode(call())
    text = json.dumps(result)
    if "NaN" in text or "Infinity" in text:
        raise ValueError(f"{case_id}: a non-finite number; the case would prove nothing")
    return {"id": case_id, **fields, "result": result}


# --- LLM-Embedder ----------------------------------------------------------------------------------------------


def record_llm_embedder() -> dict[str, Any]:
    from FlagEmbedding import LLMEmbedder

    model_dir = TINY / "bert-embedder"
    instances: dict[str, Any] = {}
    cases: list[dict[str, Any]] = []

    def case(case_id: str, init: dict[str, Any], method: str, *args: Any, **kwargs: Any) -> None:
        key = json.dumps(init, sort_keys=True)
        if key not in instances:
            instances[key] = LLMEmbedder(str(model_dir), **init)
        instance = instances[key]
        enc_args, enc_kwargs = encode(list(args)), encode(kwargs)
        call = lambda: getattr(instance, method)(*decode(copy.deepcopy(enc_args)), **decode(enc_kwargs))  # noqa: E731
        cases.append(
            recorded(
                case_id,
                call,
                **{"class": "LLMEmbedder", "model": "bert-embedder", "init": init, "method": method},
                args=enc_args,
                kwargs=enc_kwargs,
            )
        )

    for task in TASKS:
        case(f"llm-embedder-{task}-queries", {}, "encode_queries", QUERIES, task=task)
        case(f"llm-embedder-{task}-keys", {}, "encode_keys", KEYS, task=task)
    case("llm-embedder-default-task-queries", {}, "encode_queries", QUERIES)
    case("llm-embedder-default-task-keys", {}, "encode_keys", KEYS)
    case("llm-embedder-single-query", {}, "encode_queries", QUERIES[0], task="chat")
    case("llm-embedder-single-key", {}, "encode_keys", KEYS[1], task="tool")
    case("llm-embedder-mixed-keys", {}, "encode_keys", MIXED, task="lrlm")
    case("llm-embedder-empty-query", {}, "encode_queries", [""], task="icl")
    case("llm-embedder-batch-2-truncated-12", {}, "encode_queries", MIXED, batch_size=2, max_length=12)
    case("llm-embedder-keys-truncated-9", {}, "encode_keys", [*KEYS, LONG_TEXT], max_length=9, task="convsearch")
    case("llm-embedder-fp32-init", {"use_fp16": False}, "encode_queries", QUERIES, task="qa")
    case("llm-embedder-mean-pooling", {"pooling_method": "mean"}, "encode_keys", MIXED, task="chat")
    case("llm-embedder-unnormalized", {"normalize_embeddings": False}, "encode_queries", MIXED, task="tool")
    case(
        "llm-embedder-mean-unnormalized-single",
        {"pooling_method": "mean", "normalize_embeddings": False},
        "encode_keys",
        LONG_TEXT,
        task="qa",
    )
    tokenizer = next(iter(instances.values())).tokenizer
    tokenization = [
        {"model": "bert-embedder", "text": text, "input_ids": tokenizer(text)["input_ids"]}
        for text in [*QUERIES, *KEYS, *MIXED]
    ]
    header = {
        "generator": "golden/family/make_golden_family.py",
        "reference": "FlagEmbedding.LLMEmbedder",
        "versions": versions(),
        "device": "cpu",
        "dtype": "float32",
        "tolerance": TOLERANCE,
        "instructions": LLMEmbedder.instructions,
        "models": {"bert-embedder": {"files": file_hashes(model_dir)}},
    }
    return {"header": header, "tokenization": tokenization, "cases": cases}


# --- Visualized-BGE --------------------------------------------------------------------------------------------


def eager_attention_for_bert_and_xlmr() -> None:
    """Run the reference's BERT / XLM-R with eager attention, as the transformers it was written for did.

    Visualized_BGE adds a float16 extended mask to float32 attention scores; transformers 4.57 builds these encoders
    with SDPA by default, and torch's SDPA refuses a float16 mask for float32 queries. Its constructor calls
    ``AutoModel.from_config(config)`` with no way to pass ``attn_implementation`` (and 4.57 ignores the key in
    config.json), so the golden run tells transformers these two classes have no SDPA, and it falls back to eager.
    FlagEmbedding's own code is untouched.
    """
    from transformers.models.bert.modeling_bert import BertPreTrainedModel
    from transformers.models.xlm_roberta.modeling_xlm_roberta import XLMRobertaPreTrainedModel

    BertPreTrainedModel._supports_sdpa = False
    XLMRobertaPreTrainedModel._supports_sdpa = False


def reference_parts(bge_name: str, folder: Path) -> dict[str, torch.Tensor]:
    """The reference's own module tree, built exactly as its constructor builds it (minus loading weights)."""
    from FlagEmbedding.visual.eva_clip import create_eva_vision_and_transforms
    from transformers import AutoConfig, AutoModel

    eva_name = "EVA02-CLIP-B-16" if "bge-base-en-v1.5" in bge_name else "EVA02-CLIP-L-14"
    bge = AutoModel.from_config(AutoConfig.from_pretrained(folder, local_files_only=True))
    holder = torch.nn.Module()
    holder.bge_encoder, holder.bge_embeddings, holder.bge_pooler = bge.encoder, bge.embeddings, bge.pooler
    holder.model_visual = create_eva_vision_and_transforms(eva_name, force_custom_clip=True)[0]
    holder.visual_proj = torch.nn.Linear(bge.config.hidden_size, bge.config.hidden_size)
    return holder.state_dict()


def preprocessing_sample(pixels: torch.Tensor) -> dict[str, Any]:
    """A compact fingerprint of one preprocessed image: shape, per-channel sums and 64 fixed positions."""
    flat = pixels.reshape(-1)
    positions = torch.linspace(0, flat.numel() - 1, 64).round().long()
    return {
        "shape": list(pixels.shape),
        "channel_sums": pixels.double().sum(dim=(1, 2)).tolist(),
        "positions": positions.tolist(),
        "values": flat[positions].tolist(),
    }


def record_visual(variant: str) -> dict[str, Any]:
    from FlagEmbedding.visual.modeling import Visualized_BGE
    from PIL import Image

    eager_attention_for_bert_and_xlmr()
    bge_name = "bge-base-en-v1.5" if variant == "base" else "bge-m3"
    eva = EVA02_B16 if variant == "base" else EVA02_L14
    folder = ASSETS / bge_name
    reference_state = reference_parts(bge_name, folder)
    shapes = {name: tensor.shape for name, tensor in reference_state.items()}
    native_cos, native_sin = rotary_tables(eva)
    rotary_diff = max(
        float((reference_state[name] - (native_cos if name.endswith("cos") else native_sin)).abs().max())
        for name in reference_state
        if is_rotary(name)
    )
    if rotary_diff > 1e-6:
        raise AssertionError(f"flagdemo's rotary tables differ from EVA's by {rotary_diff}")
    del reference_state
    state = seeded_state_dict(shapes, (native_cos, native_sin))
    weights = {
        "seed_module": "tests/family/seeded_weights.py",
        "checksum": checksum(state),
        "n_tensors": len(state),
        "n_parameters": sum(t.numel() for name, t in state.items() if not is_rotary(name)),
        "rotary_max_abs_diff_vs_eva": rotary_diff,
        "shapes": shape_list(shapes),
    }
    with tempfile.TemporaryDirectory() as scratch:
        weight_file = Path(scratch) / f"seeded-{bge_name}.pth"
        torch.save(state, weight_file)
        del state
        model = Visualized_BGE(
            model_name_bge=str(folder), model_weight=str(weight_file), from_pretrained=str(folder)
        ).eval()
    assert model.device.type == "cpu", model.device
    assert model.bge_encoder.config._attn_implementation == "eager", model.bge_encoder.config._attn_implementation

    image_names = sorted(path.name for path in IMAGES.iterdir())
    preprocessing = {
        name: preprocessing_sample(model.preprocess_val(Image.open(IMAGES / name))) for name in image_names
    }
    cases = []

    def case(case_id: str, **kwargs: Any) -> None:
        call_kwargs = {key: str(IMAGES / value) if key == "image" else value for key, value in kwargs.items()}
        cases.append(
            recorded(
                case_id,
                lambda: model.encode(**call_kwargs),
                **{"class": "Visualized_BGE", "model": bge_name, "method": "encode"},
                kwargs=kwargs,
            )
        )

    # The m3 variant is ~4x the compute per item: a smaller set that still covers every input kind.
    full = variant == "base"
    for name in image_names if full else M3_IMAGES:
        case(f"{variant}-image-{name}", image=name)
    for name, caption in CAPTIONS.items():
        if full or name in M3_IMAGES:
            case(f"{variant}-image-text-{name}", image=name, text=caption)
    case(f"{variant}-image-empty-text", image="text-grey.png", text="")
    case(f"{variant}-image-long-text", image="palette.png", text=LONG_TEXT)
    texts = VISUAL_TEXTS if full else VISUAL_TEXTS[:3]
    for index, text in enumerate(texts):
        case(f"{variant}-text-{index}", text=text)
    case(f"{variant}-text-batch-padded", text=texts)

    # Different images alone must give clearly different vectors, or the cases could not catch a wrong vision path
    # (an image with an empty prompt is the same input as the image alone, so only image-only cases are compared).
    vectors = [np.asarray(c["result"]["__tensor__"][0]) for c in cases if list(c["kwargs"]) == ["image"]]
    closest = min(float(np.abs(a - b).max()) for i, a in enumerate(vectors) for b in vectors[i + 1 :])
    if closest < 1e-3:
        raise AssertionError(f"two different images gave near-identical vectors ({closest}); weak golden")

    tokenization = [
        {"model": bge_name, "text": text, "input_ids": model.tokenizer(text)["input_ids"]}
        for text in [*VISUAL_TEXTS, *CAPTIONS.values(), *QUERIES, *MIXED]
    ]
    header = {
        "generator": "golden/family/make_golden_family.py",
        "reference": "FlagEmbedding.visual.modeling.Visualized_BGE",
        "versions": versions(),
        "device": "cpu",
        "dtype": "float32",
        "tolerance": TOLERANCE,
        "variant": {"bge": bge_name, "eva": eva.name, "image_tokens": eva.patches},
        "attention": "eager (transformers 4.57 told BERT / XLM-R have no SDPA; see eager_attention_for_bert_and_xlmr)",
        "models": {bge_name: {"files": file_hashes(folder)}},
        "images": file_hashes(IMAGES),
        "weights": weights,
        "closest_image_vectors_max_abs_diff": closest,
    }
    return {"header": header, "tokenization": tokenization, "preprocessing": preprocessing, "cases": cases}


def render(data: dict[str, Any]) -> str:
    """Valid JSON, one line per case (readable diffs), the header and preprocessing samples indented."""
    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            body = ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in value)
            parts.append(f' "{key}": [\n{body}\n ]')
        else:
            parts.append(f' "{key}": ' + json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n "))
    return "{\n" + ",\n".join(parts) + "\n}\n"


FAMILIES: dict[str, Callable[[], dict[str, Any]]] = {
    "llm_embedder": record_llm_embedder,
    "visual_bge_base": lambda: record_visual("base"),
    "visual_bge_m3": lambda: record_visual("m3"),
}


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(max(1, int(os.environ.get("GOLDEN_THREADS", "2"))))
    OUT.mkdir(parents=True, exist_ok=True)
    for family in sys.argv[1:] or list(FAMILIES):
        data = FAMILIES[family]()
        path = OUT / f"{family}.json"
        path.write_text(render(data), encoding="utf-8")
        print(f"{path.relative_to(REPO)}: {len(data['cases'])} cases")


if __name__ == "__main__":
    main()
