"""Run LM_Cocktail 0.0.4 itself on the tiny models and write tests/cocktail/golden_cocktail.json.

Runs in the golden env (transformers 4.x). The models to merge are the committed tiny models plus seeded noisy copies
of them (tests/cocktail/variants.py builds the same bytes in both environments). Every case records the call, the
merged state dict (a sha256 per tensor, so the replay demands bit-identical tensors, plus a few values to show how far
off a mismatch is), and for ``mix_models_with_data`` the weights, each model's loss and the negatives it drew.

LM_Cocktail samples negatives with the unseeded global ``random``. To make the golden deterministic the script seeds
``random`` right before each call and records the draws LM_Cocktail really made (by wrapping ``random.sample``); the
replay passes the same number as flagdemo's ``seed``, whose ``random.Random(seed)`` draws the same sequence. One case
gives every example exactly ``neg_number`` negatives, so only their order depends on the draw.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import platform
import random
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import torch
import transformers

transformers.logging.set_verbosity_error()

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "assets" / "tiny"
OUT = REPO / "tests" / "cocktail" / "golden_cocktail.json"
sys.path.insert(0, str(REPO / "tests" / "cocktail"))

import LM_Cocktail  # noqa: E402
import LM_Cocktail.utils as cocktail_utils  # noqa: E402
from variants import VARIANTS, build_variant, parameter_sha256, tensor_sha256  # noqa: E402

SAMPLES_PER_TENSOR = 4

POOL = [
    ("How long should bread dough rise?", "Let the dough rise until it has doubled, about an hour in a warm room."),
    ("What is a comet made of?", "A comet is a loose ball of ice, dust and rock that grows a tail near the Sun."),
    ("Why water tomatoes at the base?", "Watering the soil, not the leaves, keeps tomato plants free of blight."),
    ("What does a firewall do?", "A firewall filters network traffic and blocks connections that break its rules."),
    ("How much should I save each month?", "Many people aim to save a tenth of their income before other spending."),
    ("Wie lange kocht ein Ei?", "Ein weiches Ei kocht etwa sechs Minuten, ein hartes etwa zehn Minuten."),
]


def encoder_examples(negatives: int) -> list[dict]:
    """Each query with its own passage as the positive and the first ``negatives`` other passages as negatives."""
    examples = []
    for index, (query, positive) in enumerate(POOL):
        others = [passage for other, (_, passage) in enumerate(POOL) if other != index]
        others += [f"{passage} (variant {index})" for passage in others]
        examples.append({"query": query, "pos": [positive], "neg": others[:negatives]})
    return examples


DECODER_EXAMPLES = [
    {"input": "Question: what colour is the sky? Answer:", "output": "blue"},
    {"input": "Translate to French: cat", "output": "chat"},
    {"input": "2 + 2 =", "output": "4, which is even."},
    {"input": "The capital of Germany is", "output": "Berlin"},
    {"input": "Name a planet:", "output": "Mars"},
]


def summarise(model: torch.nn.Module) -> dict:
    """sha256 and a few evenly spaced values of every tensor of the state dict."""
    tensors = {}
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().reshape(-1)
        positions = sorted({int(i) for i in torch.linspace(0, flat.numel() - 1, SAMPLES_PER_TENSOR).tolist()})
        tensors[name] = {
            "sha256": tensor_sha256(tensor),
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "samples": [[i, flat[i].item()] for i in positions],
        }
    return tensors


def run_quietly(function, *args, **kwargs):
    """LM_Cocktail prints its weights; keep the console readable."""
    with redirect_stdout(io.StringIO()):
        return function(*args, **kwargs)


def mix_case(case_id, models, model_type, weights, paths):
    model = run_quietly(LM_Cocktail.mix_models, [str(paths[m]) for m in models], model_type, weights)
    return {"id": case_id, "function": "mix_models", "models": models, "model_type": model_type,
            "weights": weights, "accepted": True, "state_dict": summarise(model)}  # fmt: skip


def data_case(case_id, models, model_type, examples, paths, *, seed, **kwargs):
    drawn, losses = [], []
    original_sample = random.sample
    loss_name = "llm_loss" if model_type == "decoder" else "embedder_loss"
    original_loss = getattr(cocktail_utils, loss_name)

    def recording_sample(population, k):
        result = original_sample(population, k)
        drawn.append(list(result))
        return result

    def recording_loss(**loss_kwargs):
        value = original_loss(**loss_kwargs)
        losses.append(value)
        return value

    random.sample = recording_sample
    setattr(cocktail_utils, loss_name, recording_loss)
    try:
        random.seed(seed)
        model = run_quietly(
            LM_Cocktail.mix_models_with_data, [str(paths[m]) for m in models], model_type, examples, **kwargs
        )
    finally:
        random.sample = original_sample
        setattr(cocktail_utils, loss_name, original_loss)
    weights = torch.softmax(-torch.FloatTensor(losses) / kwargs.get("temperature", 5.0), -1).numpy().tolist()
    return {"id": case_id, "function": "mix_models_with_data", "models": models, "model_type": model_type,
            "examples": examples, "kwargs": kwargs, "seed": seed, "negatives_drawn": drawn, "losses": losses,
            "weights": weights, "state_dict": summarise(model)}  # fmt: skip


def saved_files_case(paths) -> dict:
    """What LM_Cocktail writes for an encoder: which files, and the pooling it records (always CLS)."""
    with tempfile.TemporaryDirectory() as folder:
        run_quietly(
            LM_Cocktail.mix_models,
            [str(paths["bert-embedder"]), str(paths["bert-embedder-a"])],
            "encoder",
            [0.5, 0.5],
            output_path=folder,
        )
        pooling = json.loads((Path(folder) / "1_Pooling" / "config.json").read_text())
        files = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
    return {"id": "encoder-saved", "function": "mix_models", "output_files": files, "pooling_config": pooling}


def main() -> None:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as variants_root:
        paths = {name: TINY / name for name in ("bert-embedder", "bert-cross-encoder", "llama-decoder")}
        paths |= {name: build_variant(TINY, name, Path(variants_root)) for name in VARIANTS}
        cases = [
            mix_case("encoder-three", ["bert-embedder", "bert-embedder-a", "bert-embedder-b"], "encoder",
                     [0.5, 0.3, 0.2], paths),
            mix_case("reranker-two", ["bert-cross-encoder", "bert-cross-encoder-a"], "reranker", [0.6, 0.4], paths),
            mix_case("decoder-two", ["llama-decoder", "llama-decoder-a"], "decoder", [0.25, 0.75], paths),
            mix_case("encoder-sum-half", ["bert-embedder", "bert-embedder-a"], "encoder", [0.25, 0.25], paths),
            data_case("encoder-data-exact-negatives", ["bert-embedder", "bert-embedder-a", "bert-embedder-b"],
                      "encoder", encoder_examples(3), paths, seed=7, neg_number=3),
            data_case("encoder-data-sampled", ["bert-embedder", "bert-embedder-a"], "encoder", encoder_examples(7),
                      paths, seed=11, neg_number=4, temperature=0.5, batch_size=4, max_input_length=12),
            data_case("decoder-data", ["llama-decoder", "llama-decoder-a"], "decoder", DECODER_EXAMPLES, paths,
                      seed=3, temperature=1.0, batch_size=2, max_input_length=24),
            saved_files_case(paths),
        ]  # fmt: skip
        variant_hashes = {name: parameter_sha256(paths[name]) for name in VARIANTS}
    header = {
        "versions": {
            name: importlib.metadata.version(name)
            for name in ("LM_Cocktail", "torch", "transformers", "sentence-transformers")
        }
        | {"python": platform.python_version()},
        "variant_parameter_sha256": variant_hashes,
        "tiny_parameter_sha256": {
            name: json.loads((TINY / "MANIFEST.json").read_text())[name]["parameter_sha256"]
            for name in ("bert-embedder", "bert-cross-encoder", "llama-decoder")
        },
    }
    with OUT.open("w", encoding="utf-8") as handle:
        handle.write('{"header": ' + json.dumps(header) + ',\n "cases": [\n')
        handle.write(",\n".join("  " + json.dumps(case) for case in cases))
        handle.write("\n]}\n")
    print(f"wrote {len(cases)} cases to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
