"""In-process handler tests on tiny models: what each tab returns, checked against the engine called directly."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import pytest

from flagdemo.analysis import metrics
from flagdemo.analysis.metrics import graded_metrics
from flagdemo.data import datasets
from flagdemo.engine import Engine, clean_lines
from flagdemo.models.embedders import FlagAutoModel
from flagdemo.models.rerankers import FlagAutoReranker
from flagdemo.ui import endpoints
from flagdemo.ui.inputs import parse_labelled_lines, parse_relevance
from flagdemo.ui.tabs import compare as compare_tab
from flagdemo.ui.views import tables, text


@pytest.fixture(scope="module")
def handlers(tiny_engine):
    return endpoints(tiny_engine)


@pytest.fixture(scope="module")
def tiny_embedder(tiny_engine):
    return FlagAutoModel.from_finetuned(tiny_engine.embedder, model_class="encoder-only-base")


# ---- Encode ---------------------------------------------------------------------------------------------------


def test_encode_default_example_matches_encode_corpus(handlers, tiny_embedder):
    table, summary, figure, tokens_md, timing_md, files = handlers.encode()
    lines = clean_lines(text.ENCODE_TEXTS)
    assert table["text"].tolist() == lines
    expected = tiny_embedder.encode_corpus(lines)
    saved = np.load(files[0])
    np.testing.assert_allclose(saved, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(table["norm"], 1.0, atol=1e-5)  # normalised by default
    np.testing.assert_allclose(table["dim 0"], expected[:, 0], atol=1e-4)  # shown with 4 decimals
    assert dict(summary.to_numpy())["dimensions"] == expected.shape[1]
    assert figure.data[0].type == "heatmap"
    assert "`[CLS]`" in tokens_md and "Text 1" in tokens_md
    assert "encoded 4 texts" in timing_md
    with open(files[2]) as handle:
        payload = json.load(handle)
    assert payload["texts"] == lines and np.allclose(payload["embeddings"], expected, atol=1e-6)
    assert pd.read_csv(files[1])["text"].tolist() == lines


def test_encode_query_mode_applies_the_edited_instruction(tiny_engine, handlers):
    lines = ["what is a cat", "capital of france"]
    reference = FlagAutoModel.from_finetuned(
        tiny_engine.embedder, model_class="encoder-only-base", query_instruction_for_retrieval="Find: "
    ).encode_queries(lines)
    *_, tokens_md, _, files = handlers.encode("\n".join(lines), mode="query", instruction="Find: ")
    np.testing.assert_allclose(np.load(files[0]), reference, atol=1e-6)
    assert tokens_md.split("\n\n", 1)[1].startswith("`[CLS]` `find` `:`")


def test_encode_raw_unnormalised_at_an_inner_layer(tiny_engine, handlers):
    table, *_, files = handlers.encode("one text\nanother text", mode="raw", normalize=False, layer=1)
    vectors = np.load(files[0])
    result = tiny_engine.encode(["one text", "another text"], model=tiny_engine.embedder, mode="raw", all_layers=True)
    # Layer 1 is pooled and normalised like the final layer, so only the layer (not normalisation flag) differs here.
    raw = tiny_engine.encode(
        ["one text", "another text"], model=tiny_engine.embedder, mode="raw", normalize=False, all_layers=True
    )
    np.testing.assert_allclose(vectors, raw.layer_embeddings[1], atol=1e-6)
    assert not np.allclose(vectors, result.embeddings)
    assert table["norm"].tolist() == pytest.approx(np.linalg.norm(vectors, axis=1).tolist(), rel=5e-4)  # 4 digits


def test_encode_reads_an_uploaded_csv_column(handlers, tmp_path):
    upload = tmp_path / "texts.csv"
    pd.DataFrame({"id": [1, 2, 3], "sentence": ["alpha", "beta", "gamma"]}).to_csv(upload, index=False)
    table, *_ = handlers.encode("ignored", str(upload), "sentence")
    assert table["text"].tolist() == ["alpha", "beta", "gamma"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"texts": "  \n "}, "There is no text to encode"),
        ({"max_length": 1}, "at least 2 tokens"),
        ({"model": "no/such/model"}, "does not exist"),
        ({"layer": 9}, "Layer 9 does not exist"),
    ],
)
def test_encode_errors_are_sentences(handlers, kwargs, message):
    with pytest.raises(gr.Error) as caught:
        handlers.encode(**kwargs)
    assert message in caught.value.message


def test_unexpected_errors_become_a_generic_sentence(tiny_engine, monkeypatch):
    from flagdemo.ui import build_demo

    def broken(*args, **kwargs):
        raise RuntimeError("internal detail that must not reach the user")

    engine = Engine(embedder=tiny_engine.embedder)
    monkeypatch.setattr(engine, "encode", broken)
    demo = build_demo(engine)
    encode_fn = next(fn for fn in demo.fns.values() if fn.api_name == "encode").fn
    with pytest.raises(gr.Error) as caught:
        encode_fn("some text")
    assert caught.value.message == text.ERROR_FALLBACK.format(action="encoding the texts")
    assert "internal detail" not in caught.value.message


# ---- Similarity -----------------------------------------------------------------------------------------------


def test_similarity_heatmap_is_queries_times_passages(handlers, tiny_embedder):
    heatmap, top, lexical, alignment, note = handlers.similarity(top_k=2)
    queries, passages = clean_lines(text.SIMILARITY_QUERIES), clean_lines(text.SIMILARITY_PASSAGES)
    expected = tiny_embedder.encode_queries(queries) @ tiny_embedder.encode_corpus(passages).T
    np.testing.assert_allclose(np.asarray(heatmap.data[0].z), expected, atol=1e-5)
    assert len(top) == 2 * len(queries)
    best = top.groupby("query", sort=False)["score"].first().to_numpy()
    np.testing.assert_allclose(best, expected.max(axis=1), atol=1e-4)
    assert "cosine similarities" in note
    assert len(lexical.data) == 0 and len(alignment.data) == 0  # message figures for a non-M3 model


def test_default_top_k_with_fewer_passages_lists_them_all_and_says_so(handlers):
    _, top, *_, note = handlers.similarity("a question", "an answer\nanother answer")  # top-3 is the default
    assert len(top) == 2
    assert "Top-k 3 is more than the 2 passages, so all 2 are used." in note
    _, top, *_, note = handlers.similarity("a question", "an answer\nanother answer", top_k=1)
    assert len(top) == 1 and "more than" not in note
    for absurd, message in ((0, "Top-k must be between 1 and 512, not 0"), (1e9, "between 1 and 512, not 1000000000")):
        with pytest.raises(gr.Error, match=message):
            handlers.similarity("a question", "an answer", top_k=absurd)


@pytest.mark.parametrize("mode", ["sparse", "colbert", "combined"])
def test_m3_scores_with_another_model_are_refused_not_replaced(handlers, mode):
    with pytest.raises(gr.Error, match=r"has only dense vectors\. Sparse, ColBERT and combined scores need a BGE-M3"):
        handlers.similarity(score_mode=mode)


def test_similarity_all_pairs_is_square_and_symmetric(handlers):
    heatmap, *_ = handlers.similarity("a cat\na dog\na car", all_pairs=True)
    z = np.asarray(heatmap.data[0].z)
    assert z.shape == (3, 3)
    np.testing.assert_allclose(z, z.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(z), 1.0, atol=1e-5)


def test_similarity_m3_combines_dense_sparse_and_colbert(tiny_engine, handlers, tiny_m3):
    outcome = tiny_engine.similarity(["hello world"], ["hello there", "cats sleep"], model=tiny_m3)
    assert outcome.is_m3
    heatmap, _, _, alignment, note = handlers.similarity(
        "hello world",
        "hello there\ncats sleep",
        model=tiny_m3,
        top_k=2,
        score_mode="combined",
        w_dense=1.0,
        w_sparse=0.5,
        w_colbert=0.25,
    )
    expected = (1.0 * outcome.dense + 0.5 * outcome.sparse + 0.25 * outcome.colbert) / 1.75
    np.testing.assert_allclose(np.asarray(heatmap.data[0].z), expected, atol=1e-6)
    assert "Combined = (1·dense + 0.5·sparse + 0.25·ColBERT) / 1.75" in note
    assert alignment.data[0].type == "heatmap"
    colbert = outcome.query_result.colbert_vecs[0] @ outcome.passage_result.colbert_vecs[0].T
    np.testing.assert_allclose(np.asarray(alignment.data[0].z), colbert, atol=1e-6)
    assert outcome.colbert[0, 0] == pytest.approx(colbert.max(axis=1).mean())
    colbert_only, *_ = handlers.similarity(
        "hello world", "hello there\ncats sleep", model=tiny_m3, top_k=2, score_mode="colbert"
    )
    np.testing.assert_allclose(np.asarray(colbert_only.data[0].z), outcome.colbert, atol=1e-6)


# ---- Rerank ---------------------------------------------------------------------------------------------------


def test_rerank_runs_every_method_and_matches_compute_score(tiny_engine, handlers):
    table, chart, tau, timings, messages = handlers.rerank()
    passages = clean_lines(text.RERANK_PASSAGES)
    pairs = [(text.RERANK_QUERY, p) for p in passages]
    llm = FlagAutoReranker.from_finetuned(tiny_engine.llm_reranker, model_class="decoder-only-base")
    # the screen shows 4 significant digits: within 5e-4 of the value, relatively
    np.testing.assert_allclose(table["LLM reranker score"], llm.compute_score(pairs), rtol=5e-4, atol=1e-6)
    cross = FlagAutoReranker.from_finetuned(tiny_engine.cross_encoder, model_class="encoder-only-base")
    np.testing.assert_allclose(table["cross-encoder score"], cross.compute_score(pairs), rtol=5e-4, atol=1e-6)
    layerwise = FlagAutoReranker.from_finetuned(tiny_engine.layerwise_reranker, model_class="decoder-only-layerwise")
    np.testing.assert_allclose(
        table["cutoff L3 score"], layerwise.compute_score(pairs, cutoff_layers=[3]), rtol=5e-4, atol=1e-6
    )
    methods = ["bi-encoder", "cross-encoder", "LLM reranker", "cutoff L3"]
    assert tau["method"].tolist() == methods
    assert [trace.x[0] for trace in chart.data] == ["bi-encoder"] * len(passages)
    for method in methods:
        assert sorted(table[f"{method} rank"]) == list(range(1, len(passages) + 1))
    assert timings["note"].tolist() == ["ok"] * 4
    rates = timings["tokens/s"].tolist()
    assert all(isinstance(rate, float) and rate > 0 for rate in rates), rates  # every method that ran has a rate
    assert messages == "All chosen methods ran."


def test_a_failing_method_reports_itself_while_the_others_run(handlers):
    table, chart, _, timings, messages = handlers.rerank(cross_encoder="no/such/reranker", layerwise_reranker="(none)")
    assert "cross-encoder score" not in table.columns
    assert "LLM reranker score" in table.columns and "bi-encoder score" in table.columns
    assert "**cross-encoder** (no/such/reranker) could not run" in messages
    failed = timings[timings["method"] == "cross-encoder"]
    assert "does not exist" in failed["note"].iloc[0]
    assert failed["tokens/s"].iloc[0] == tables.MISSING
    assert len(chart.data) == len(clean_lines(text.RERANK_PASSAGES))


def test_rerank_with_no_method_is_an_error(handlers):
    with pytest.raises(gr.Error, match="at least one method"):
        handlers.rerank(
            bi_encoder="(none)", cross_encoder="(none)", llm_reranker="(none)", layerwise_reranker="(none)"
        )


def test_rerank_cutoff_outside_the_model_is_reported(handlers):
    *_, timings, messages = handlers.rerank(cutoff_layer=40)
    assert "Layer 40 is not available" in messages
    assert (timings["note"] == "ok").sum() == 3


# ---- Layer sweep ----------------------------------------------------------------------------------------------


def test_layer_sweep_logit_lens_ends_at_the_llm_score(tiny_engine, handlers):
    figure, ranking, metric_table, note, kept = handlers.layer_sweep()
    passages = clean_lines(text.RERANK_PASSAGES)
    assert metric_table["layer"].tolist() == [1, 2, 3]
    llm = FlagAutoReranker.from_finetuned(tiny_engine.llm_reranker, model_class="decoder-only-base")
    final = llm.compute_score([(text.RERANK_QUERY, p) for p in passages])
    np.testing.assert_allclose(figure.data[0].y[-1], final[0], rtol=1e-4, atol=1e-4)
    last_scores = [figure.data[j].y[-1] for j in range(len(passages))]
    expected_ranks = pd.Series(last_scores).rank(ascending=False, method="first").astype(int).tolist()
    assert ranking["rank at layer 3"].tolist() == expected_ranks
    assert ranking.columns.tolist()[:3] == ["#", "passage", "rank at layer 1"]
    long = kept["long"]  # the CSV: every score at every layer, exact
    assert long[long["layer"] == 3]["rank"].tolist() == expected_ranks
    np.testing.assert_allclose(long[long["layer"] == 3]["score"], final, rtol=1e-4, atol=1e-4)
    grades = parse_relevance(text.RERANK_RELEVANCE, len(passages))
    ids = [f"p{i + 1}" for i in range(len(passages))]
    ndcg = metrics.ndcg_at_k(
        metrics.ranking_from_scores(dict(zip(ids, last_scores, strict=True))), dict(zip(ids, grades, strict=True)), 5
    )
    assert metric_table["nDCG@5"].iloc[-1] == pytest.approx(ndcg, abs=1e-4)
    assert (metric_table["ms to layer"].diff().dropna() >= 0).all()
    assert "logit lens" in note and "Best nDCG@5" in note


def test_layer_sweep_native_heads_for_a_layerwise_model(tiny_engine, handlers):
    _, _, metric_table, note, _ = handlers.layer_sweep(model=tiny_engine.layerwise_reranker, step=2)
    assert metric_table["layer"].tolist() == [2, 4, 6]
    assert "layer-wise head" in note


def test_layer_sweep_k_above_the_passages_scores_them_all_and_says_so(tiny_engine, handlers):
    _, _, metric_table, note, _ = handlers.layer_sweep(passages="a\nb\nc", relevance="2, 0, 1", k=5)
    assert "k 5 is more than the 3 passages, so all 3 are used." in note
    assert "Best nDCG@3" in note
    _, _, exact_table, _, _ = handlers.layer_sweep(passages="a\nb\nc", relevance="2, 0, 1", k=3)
    timing = [column for column in metric_table.columns if column.startswith("ms ")]
    pd.testing.assert_frame_equal(metric_table.drop(columns=timing), exact_table.drop(columns=timing))


def test_layer_sweep_over_an_embedder_ends_at_the_similarity(tiny_engine, handlers):
    figure, _, metric_table, note, _ = handlers.layer_sweep(model=tiny_engine.embedder, relevance="")
    passages = clean_lines(text.RERANK_PASSAGES)
    outcome = tiny_engine.similarity([text.RERANK_QUERY], passages, model=tiny_engine.embedder)
    np.testing.assert_allclose([trace.y[-1] for trace in figure.data], outcome.dense[0], atol=1e-5)
    assert metric_table.columns.tolist() == ["layer"]
    assert "Add relevance labels" in note


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"relevance": "2, 1"}, "one relevance label per passage"),
        ({"relevance": "a, b, c, d, e"}, "must be numbers"),
        ({"first_layer": 3, "last_layer": 2}, "is after the last layer"),
        ({"last_layer": 12}, "Layer 12 is not available"),
    ],
)
def test_layer_sweep_input_errors(handlers, kwargs, message):
    with pytest.raises(gr.Error) as caught:
        handlers.layer_sweep(**kwargs)
    assert message in caught.value.message


def test_sweep_sample_fills_a_labelled_query(handlers):
    labelled = datasets.load_retrieval_set()
    query_id = labelled.queries["id"].iloc[0]
    query, passages, relevance = handlers.sweep_sample(query_id)
    assert query == labelled.query_texts[query_id]
    grades = parse_relevance(relevance, len(clean_lines(passages)))
    judged = labelled.judgements[query_id]
    assert sorted(grades) == sorted(float(v) for v in judged.values())


def test_ranking_metrics_against_hand_computed_values():
    # Ranking by score: p2 (grade 0), p1 (grade 2), p3 (grade 1).
    values = graded_metrics(np.array([0.5, 0.9, 0.1]), [2, 0, 1], 3)
    dcg = 2 / np.log2(3) + 1 / np.log2(4)
    ideal = 2 / np.log2(2) + 1 / np.log2(3)
    assert values["nDCG@3"] == pytest.approx(dcg / ideal)
    assert values["MRR@3"] == pytest.approx(0.5)


# ---- Projection -----------------------------------------------------------------------------------------------


def test_project_pca_with_queries_and_neighbours(tiny_engine, handlers):
    main, side, neighbours, csv_path, note = handlers.project(method="pca", k=2)
    labels, texts = parse_labelled_lines(text.PROJECTION_CORPUS)
    queries = clean_lines(text.PROJECTION_QUERIES)
    groups = [trace.name for trace in main.data if trace.mode == "markers"]
    assert groups == sorted(set(labels))  # legend and colours in sorted order, stable between runs
    coords = pd.read_csv(csv_path)
    assert coords["kind"].value_counts().to_dict() == {"passage": len(texts), "query": len(queries)}
    corpus = tiny_engine.encode(texts, model=tiny_engine.embedder, mode="passage").embeddings
    query_vectors = tiny_engine.encode(queries, model=tiny_engine.embedder, mode="query").embeddings
    cosines = query_vectors @ corpus.T
    expected_ids = [f"p{i + 1}" for i in np.argsort(-cosines[0], kind="stable")[:2]]
    assert neighbours[neighbours["query"].str.startswith("Q1")]["id"].tolist() == expected_ids
    edges = next(trace for trace in main.data if trace.name == "query → top-k")
    assert len(edges.x) == 3 * 2 * len(queries)
    assert len(side.data) == 0  # no second map asked for
    assert "PCA" in note


def test_project_side_by_side_two_layers_in_3d(tiny_engine, handlers):
    main, side, _, csv_path, _ = handlers.project(
        method="pca", dims=3, layer=1, layer_b=-1, model_b=tiny_engine.embedder
    )
    assert main.data[0].type == "scatter3d"
    assert {trace.type for trace in side.data} == {"scatter"}
    titles = [annotation.text for annotation in side.layout.annotations]
    assert titles[0].endswith("(layer 1)") and titles[1].endswith("(final layer)")
    assert {"x", "y", "z"} <= set(pd.read_csv(csv_path).columns)


def test_project_bundled_sample_coloured_by_label(handlers):
    main, *_, note = handlers.project(sample="demo: paraphrase", method="pca", queries="")
    frame = datasets.load_demo_sentences("paraphrase")
    assert sum(len(trace.x) for trace in main.data) == len(frame)
    assert {trace.name for trace in main.data} == set(frame["label"])
    assert f"{len(frame)} texts from the sample 'demo: paraphrase', 0 queries" in note


def test_project_tiny_corpus_falls_back_and_says_so(handlers):
    main, *_, note = handlers.project("a cat\na dog\na car", queries="", method="umap")
    assert "UMAP needs at least" in note and "PCA" in note
    assert sum(len(trace.x) for trace in main.data) == 3


def test_project_colour_by_cluster(handlers):
    main, *_ = handlers.project(method="pca", colour_by="cluster", queries="")
    names = {trace.name for trace in main.data}
    assert names == {f"cluster {i}" for i in range(1, 5)}  # k = number of labels in the example (4)


# ---- Compare and Models ---------------------------------------------------------------------------------------


def test_compare_two_layers_on_a_few_labelled_queries(tiny_engine, handlers):
    summary, figure, disagreements, per_query, csv_path, note = handlers.compare(layer_b=1, max_queries=6, k=5)
    assert summary["metric"].tolist() == ["nDCG@5", "MRR@5", "Recall@5", "MAP"]
    assert len(per_query) == 6 and len(disagreements) == 5
    np.testing.assert_allclose(per_query["B − A"], per_query["nDCG@5 B"] - per_query["nDCG@5 A"], atol=2e-3)
    assert sum(len(trace.x) for trace in figure.data if trace.name != "equal") == 6
    saved = pd.read_csv(csv_path)  # the download keeps every column and digit
    assert saved["query"].tolist() == per_query["query"].tolist()
    np.testing.assert_allclose(saved["nDCG@5 diff"], saved["nDCG@5 B"] - saved["nDCG@5 A"], atol=1e-9)
    assert "**A** is" in note and "**B** is" in note
    assert "once for both layers" in note


def test_compare_a_model_with_itself_has_no_differences(handlers):
    summary, *_ = handlers.compare(layer_b=-1, max_queries=4)
    assert summary.columns.tolist()[:4] == ["metric", "A", "B", "B − A"]
    assert (summary["B − A"] == 0).all()
    assert summary["ties"].tolist() == [4, 4, 4, 4]


def test_models_tab_lists_the_catalog_and_unloads(tiny_engine, handlers):
    handlers.encode("warm the cache")
    catalog_table, cache, _, memory = handlers.models()
    account = memory.set_index("what")["MB"]
    models = account[account.index.str.startswith("model: ")]
    assert len(models) == len(tiny_engine.cache.entries())
    assert abs(models.sum() - sum(entry.nbytes for entry in tiny_engine.cache.entries()) / 2**20) <= len(models)
    assert account.index[-2] == "resident in all" and account.index[-3].startswith("not attributed")
    assert abs(account.iloc[:-2].sum() - account["resident in all"]) <= len(account) - 2  # each row rounded
    minilm = catalog_table[catalog_table["model"] == "all-MiniLM-L6-v2"]
    assert minilm["here"].iloc[0] == "yes (bundled)"
    assert len(catalog_table) > 50
    assert list(cache.columns) == ["model", "MB", "device", "load s", "runs on"]  # no cache keys or server paths
    assert not any("/" in name for name in cache["model"])
    assert (cache["MB"] > 0).all()
    key = next(name for name in cache["model"] if "bert-embedder" in name)
    with tiny_engine.embedder_for(tiny_engine.embedder) as embedder:  # the wrapper the encode above kept
        runs_on = embedder.backend_info.summary()
    assert cache.loc[cache["model"] == key, "runs on"].tolist() == [runs_on]
    assert runs_on.startswith(("PyTorch", "ONNX Runtime"))
    new_cache, _, message = handlers.unload(key)
    assert message.startswith("Unloaded")
    assert key not in new_cache["model"].tolist()
    *_, again = handlers.unload(key)
    assert "Nothing to unload" in again


def test_project_coloured_by_relevance_to_a_labelled_query(handlers):
    labelled = datasets.load_retrieval_set()
    main, _, neighbours, csv_path, _ = handlers.project(
        sample="labelled set passages (by topic)",
        colour_by="relevance",
        relevance_query="q-cook-01",
        queries="",
        method="pca",
    )
    counts = {trace.name: len(trace.x) for trace in main.data if trace.mode == "markers"}
    judged = labelled.judgements["q-cook-01"]
    assert counts["relevant (2)"] == sum(1 for rel in judged.values() if rel == 2)
    assert counts["not judged"] == len(labelled.passages) - len(judged)
    assert sum(counts.values()) == len(labelled.passages)
    assert neighbours["query"].str.startswith("Q1: " + labelled.query_texts["q-cook-01"][:20]).all()
    assert (pd.read_csv(csv_path)["kind"] == "query").sum() == 1


def test_relevance_colours_need_the_labelled_passages(handlers):
    with pytest.raises(gr.Error, match="Colouring by relevance needs"):
        handlers.project(colour_by="relevance", method="pca")


SIX_SYSTEMS = """embedder={embedder}
layer1={embedder}@1
bm25=bm25
# a comment line is skipped
reranked=bm25>>{reranker}@4
rrf=rrf(bm25,embedder)
combmnz=combmnz(bm25,embedder)"""


def test_compare_systems_shows_six_systems_with_a_pipeline_and_fusions(tiny_engine, handlers):
    systems = SIX_SYSTEMS.format(embedder=tiny_engine.embedder, reranker=tiny_engine.llm_reranker)
    note, means, pairs, _, costs, pipelines, groups, disagree, side_title, side, passages, files, picker, kept = (
        handlers.compare_systems(systems, "bm25", 50, 8, 500)
    )
    direct = tiny_engine.benchmark(
        [line for line in systems.splitlines() if not line.startswith("#")],
        baseline="bm25", depth=50, max_queries=8, permutations=500,
    )  # fmt: skip
    assert len(means) == 6 and set(means["system"]) == set(direct.systems)
    shown = means.set_index("system")
    for system in direct.systems:
        assert shown.loc[system, "nDCG@10"] == pytest.approx(direct.means.loc[system, "nDCG@10"], abs=5e-4)
        assert shown.loc[system, "tier (nDCG@10)"] == direct.tiers["nDCG@10"][system]
    assert means["tier (nDCG@10)"].is_monotonic_increasing  # best tier first
    assert pairs[["A", "B"]].values.tolist() == [["bm25", s] for s in direct.systems if s != "bm25"]
    assert set(pairs["verdict"]) <= {"cannot tell apart", "bm25 better", *[f"{s} better" for s in direct.systems]}
    assert pipelines["pipeline"].tolist() == ["reranked"] and pipelines["depth"].tolist() == [4]
    counts = pipelines.iloc[0]
    assert counts["gained"] + counts["lost"] + counts["unchanged"] + counts["recall ceiling"] == 8
    assert costs.set_index("system").loc["bm25", "model MB"] == 0
    assert "queries" in groups.columns and groups["queries"].sum() >= 8
    assert len(disagree) == 8 and disagree["spread"].is_monotonic_decreasing
    assert list(side.columns) == ["rank", "bm25", "embedder", "layer1", "reranked", "rrf", "combmnz"]
    assert side_title.endswith("reference column: bm25)")
    assert set(passages["passage"]) == {cell.split(" · ")[0] for col in side.columns[1:] for cell in side[col] if cell}
    assert "8 labelled queries" in note and "6 systems" in note and "500 permutations" in note
    ordered = [query_id for _, query_id in picker.choices]  # the picker lists the queries by disagreement
    assert ordered == kept.disagreement["query_id"].tolist() and picker.value == ordered[0]
    other_title, other_side, _ = compare_tab.side_by_side(kept, ordered[-1])
    tops, _ = direct.side_by_side(ordered[-1], k=10)
    assert kept.retrieval_set.query_texts[ordered[-1]] in other_title
    assert [cell.split(" · ")[0] for cell in other_side["embedder"]] == tops["embedder"].tolist()
    assert "- On nDCG@10, " in note and "- Tier 1 on nDCG@10" in note
    names = sorted(path.rsplit("/", 1)[-1] for path in files)
    assert names == sorted(["report.json", "per_query.csv", *[f"{s}.trec" for s in direct.systems]])
    report = json.loads(Path(next(p for p in files if p.endswith("report.json"))).read_text())
    assert report["systems"]["reranked"] == f"bm25>>{tiny_engine.llm_reranker}@4"


@pytest.mark.parametrize(
    ("systems", "words"),
    [
        ("", "at least one system"),
        ("a=rrf(a,bm25)", "cycle"),
        ("bm25=bm25\nbm25=bm25", "given twice"),
        ("x=bm25>>{reranker}@1000", "raise the depth"),
        ("x=bm25\nr=x>>{reranker}@100", "would rerank 4,800"),
        ("x=bm25\ny=nothing-here/at-all", "y:"),
    ],
)
def test_compare_systems_refuses_bad_lists_with_a_sentence(tiny_engine, handlers, monkeypatch, systems, words):
    monkeypatch.setenv("FLAGDEMO_MAX_RERANKED_PAIRS", "2000")
    with pytest.raises(gr.Error) as refused:
        handlers.compare_systems(systems.format(reranker=tiny_engine.llm_reranker), "")
    assert words in refused.value.message and "Traceback" not in refused.value.message
    assert "FLAGDEMO_" not in refused.value.message  # visitors read no setting names


def test_the_builder_row_writes_a_spec_line_that_parses():
    add_system = compare_tab.add_system
    text = add_system("bm25=bm25\nemb=m", "hyb", "reciprocal rank fusion (RRF)", None, "bm25, emb", 10)
    assert text.splitlines()[-1] == "hyb=rrf(bm25,emb)"
    text = add_system(text, "rr", "a reranker over a system (pipeline)", "some-reranker", "hyb", 20)
    assert text.splitlines()[-1] == "rr=hyb>>some-reranker@20"
    assert add_system("m=x", "m3", "an embedder at a layer", "x", "", 3).splitlines()[-1] == "m3=x@3"
    with pytest.raises(gr.Error, match="at least two systems"):
        add_system(text, "f", "CombMNZ fusion", None, "bm25", 10)
    with pytest.raises(gr.Error, match="The kind of system must be one of"):
        add_system(text, "f", "a kind that is not there", None, "bm25", 10)
    with pytest.raises(gr.Error, match="given twice"):
        add_system(text, "rr", "BM25", None, "", 10)


def test_a_heavy_tab_says_how_long_the_same_work_took_here_last_time(tiny_engine, engine_copy):
    import re

    from flagdemo.serving import request_log

    bound = endpoints(engine_copy(tiny_engine))  # no result cache: both runs compute
    request_log._durations.clear()
    steps = []

    def progress(fraction, desc=None, **_):
        steps.append(desc)

    bound.layer_sweep(model=tiny_engine.layerwise_reranker, step=2, progress=progress)
    assert steps and not any("the last run" in step for step in steps)  # nothing to go by yet
    steps.clear()
    bound.layer_sweep(model=tiny_engine.layerwise_reranker, step=2, query="Another question?", progress=progress)
    hint = re.compile(
        r" \(about ([\d.,]+ m?s) here once the models are loaded; the last run: (\d+) inputs in ([\d.,]+ m?s)\)$"
    )
    assert steps and all(hint.search(step) for step in steps), steps
    about, inputs, took = hint.search(steps[0]).groups()
    assert about == took and int(inputs) > 1  # the same number of inputs: the same time
    steps.clear()
    bound.layer_sweep(model=tiny_engine.llm_reranker, step=2, progress=progress)  # a model not run yet: by size
    scaled = re.compile(
        r" \(about ([\d.,]+ m?s) here once the models are loaded; scaled by size from the last run on "
        r"minicpm-layerwise: (\d+) inputs in ([\d.,]+ m?s)\)$"
    )
    assert steps and all(scaled.search(step) for step in steps), steps
