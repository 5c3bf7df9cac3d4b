"""flagdemo.training.finetune: FlagEmbedding's embedder objective, seeded and deterministic, saved so that
FlagAutoModel and sentence-transformers both load the result."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from flagdemo.errors import EmptyInputError, InvalidInputError
from flagdemo.training import finetune

EXAMPLES = [
    {"query": "how do bees make honey", "pos": ["Bees turn nectar into honey by evaporating its water."],
     "neg": ["A bee sting can swell for a day.", "Honey cake needs a slow oven."]},
    {"query": "why is the sea salty", "pos": ["Rivers carry dissolved minerals into the sea, where they stay."],
     "neg": ["Salt roads once crossed the Alps."]},
    {"query": "what is a prime number", "pos": ["A prime number has exactly two divisors: one and itself."],
     "neg": ["Prime time television draws the largest audiences.", "Primers prepare walls for paint.",
             "Numbers on a clock face run to twelve."]},
]  # fmt: skip
TINY_SETTINGS = {"batch_size": 2, "train_group_size": 3, "epochs": 2, "learning_rate": 1e-3}


def test_in_batch_contrastive_loss_is_the_cross_entropy_over_every_passage_of_the_batch():
    generator = torch.Generator().manual_seed(0)
    queries = F.normalize(torch.randn(2, 4, generator=generator), dim=-1)
    passages = F.normalize(torch.randn(6, 4, generator=generator), dim=-1)
    scores = (queries @ passages.T / 0.02).tolist()
    expected = []
    for row, target in ((0, 0), (1, 3)):  # query i's positive is passage i * group_size
        log_sum = np.log(np.sum(np.exp(np.array(scores[row]))))
        expected.append(log_sum - scores[row][target])
    assert finetune.contrastive_loss(queries, passages, 0.02).item() == pytest.approx(np.mean(expected), rel=1e-5)


def test_groups_are_one_positive_then_negatives_repeated_when_there_are_too_few():
    group = finetune.sample_group(EXAMPLES[1], 4, random.Random(0))
    assert group[0] == EXAMPLES[1]["pos"][0]
    assert group[1:] == ["Salt roads once crossed the Alps."] * 3
    group = finetune.sample_group(EXAMPLES[2], 3, random.Random(0))
    assert len(group) == 3 and len(set(group[1:])) == 2 and set(group[1:]) <= set(EXAMPLES[2]["neg"])


def test_training_is_seeded_deterministic_and_reports_progress(tiny_dir, tmp_path):
    model = str(tiny_dir / "bert-embedder")
    steps = []
    first = finetune.finetune(model, EXAMPLES, tmp_path / "a", seed=3, progress=lambda *s: steps.append(s),
                              **TINY_SETTINGS)  # fmt: skip
    again = finetune.finetune(model, EXAMPLES, tmp_path / "b", seed=3, **TINY_SETTINGS)
    other = finetune.finetune(model, EXAMPLES, tmp_path / "c", seed=4, **TINY_SETTINGS)
    assert first.steps == 4 and [s[:2] for s in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [s[2] for s in steps] == first.losses and all(np.isfinite(first.losses))
    assert first.losses == again.losses
    assert first.losses != other.losses
    weights_a = load_file(str(tmp_path / "a" / "model.safetensors"))
    weights_b = load_file(str(tmp_path / "b" / "model.safetensors"))
    base = load_file(str(tiny_dir / "bert-embedder" / "model.safetensors"))
    assert all(torch.equal(weights_a[name], weights_b[name]) for name in weights_a)
    assert not torch.equal(weights_a["encoder.layer.0.attention.self.query.weight"],
                           base["encoder.layer.0.attention.self.query.weight"])  # fmt: skip
    record = json.loads((tmp_path / "a" / "finetune.json").read_text())
    assert record["losses"] == first.losses and record["settings"]["temperature"] == 0.02


def test_training_leaves_the_callers_random_state_alone(tiny_dir, tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    finetune.finetune(str(tiny_dir / "bert-embedder"), EXAMPLES, tmp_path / "a", max_steps=1, **TINY_SETTINGS)
    assert torch.equal(torch.rand(3), expected)


def test_the_bundled_minilm_finetunes_and_both_loaders_read_the_result(tmp_path):
    from sentence_transformers import SentenceTransformer

    from flagdemo import FlagAutoModel

    output = tmp_path / "minilm-tuned"
    result = finetune.finetune("all-MiniLM-L6-v2", EXAMPLES, output, epochs=2, batch_size=3, train_group_size=2)
    assert result.pooling_method == "mean" and result.steps == 2
    texts = ["honey comes from nectar", "The sea keeps the salt rivers bring."]
    tuned = FlagAutoModel.from_finetuned(str(output), model_class="encoder-only-base", pooling_method="mean",
                                         use_fp16=False).encode(texts)  # fmt: skip
    by_sentence_transformers = SentenceTransformer(str(output), device="cpu").encode(texts)
    np.testing.assert_allclose(tuned, by_sentence_transformers, atol=1e-5)
    base = FlagAutoModel.from_finetuned("all-MiniLM-L6-v2", use_fp16=False).encode(texts)
    assert np.abs(tuned - base).max() > 1e-4  # the weights really changed


@pytest.mark.parametrize(
    ("lines", "error", "message"),
    [
        (['{"query": "q", "pos": ["p"], "neg": ["n"]}', "{not json"], InvalidInputError, "Line 2 .* not valid JSON"),
        (['{"query": "q", "pos": [], "neg": ["n"]}'], InvalidInputError, "example 1 needs 'pos'"),
        (['{"query": "q", "pos": ["p"]}'], InvalidInputError, "example 1 needs 'neg'"),
        (['{"query": "", "pos": ["p"], "neg": ["n"]}'], InvalidInputError, "example 1 needs a non-empty 'query'"),
        (["[1, 2]"], InvalidInputError, "example 1 is not a JSON object"),
        (["", "  "], EmptyInputError, "no examples"),
    ],
)
def test_bad_training_files_get_sentences(tmp_path, lines, error, message):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(error, match=message):
        finetune.read_training_file(path)


def test_bad_settings_get_sentences(tiny_dir, tmp_path):
    with pytest.raises(InvalidInputError, match="train_group_size must be a whole number ≥ 2"):
        finetune.finetune(str(tiny_dir / "bert-embedder"), EXAMPLES, tmp_path, train_group_size=1)
    with pytest.raises(InvalidInputError, match="Unknown fine-tuning setting"):
        finetune.finetune(str(tiny_dir / "bert-embedder"), EXAMPLES, tmp_path, learning_rat=1e-5)
