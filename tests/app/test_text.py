"""Words on the page: plain language without internals, counts and numbers that read naturally, and a reranker
caveat that quotes what was measured."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flagdemo.ui.views import tables, text

MEASUREMENT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "reranker_effect.json"

# What a visitor must never read: environment variable names, Python mappings or sets, server paths, module files,
# snake_case identifiers, Python's None.
INTERNALS = {
    "environment variable": re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b"),
    "braces": re.compile(r"[{}]"),
    "path": re.compile(r"(^|[\s(])(/|~/|\./)\w"),
    "module file": re.compile(r"\w\.py\b"),
    "identifier": re.compile(r"\b[a-z]+_[a-z0-9_]+\b"),
    "None": re.compile(r"\bNone\b"),
}


def visitor_texts() -> dict[str, str]:
    texts = {"TITLE": text.TITLE, "INTRO": text.INTRO, "MODELS_HELP": text.MODELS_HELP}
    texts["ERROR_FALLBACK"] = text.ERROR_FALLBACK.format(action="reranking")
    texts["reranker_caveat"] = text.reranker_caveat()
    texts |= {f"tab_intro {tab}": text.tab_intro(tab) for tab in text.TAB_SUMMARIES}
    texts |= {f"how_to_read {view}": text.how_to_read(view) for view in text.HOW_TO_READ}
    texts["PCA"] = text.describe_projection("pca", {"explained_variance": [0.2345678901234, 0.1]})
    texts["UMAP"] = text.describe_projection("umap", {"n_neighbors": 15, "min_dist": 0.1, "seed": 42})
    texts["t-SNE"] = text.describe_projection("tsne", {"perplexity": 7.5, "seed": 0})
    return texts


@pytest.mark.parametrize("kind", sorted(INTERNALS))
def test_no_internals_in_what_visitors_read(kind):
    leaks = {name: INTERNALS[kind].findall(words) for name, words in visitor_texts().items()}
    assert {name: found for name, found in leaks.items() if found} == {}


def test_every_table_has_a_how_to_read_line_and_the_key_ideas_are_explained():
    assert set(tables.TABLE_WIDTH) <= set(text.HOW_TO_READ)
    everything = " ".join(text.HOW_TO_READ.values())
    for idea in ("cosine", "sigmoid", "logit", "Kendall τ", "nDCG@k", "MRR@k", "logit lens", "UMAP", "PCA", "cutoff"):
        assert idea in everything, idea
    assert text.how_to_read("rerank-tau").startswith("*How to read this:* Kendall τ")


def test_projection_settings_read_as_a_sentence():
    assert text.describe_projection("pca", {"explained_variance": [0.2345678901234, 0.1]}) == (
        "PCA: the axes keep 23.5% and 10.0% of the spread of the vectors."
    )
    assert text.describe_projection("umap", {"n_neighbors": 15, "min_dist": 0.1, "seed": 42, "metric": "cosine"}) == (
        "UMAP with 15 neighbours, minimum distance 0.1 and seed 42."
    )
    assert text.describe_projection("pca", {}) == "PCA."


def test_counts_times_and_sizes_read_naturally():
    assert text.plural(1, "text") == "1 text" and text.plural(3, "text") == "3 texts"
    assert text.plural(2, "query", "queries") == "2 queries"
    assert text.number(0.873456) == "0.873" and text.number(33.456) == "33.5" and text.number(1234.5678) == "1,235"
    assert text.duration(0.0123456) == "12.3 ms" and text.duration(2.34567) == "2.35 s"
    assert text.duration(185.2) == "3 min 5 s"
    assert text.megabytes(812.3456 * 2**20) == "812 MB" and text.megabytes(3.4 * 2**30) == "3.4 GB"


def test_labels_are_short_numbered_and_hover_text_is_wrapped():
    assert text.short_label("Which pets are playful and love to run", 26) == "Which pets are playful…"
    assert text.numbered_label(2, "The Eiffel Tower was built in Paris", 20) == "#3 The Eiffel Tower…"
    lines = text.wrapped("word " * 100, width=30, max_lines=3).split("<br>")
    assert len(lines) == 3 and all(len(line) <= 30 for line in lines) and lines[-1].endswith("…")


def test_reranker_caveat_quotes_the_measurement():
    measured = json.loads(MEASUREMENT.read_text())
    caveat = text.reranker_caveat()
    assert "small chat model, not a trained reranker" in caveat
    assert f"Measured on {measured['queries']} labelled questions from {measured['topics']} topics" in caveat
    assert f"bundled labelled set (the Compare tab's set, searching all {measured['passages']} of" in caveat
    assert f"top {measured['top_k']} passages of {measured['embedder']}" in caveat
    assert (measured["embedder nDCG@10"], measured["reranker nDCG@10"]) == text.RERANKER_EFFECT_NDCG
    assert (measured["embedder MRR@10"], measured["reranker MRR@10"]) == text.RERANKER_EFFECT_MRR
    assert (measured["queries"], measured["top_k"]) == (text.RERANKER_EFFECT_QUERIES, text.RERANKER_EFFECT_TOP_K)
    before, after = measured["embedder nDCG@10"], measured["reranker nDCG@10"]
    assert f"nDCG@10 went from {before:.2f} to {after:.2f}" in caveat
    assert f"MRR@10 from {measured['embedder MRR@10']:.2f} to {measured['reranker MRR@10']:.2f}" in caveat
    assert ("**worse**" if after < before else "**better**") in caveat
    assert measured["reranker"] == "SmolLM2-135M-Instruct"
