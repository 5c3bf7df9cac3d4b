"""Golden parity with LM_Cocktail 0.0.4: replay tests/cocktail/golden_cocktail.json against flagdemo.training.cocktail.

The goldens come from golden/make_golden_cocktail.py, run with LM_Cocktail itself in the golden environment. Merged
tensors must be bit-identical (sha256 per tensor); data-derived losses agree within a relative 1e-5, and the weights
within what that loss difference can move a softmax.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from tolerances import LOSS_RTOL, weight_tolerance
from variants import VARIANTS, build_variant, parameter_sha256, tensor_sha256

from flagdemo.errors import InvalidInputError
from flagdemo.training import cocktail

GOLDEN = json.loads((Path(__file__).parent / "golden_cocktail.json").read_text(encoding="utf-8"))
CASES = {case["id"]: case for case in GOLDEN["cases"]}


@pytest.fixture(scope="module")
def model_paths(tiny_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    paths = {name: tiny_dir / name for name in ("bert-embedder", "bert-cross-encoder", "llama-decoder")}
    paths |= {name: build_variant(tiny_dir, name, root) for name in VARIANTS}
    return paths


def test_variants_and_tiny_models_are_the_ones_the_goldens_used(model_paths, tiny_dir):
    manifest = json.loads((tiny_dir / "MANIFEST.json").read_text(encoding="utf-8"))
    for name, expected in GOLDEN["header"]["tiny_parameter_sha256"].items():
        assert manifest[name]["parameter_sha256"] == expected, f"tests/assets/tiny/{name} changed: run make golden"
    for name, expected in GOLDEN["header"]["variant_parameter_sha256"].items():
        assert parameter_sha256(model_paths[name]) == expected, f"variant {name} differs from the golden run's"


def assert_same_state_dict(model, expected: dict) -> None:
    actual = model.state_dict()
    assert set(actual) == set(expected), f"keys differ: {sorted(set(actual) ^ set(expected))[:5]}"
    mismatched = []
    for name, record in expected.items():
        tensor = actual[name]
        assert str(tensor.dtype).removeprefix("torch.") == record["dtype"], name
        if tensor_sha256(tensor) != record["sha256"]:
            flat = tensor.detach().reshape(-1)
            worst = max(abs(flat[index].item() - value) for index, value in record["samples"])
            mismatched.append(f"{name} (sampled max abs diff {worst:.3g})")
    assert not mismatched, f"{len(mismatched)} tensors not bit-identical: {mismatched[:5]}"


@pytest.mark.parametrize("case_id", ["encoder-three", "reranker-two", "decoder-two"])
def test_mix_models_gives_lm_cocktails_tensors_bit_for_bit(case_id, model_paths):
    case = CASES[case_id]
    names = [str(model_paths[name]) for name in case["models"]]
    model = cocktail.mix_models(names, case["model_type"], case["weights"])
    assert type(model).__name__ == {"encoder": "BertModel", "reranker": "BertForSequenceClassification",
                                    "decoder": "LlamaForCausalLM"}[case["model_type"]]  # fmt: skip
    assert model.cocktail_weights == case["weights"]
    assert_same_state_dict(model, case["state_dict"])


def test_weights_summing_to_half_are_refused_where_lm_cocktail_accepted_them(model_paths):
    case = CASES["encoder-sum-half"]
    assert case["accepted"] is True
    names = [str(model_paths[name]) for name in case["models"]]
    with pytest.raises(InvalidInputError, match=r"sum to 0\.5; they must sum to 1"):
        cocktail.mix_models(names, "encoder", case["weights"])


@pytest.mark.parametrize("case_id", ["encoder-data-exact-negatives", "encoder-data-sampled", "decoder-data"])
def test_mix_models_with_data_gives_lm_cocktails_weights_and_tensors(case_id, model_paths):
    case = CASES[case_id]
    names = [str(model_paths[name]) for name in case["models"]]
    if case["model_type"] != "decoder":
        groups = cocktail.sample_groups(case["examples"], case["kwargs"]["neg_number"], case["seed"])
        assert [group[1:] for _, group in groups] == case["negatives_drawn"]
    # positional data, as LM_Cocktail 0.0.4 must be called (its keyword is spelled example_ata)
    model = cocktail.mix_models_with_data(names, case["model_type"], case["examples"], seed=case["seed"],
                                          **case["kwargs"])  # fmt: skip
    assert model.cocktail_losses == pytest.approx(case["losses"], rel=LOSS_RTOL, abs=0)
    loss_change = max(abs(a - b) for a, b in zip(model.cocktail_losses, case["losses"], strict=True))
    default = inspect.signature(cocktail.mix_models_with_data).parameters["temperature"].default
    temperature = case["kwargs"].get("temperature", default)
    tolerances = weight_tolerance(case["weights"], loss_change, temperature)
    for weight, expected, tolerance in zip(model.cocktail_weights, case["weights"], tolerances, strict=True):
        assert abs(weight - expected) <= tolerance, (model.cocktail_weights, case["weights"], tolerances)
    if model.cocktail_weights == case["weights"]:
        assert_same_state_dict(model, case["state_dict"])
    exact = cocktail.mix_models(names, case["model_type"], case["weights"])
    assert_same_state_dict(exact, case["state_dict"])


def test_lm_cocktail_saves_cls_pooling_for_every_encoder_and_flagdemo_keeps_the_models_own(model_paths, tmp_path):
    case = CASES["encoder-saved"]
    assert case["pooling_config"]["pooling_mode"] == "cls"
    assert {"modules.json", "1_Pooling/config.json", "model.safetensors"} <= set(case["output_files"])
    names = [str(model_paths["bert-embedder"]), str(model_paths["bert-embedder-a"])]
    cocktail.mix_models(names, "encoder", [0.5, 0.5], output_path=str(tmp_path / "merged"))
    saved = set(str(p.relative_to(tmp_path / "merged")) for p in (tmp_path / "merged").rglob("*") if p.is_file())
    assert {"modules.json", "1_Pooling/config.json", "model.safetensors", "cocktail.json"} <= saved
