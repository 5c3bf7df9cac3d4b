"""flagdemo.training.cocktail beyond LM_Cocktail: two-sided weight check, seeded negatives, reranker data weights,
saving with the model's own pooling, weights returned with the model, and the merge curve."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tolerances import LOSS_RTOL, weight_tolerance
from variants import build_variant

from flagdemo.errors import EmptyInputError, InvalidInputError
from flagdemo.training import blend, checkpoint, cocktail

EXAMPLES = [
    {"query": f"question {i}", "pos": [f"answer {i}", "spare"], "neg": [f"wrong {i}.{j}" for j in range(5)]}
    for i in range(5)
]


@pytest.fixture(scope="module")
def variants(tiny_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cocktail-variants")
    names = ("bert-embedder-a", "bert-cross-encoder-a")
    return {name: str(build_variant(tiny_dir, name, root)) for name in names}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([0.6, 0.6], "sum to 1.2; they must sum to 1"),
        ([0.3, 0.3], "sum to 0.6; they must sum to 1"),
        ([1.0], "2 models but 1 weights"),
        ([0.5, float("nan")], r"weights\[1\] must be a finite number"),
        ([0.5, "0.5"], r"weights\[1\] must be a finite number"),
    ],
)
def test_weights_are_checked_on_both_sides_with_a_sentence(weights, message):
    with pytest.raises(InvalidInputError, match=message):
        cocktail.check_weights(weights, 2)


def test_weights_within_a_thousandth_of_one_pass():
    assert cocktail.check_weights([0.7, 0.3004], 2) == [0.7, 0.3004]
    assert cocktail.check_weights([1.5, -0.5], 2) == [1.5, -0.5]  # extrapolation is allowed, as in LM_Cocktail
    assert cocktail.check_weights(np.array([0.25, 0.75], dtype=np.float32).tolist(), 2) == [0.25, 0.75]
    assert cocktail.check_weights([np.float32(0.25), np.float32(0.75)], 2) == [0.25, 0.75]


def test_merge_sums_floats_in_order_and_copies_integer_buffers_from_the_last_model():
    first = {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([0, 1])}
    second = {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([5, 6])}
    merged = cocktail.merge_state_dicts([first, second], [0.25, 0.75])
    assert torch.equal(merged["w"], torch.tensor([2.5, 5.0]))
    assert torch.equal(merged["ids"], torch.tensor([5, 6]))


def test_models_of_different_shapes_are_refused_with_a_sentence():
    with pytest.raises(InvalidInputError, match="do not share one architecture: parameter 'w' has shape"):
        cocktail.merge_state_dicts([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}], [0.5, 0.5])
    with pytest.raises(InvalidInputError, match="parameter 'w' is missing"):
        cocktail.merge_state_dicts([{"w": torch.zeros(2)}, {"v": torch.zeros(2)}], [0.5, 0.5])


def test_negatives_are_seeded_and_too_few_is_a_sentence():
    first = cocktail.sample_groups(EXAMPLES, 3, seed=1)
    assert first == cocktail.sample_groups(EXAMPLES, 3, seed=1)
    assert first != cocktail.sample_groups(EXAMPLES, 3, seed=2)
    assert all(group[0] == f"answer {i}" and len(group) == 4 for i, (_, group) in enumerate(first))
    with pytest.raises(InvalidInputError, match="Example 0 has 5 negatives but neg_number is 7"):
        cocktail.sample_groups(EXAMPLES, 7, seed=1)


def test_bad_arguments_get_sentences(tiny_dir):
    model = str(tiny_dir / "bert-embedder")
    with pytest.raises(InvalidInputError, match="model_type must be one of encoder, decoder, reranker"):
        cocktail.mix_models([model], "embedder", [1.0])
    with pytest.raises(EmptyInputError, match="example_data is empty"):
        cocktail.mix_models_with_data([model], "encoder", [])
    with pytest.raises(InvalidInputError, match="Example 0 must be a dict with the keys input, output"):
        cocktail.mix_models_with_data([model], "decoder", EXAMPLES)
    with pytest.raises(InvalidInputError, match="not both"):
        cocktail.mix_models_with_data([model], "encoder", EXAMPLES, example_ata=EXAMPLES)
    with pytest.raises(InvalidInputError, match="temperature must be a positive number"):
        cocktail.mix_models_with_data([model], "encoder", EXAMPLES, temperature=0, neg_number=2)


def test_lm_cocktails_misspelt_keyword_is_accepted(tiny_dir, variants):
    names = [str(tiny_dir / "bert-embedder"), variants["bert-embedder-a"]]
    by_position = cocktail.mix_models_with_data(names, "encoder", EXAMPLES, neg_number=2)
    by_keyword = cocktail.mix_models_with_data(names, "encoder", example_ata=EXAMPLES, neg_number=2)
    assert by_position.cocktail_weights == by_keyword.cocktail_weights
    assert sum(by_position.cocktail_weights) == pytest.approx(1.0)


def test_reranker_data_weights_come_from_the_grouped_cross_entropy(tiny_dir, variants):
    names = [str(tiny_dir / "bert-cross-encoder"), variants["bert-cross-encoder-a"]]
    calls = []
    model = cocktail.mix_models_with_data(
        names, "reranker", EXAMPLES, neg_number=3, temperature=0.05, progress=lambda *args: calls.append(args)
    )
    assert calls == [(1, 2), (2, 2)]
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(names[0])
    groups = cocktail.sample_groups(EXAMPLES, 3, cocktail.DEFAULT_SEED)
    expected = []
    for name in names:
        reference = AutoModelForSequenceClassification.from_pretrained(name).eval()
        batch_losses = []
        for start in range(0, len(groups), 2):  # batch_size=2 examples, each scored pair by pair
            logits = []
            for query, passages in groups[start : start + 2]:
                with torch.no_grad():
                    row = [reference(**tokenizer(query, p, return_tensors="pt")).logits[0, 0] for p in passages]
                logits.append(torch.stack(row))
            batch_losses.append(F.cross_entropy(torch.stack(logits), torch.zeros(len(logits), dtype=torch.long)))
        expected.append(float(sum(batch_losses) / len(batch_losses)))
    assert model.cocktail_losses == pytest.approx(expected, rel=LOSS_RTOL, abs=0)
    weights = torch.softmax(-torch.tensor(expected) / 0.05, -1).tolist()
    loss_change = max(abs(a - b) for a, b in zip(model.cocktail_losses, expected, strict=True))
    for weight, want, tolerance in zip(model.cocktail_weights, weights, weight_tolerance(weights, loss_change, 0.05),
                                       strict=True):  # fmt: skip
        assert abs(weight - want) <= tolerance
    assert (model.cocktail_weights[0] > model.cocktail_weights[1]) == (expected[0] < expected[1])


def test_saving_keeps_the_models_own_mean_pooling_and_records_the_weights(tiny_dir, variants, tmp_path):
    from sentence_transformers import SentenceTransformer

    from flagdemo.models.embedders import FlagModel
    from flagdemo.models.sources import resolve_source

    mean_pooled = tmp_path / "mean-pooled"
    mean_pooled.mkdir()
    for file in (tiny_dir / "bert-embedder").iterdir():
        (mean_pooled / file.name).write_bytes(file.read_bytes())
    base = cocktail.load_for_merging(resolve_source(str(mean_pooled)), "encoder")
    checkpoint.write_sentence_transformers_files(resolve_source(str(tiny_dir / "bert-embedder")), mean_pooled, "mean",
                                               base.config)  # fmt: skip
    output = tmp_path / "merged"
    model = cocktail.mix_models([str(mean_pooled), variants["bert-embedder-a"]], "encoder", [0.7, 0.3], str(output))
    assert model.cocktail_weights == [0.7, 0.3]
    pooling = json.loads((output / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] is True
    assert pooling["pooling_mode_cls_token"] is False
    record = json.loads((output / "cocktail.json").read_text())
    assert record["weights"] == [0.7, 0.3]
    assert record["pooling_method"] == "mean"
    texts = ["a merged model keeps its pooling", "short"]
    by_sentence_transformers = SentenceTransformer(str(output), device="cpu").encode(texts)
    by_flagdemo = FlagModel(str(output), pooling_method="mean", use_fp16=False).encode(texts)
    np.testing.assert_allclose(by_sentence_transformers, by_flagdemo, atol=1e-5)
    by_cls = FlagModel(str(output), pooling_method="cls", use_fp16=False).encode(texts)
    assert np.abs(by_sentence_transformers - by_cls).max() > 1e-2  # CLS (LM_Cocktail's choice) is another model


def test_merge_curve_ends_are_the_base_and_the_finetuned_model_exactly(tiny_dir, variants):
    from flagdemo.analysis.evaluation import retrieve
    from flagdemo.data.datasets import load_retrieval_set
    from flagdemo.models.embedders import FlagModel

    data = load_retrieval_set().subset(topics=["cooking", "travel", "history"], restrict_passages=True)
    base, tuned = str(tiny_dir / "bert-embedder"), variants["bert-embedder-a"]
    seen = []
    curve = blend.merge_curve(base, tuned, ["cooking"], [0.0, 0.5, 1.0], retrieval_set=data,
                                 progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert list(curve.columns) == ["weight", "in-domain nDCG@10", "out-of-domain nDCG@10", "all nDCG@10",
                                   "in-domain queries", "out-of-domain queries"]  # fmt: skip
    assert curve["in-domain queries"].tolist() == [6, 6, 6]
    assert curve["out-of-domain queries"].tolist() == [12, 12, 12]
    for weight, folder in ((0.0, base), (1.0, tuned)):
        per_query = retrieve(FlagModel(folder, use_fp16=False), data).per_query
        row = curve[curve["weight"] == weight].iloc[0]
        inside = per_query["topic"] == "cooking"
        assert row["in-domain nDCG@10"] == pytest.approx(per_query.loc[inside, "nDCG@10"].mean(), abs=1e-12)
        assert row["out-of-domain nDCG@10"] == pytest.approx(per_query.loc[~inside, "nDCG@10"].mean(), abs=1e-12)
    assert curve.iloc[1]["all nDCG@10"] not in (curve.iloc[0]["all nDCG@10"], curve.iloc[2]["all nDCG@10"])


def test_merge_curve_needs_in_and_out_of_domain_topics(tiny_dir):
    model = str(tiny_dir / "bert-embedder")
    with pytest.raises(InvalidInputError, match=r"leave at least one out.*sewing is not one of them"):
        blend.merge_curve(model, model, ["sewing"])
    with pytest.raises(InvalidInputError, match="Choose at least one in-domain topic"):
        blend.merge_curve(model, model, [])


def test_tune_and_blend_holds_examples_back_for_the_data_weight_and_marks_it_on_the_curve(tiny_dir, tmp_path):
    examples = [
        {"query": f"cooking question {i}", "pos": [f"cooking answer {i}"], "neg": [f"other {i}", f"more {i}"]}
        for i in range(11)
    ]
    stages = []
    run = blend.tune_and_blend(
        str(tiny_dir / "bert-embedder"),
        examples,
        ["cooking"],
        tmp_path,
        held_out=3,
        weights=[0.0, 1.0],
        batch_size=4,
        progress=lambda fraction, message: stages.append((round(fraction, 3), message)),
    )
    assert run.finetuned.examples == 8 and run.finetuned.steps == 2 and run.held_out_examples == 3
    assert (tmp_path / "finetuned" / "model.safetensors").is_file()
    assert 0 < run.data_weight < 1 and len(run.data_losses) == 2
    assert run.data_weight == pytest.approx(cocktail.data_weights(run.data_losses, 5.0)[1])
    assert run.curve["data-derived"].sum() == 1
    assert run.curve.loc[run.curve["data-derived"], "weight"].item() == round(run.data_weight, 4)
    assert stages[0][0] == 0.25 and stages[-1] == (1.0, "Evaluating blend 3 of 3")
    with pytest.raises(InvalidInputError, match="has 3 examples; it needs more than the 8 held back"):
        blend.tune_and_blend(str(tiny_dir / "bert-embedder"), examples[:3], ["cooking"], tmp_path)
