"""The bundled SmolLM2-135M-Instruct: the offline LLM reranker and layer-cutoff model, on its real weights."""

from __future__ import annotations

import pytest

from flagdemo.models.rerankers import FlagAutoReranker, FlagLLMReranker, layer_sweep, reranker_preset

# Twelve fixed questions, each with its answer passage; the unrelated passage is another question's answer.
FACTS = [
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("How many legs does a spider have?", "Spiders are arachnids with eight legs and two body segments."),
    ("Who wrote Romeo and Juliet?", "Romeo and Juliet is a tragedy written by William Shakespeare."),
    ("What do bees make?", "Honey bees produce honey from the nectar of flowers."),
    ("When did World War II end?", "World War II ended in 1945 with the surrender of Germany and Japan."),
    ("What is the boiling point of water?", "At sea level, water boils at 100 degrees Celsius."),
    ("Which planet is known as the Red Planet?", "Mars is often called the Red Planet because of its reddish colour."),
    ("What do pandas eat?", "Giant pandas feed almost entirely on bamboo shoots and leaves."),
    ("How does photosynthesis work?", "Photosynthesis converts light energy into chemical energy in plants."),
    ("Who painted the Mona Lisa?", "The Mona Lisa was painted by Leonardo da Vinci in the early 16th century."),
    ("What is the largest ocean?", "The Pacific Ocean is the largest and deepest ocean on Earth."),
    ("How fast does light travel?", "Light travels at about 300,000 kilometres per second in a vacuum."),
]


def relevant_and_unrelated_pairs():
    pairs = []
    for index, (question, answer) in enumerate(FACTS):
        pairs += [(question, answer), (question, FACTS[(index + 5) % len(FACTS)][1])]
    return pairs


@pytest.mark.slow
def test_lens_at_layer_30_equals_flagllmreranker(smollm2_llm, smollm2_lens):
    pairs = relevant_and_unrelated_pairs()[:6]
    assert smollm2_lens.num_layers == 30 and smollm2_lens.method == "logit-lens"
    llm = smollm2_llm.compute_score(pairs)
    lens = smollm2_lens.compute_score(pairs, cutoff_layers=30)
    assert lens == pytest.approx(llm, abs=1e-5), f"lens {lens} vs FlagLLMReranker {llm}"
    sweep = layer_sweep(smollm2_llm, pairs, layers=[10, 20, 30])
    assert sweep.scores[-1].tolist() == pytest.approx(llm, abs=1e-5)


@pytest.mark.slow
def test_relevant_passages_outrank_unrelated_ones_with_the_smollm2_preset():
    reranker = FlagAutoReranker.from_finetuned("SmolLM2-135M-Instruct", devices="cpu")
    assert isinstance(reranker, FlagLLMReranker)
    assert reranker.prompt == reranker_preset("SmolLM2-135M-Instruct")["prompt"]
    scores = reranker.compute_score(relevant_and_unrelated_pairs())
    rows = [
        f"{question[:34]:34}  relevant {scores[2 * i]:+.3f}  unrelated {scores[2 * i + 1]:+.3f}"
        for i, (question, _) in enumerate(FACTS)
    ]
    wins = sum(scores[2 * i] > scores[2 * i + 1] for i in range(len(FACTS)))
    report = "\n".join(rows) + f"\nrelevant ranked first for {wins} of {len(FACTS)} questions"
    print(report)
    # SmolLM2-135M is a weak zero-shot judge: this pins the quality measured when the preset was chosen (10/12);
    # FlagEmbedding's default prompt gets 5/12 on the same pairs, so the assertion can and does fail for it.
    assert wins >= 9, report
