"""The Compare tab's default comparison, checked number by number against sources that share no code with flagdemo.

Its defaults: the app's embedder (MiniLM) at its last layer (A) against its layer 3 (B), k = 10, all 48 labelled
queries. Here plain transformers computes every query-passage cosine at both layers (mean pooling, as MiniLM's
sentence-transformers config says; weights rounded to fp16, as FlagEmbedding's default loads them), ir-measures
(trec_eval) computes the metrics of the resulting rankings, and the nDCG@10 of MiniLM's last layer published in
docs/teaching.md must come out.
"""

from __future__ import annotations

import ir_measures
import numpy as np
import pandas as pd
import pytest
import torch
from ir_measures import AP, RR, R, nDCG
from transformers import AutoModel, AutoTokenizer

from flagdemo.analysis import evaluation
from flagdemo.data.datasets import load_retrieval_set
from flagdemo.engine import Engine
from flagdemo.models import catalog
from flagdemo.models.sources import bundled_minilm_dir

MODEL = catalog.MINILM_KEY
K = 10
LAYER_B = 3
README_NDCG10 = 0.838  # docs/teaching.md, "Default models on the labelled set": all-MiniLM-L6-v2 retrieval


@pytest.fixture(scope="module")
def labelled():
    return load_retrieval_set()


@pytest.fixture(scope="module")
def comparison(labelled):
    """What the Compare tab computes with its default inputs: two retrieval runs, then the comparison."""
    engine = Engine(embedder=MODEL)
    run_a, run_b = engine.retrieval_runs([(MODEL, -1, "A"), (MODEL, LAYER_B, "B")], labelled, K)
    return evaluation.compare_runs(run_a, run_b, K, names=("A", "B")), run_a, run_b


@pytest.fixture(scope="module")
def plain_scores(labelled) -> dict[str, np.ndarray]:
    """Cosine of every query with every passage from plain transformers: masked mean of a layer's hidden states."""
    assert Engine.default_instruction(MODEL, "query") == ""  # MiniLM has no query instruction to add
    tokenizer = AutoTokenizer.from_pretrained(bundled_minilm_dir())
    # FlagEmbedding's default use_fp16=True on CPU: weights loaded in fp16, then computed in fp32 (as the app does)
    model = AutoModel.from_pretrained(bundled_minilm_dir(), dtype=torch.float16).float().eval()

    def embed(texts: list[str], layer: int) -> np.ndarray:
        rows = []
        for start in range(0, len(texts), 32):
            batch = tokenizer(texts[start : start + 32], padding=True, truncation=True, max_length=512,
                              return_tensors="pt")  # fmt: skip
            with torch.inference_mode():
                states = model(**batch, output_hidden_states=True).hidden_states[layer]
            mask = batch["attention_mask"].unsqueeze(-1).float()
            rows.append(((states * mask).sum(dim=1) / mask.sum(dim=1)).double().numpy())
        vectors = np.concatenate(rows)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    queries, passages = labelled.queries["text"].tolist(), labelled.passages["text"].tolist()
    return {name: embed(queries, layer) @ embed(passages, layer).T for name, layer in (("A", -1), ("B", LAYER_B))}


def reference_metrics(scores: np.ndarray, labelled) -> pd.DataFrame:
    """Per-query nDCG@10, RR (cut at 10 below), Recall@10 and AP from ir-measures on the full score matrix."""
    query_ids, passage_ids = labelled.queries["id"].tolist(), labelled.passages["id"].tolist()
    run = {q: dict(zip(passage_ids, scores[i].tolist(), strict=True)) for i, q in enumerate(query_ids)}
    rows: dict[str, dict[str, float]] = {}
    for result in ir_measures.iter_calc([nDCG @ K, RR, R @ K, AP], labelled.judgements, run):
        rows.setdefault(result.query_id, {})[str(result.measure)] = result.value
    frame = pd.DataFrame.from_dict(rows, orient="index").loc[query_ids]
    frame["RR@10"] = frame["RR"].where(frame["RR"] >= 1 / K, 0.0)
    return frame


def test_the_runs_scores_are_plain_transformers_cosines(comparison, plain_scores, labelled):
    _, run_a, run_b = comparison
    row_of = {q: i for i, q in enumerate(labelled.queries["id"])}
    column_of = {p: j for j, p in enumerate(labelled.passages["id"])}
    for name, run in (("A", run_a.run), ("B", run_b.run)):
        expected = plain_scores[name][run["query_id"].map(row_of), run["passage_id"].map(column_of)]
        np.testing.assert_allclose(run["score"].to_numpy(), expected, atol=1e-5, err_msg=f"run {name}")
    assert not np.allclose(plain_scores["A"], plain_scores["B"], atol=1e-2)  # layer 3 is not the last layer


def test_the_comparison_metrics_are_ir_measures_on_the_same_scores(comparison, plain_scores, labelled):
    result, _, _ = comparison
    per_query = result.per_query.set_index("query_id").loc[labelled.queries["id"]]
    assert len(per_query) == 48
    for name in ("A", "B"):
        reference = reference_metrics(plain_scores[name], labelled)
        for ours, theirs in ((f"nDCG@{K}", f"nDCG@{K}"), (f"MRR@{K}", "RR@10"), (f"Recall@{K}", f"R@{K}"),
                             ("MAP", "AP")):  # fmt: skip
            np.testing.assert_allclose(
                per_query[f"{ours} {name}"], reference[theirs], atol=1e-9, err_msg=f"{ours} of {name}"
            )
    summary = result.summary.set_index("metric")
    reference_a, reference_b = (reference_metrics(plain_scores[n], labelled)[f"nDCG@{K}"] for n in ("A", "B"))
    assert summary.loc[f"nDCG@{K}", "A"] == pytest.approx(reference_a.mean(), abs=1e-9)
    assert summary.loc[f"nDCG@{K}", "B"] == pytest.approx(reference_b.mean(), abs=1e-9)
    differences = reference_b - reference_a
    assert summary.loc[f"nDCG@{K}", "B better"] == int((differences > 1e-12).sum())
    assert summary.loc[f"nDCG@{K}", "A better"] == int((differences < -1e-12).sum())


def test_the_last_layer_scores_what_the_readme_publishes(comparison):
    result, _, _ = comparison
    assert round(result.summary.set_index("metric").loc[f"nDCG@{K}", "A"], 3) == README_NDCG10
