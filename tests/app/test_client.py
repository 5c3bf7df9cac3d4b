"""gradio_client against a launched app (tiny models): every endpoint with its defaults and with custom inputs."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from flagdemo.engine import clean_lines
from flagdemo.ui.views import text

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(app_url) -> Client:
    return Client(app_url, verbose=False)


def _frame(value: dict) -> pd.DataFrame:
    return pd.DataFrame(value["data"], columns=value["headers"])


def _array(value) -> np.ndarray:
    """A plotly JSON array: a plain list, or plotly's typed-array form {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(n) for n in shape.split(",")]) if shape else flat
    return np.asarray(value)


def _plot(value: dict) -> dict:
    assert value["type"] == "plotly"
    return json.loads(value["plot"])


def test_the_documented_endpoints_and_their_defaults(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(api) == {
        "/encode",
        "/similarity",
        "/rerank",
        "/layer_sweep",
        "/project",
        "/cocktail",
        "/compare",
        "/compare_systems",
        "/models",
        "/unload",
        "/project_stored",
        "/compare_beir",
    }
    for name, endpoint in api.items():
        assert all(parameter["parameter_has_default"] for parameter in endpoint["parameters"]), name


# Parameter names of every endpoint as the app had them before the tab modules: scripts call them by name.
PARAMETERS = {
    "/encode": [
        "texts",
        "upload",
        "column",
        "model",
        "mode",
        "instruction",
        "max_length",
        "normalize",
        "layer",
        "token_row",
        "precision",
        "task",
        "images",
        "bundled_images",
        "fuse",
    ],
    "/similarity": [
        "queries",
        "passages",
        "all_pairs",
        "model",
        "use_instruction",
        "top_k",
        "score_mode",
        "w_dense",
        "w_sparse",
        "w_colbert",
        "pair_query",
        "pair_passage",
        "precision",
        "task",
        "query_images",
        "query_bundled",
        "fuse_queries",
        "passage_images",
        "passage_bundled",
    ],
    "/rerank": [
        "query",
        "passages",
        "bi_encoder",
        "cross_encoder",
        "llm_reranker",
        "layerwise_reranker",
        "cutoff_layer",
    ],
    "/layer_sweep": ["model", "query", "passages", "relevance", "first_layer", "last_layer", "step", "k", "task"],
    "/project": [
        "corpus",
        "upload",
        "sample",
        "model",
        "layer",
        "method",
        "dims",
        "n_neighbors",
        "min_dist",
        "perplexity",
        "seed",
        "colour_by",
        "queries",
        "k",
        "model_b",
        "layer_b",
        "relevance_query",
        "task",
        "corpus_images",
        "corpus_bundled",
    ],
    "/cocktail": ["base_model", "training_file", "upload", "in_domain", "epochs", "learning_rate", "temperature"],
    "/compare": ["model_a", "layer_a", "model_b", "layer_b", "k", "max_queries", "task"],
    "/compare_systems": ["systems", "baseline", "depth", "max_queries", "permutations"],
    "/models": [],
    "/unload": ["key"],
    "/project_stored": ["entry", "model", "colour_by", "max_points", "sample", "seed"],
    "/compare_beir": ["folder", "split", "model_a", "model_b"],
}


def test_parameter_names_are_unchanged_and_outputs_are_named(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {
        name: [p["parameter_name"] for p in endpoint["parameters"]] for name, endpoint in api.items()
    } == PARAMETERS
    for name, endpoint in api.items():
        labels = [output["label"] for output in endpoint["returns"]]
        assert all(label and not label.startswith("value_") for label in labels), (name, labels)


def test_every_documented_choice_is_accepted(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    dims = next(p for p in api["/project"]["parameters"] if p["parameter_name"] == "dims")
    assert "'3'" in dims["python_type"]["type"]  # documented as text ...
    main, *_ = client.predict(corpus="x\ta\nx\tb\ny\tc\ny\td", queries="", dims="3", method="pca", k=1,
                              api_name="/project")  # fmt: skip
    assert _plot(main)["data"][0]["type"] == "scatter3d"  # ... and accepted as text


def test_encode_defaults_and_custom(client, tiny_engine):
    table, summary, plot, tokens, timing, files = client.predict(api_name="/encode")
    frame = _frame(table)
    assert frame["text"].tolist() == clean_lines(text.ENCODE_TEXTS)
    np.testing.assert_allclose(frame["norm"], 1.0, atol=1e-5)
    assert dict(_frame(summary).to_numpy())["texts"] == 4
    assert _plot(plot)["data"][0]["type"] == "heatmap"
    assert "4 texts" in timing and "`[CLS]`" in tokens
    vectors = np.load(files[0])
    expected = tiny_engine.encode(clean_lines(text.ENCODE_TEXTS), model=tiny_engine.embedder).embeddings
    np.testing.assert_allclose(vectors, expected, atol=1e-6)

    table, *_, files = client.predict(texts="alpha beta\ngamma", mode="raw", normalize=False, api_name="/encode")
    raw = tiny_engine.encode(["alpha beta", "gamma"], model=tiny_engine.embedder, mode="raw", normalize=False)
    np.testing.assert_allclose(np.load(files[0]), raw.embeddings, atol=1e-6)
    assert _frame(table)["tokens"].tolist() == raw.token_counts


def test_encode_error_reaches_the_client_as_a_sentence(client):
    with pytest.raises(AppError, match="There is no text to encode"):
        client.predict(texts=" ", api_name="/encode")


def test_similarity_defaults_and_custom(client, tiny_engine, tiny_m3):
    heatmap, top, lexical, colbert, note = client.predict(api_name="/similarity")
    z = _array(_plot(heatmap)["data"][0]["z"])
    queries, passages = clean_lines(text.SIMILARITY_QUERIES), clean_lines(text.SIMILARITY_PASSAGES)
    np.testing.assert_allclose(
        z, tiny_engine.similarity(queries, passages, model=tiny_engine.embedder).dense, atol=1e-5
    )
    assert len(_frame(top)) == 3 * len(queries)
    assert "cosine similarities" in note
    assert _plot(lexical)["data"] == [] and _plot(colbert)["data"] == []  # message figures for a dense-only model

    heatmap, top, _, colbert, note = client.predict(
        queries="hello world",
        passages="hello there\ncats sleep",
        model=tiny_m3,
        top_k=1,
        score_mode="combined",
        api_name="/similarity",
    )
    outcome = tiny_engine.similarity(["hello world"], ["hello there", "cats sleep"], model=tiny_m3)
    expected = outcome.combined((1.0, 0.3, 1.0))
    np.testing.assert_allclose(_array(_plot(heatmap)["data"][0]["z"]), expected, atol=1e-6)
    assert _frame(top)["passage"].tolist() == [["hello there", "cats sleep"][int(np.argmax(expected[0]))]]
    assert _plot(colbert)["data"][0]["type"] == "heatmap"


def test_rerank_defaults_and_custom(client):
    table, chart, tau, timing, messages = client.predict(api_name="/rerank")
    frame = _frame(table)
    for method in ("bi-encoder", "cross-encoder", "LLM reranker", "cutoff L3"):
        assert sorted(frame[f"{method} rank"]) == [1, 2, 3, 4, 5]
    assert messages == "All chosen methods ran."
    assert len(_plot(chart)["data"]) == 5
    tau_frame = _frame(tau).set_index("method")
    np.testing.assert_allclose(np.diag(tau_frame.to_numpy(dtype=float)), 1.0)

    table, chart, tau, timing, messages = client.predict(
        query="best pizza",
        passages="pizza in naples\nsushi in tokyo\npasta in rome",
        cross_encoder="no/such/model",
        layerwise_reranker="(none)",
        api_name="/rerank",
    )
    frame = _frame(table)
    assert frame["passage"].tolist() == ["pizza in naples", "sushi in tokyo", "pasta in rome"]
    assert {"bi-encoder score", "LLM reranker score"} <= set(frame.columns)
    assert "cross-encoder score" not in frame.columns
    assert "could not run" in messages
    assert _frame(timing)["method"].tolist() == ["bi-encoder", "cross-encoder", "LLM reranker"]


def test_layer_sweep_defaults_and_custom(client, tiny_engine):
    plot, ranking, metric_table, note = client.predict(api_name="/layer_sweep")
    metrics_frame = _frame(metric_table)
    assert metrics_frame["layer"].tolist() == [1, 2, 3]
    assert metrics_frame["nDCG@5"].between(0, 1).all()
    ranks = _frame(ranking)  # one row per passage: first and last layer, best rank, where it settled
    assert ranks.columns.tolist()[2:4] == ["rank at layer 1", "rank at layer 3"]
    assert sorted(ranks["rank at layer 3"]) == [1, 2, 3, 4, 5]
    assert "logit lens" in note

    plot, ranking, metric_table, note = client.predict(
        model=tiny_engine.layerwise_reranker, first_layer=3, last_layer=5, relevance="", api_name="/layer_sweep"
    )
    assert _frame(metric_table).columns.tolist() == ["layer", "ms to layer"]
    assert _frame(ranking).columns.tolist()[2:4] == ["rank at layer 3", "rank at layer 5"]
    figure = _plot(plot)
    assert _array(figure["data"][0]["x"]).tolist() == [3, 4, 5]


def test_project_defaults_and_custom(client):
    main, side, neighbours, csv_file, note = client.predict(api_name="/project")
    figure = _plot(main)
    assert {trace["name"] for trace in figure["data"]} >= {"animals", "finance", "cooking", "sport", "query"}
    coords = pd.read_csv(csv_file)
    assert len(coords) == 16 + 2 and {"x", "y"} <= set(coords.columns)
    assert len(_frame(neighbours)) == 2 * 3
    assert "UMAP" in note

    main, side, neighbours, csv_file, note = client.predict(
        corpus="x\ta\nx\tb\ny\tc\ny\td\nz\te",
        method="pca",
        dims=3,
        queries="a",
        k=2,
        layer_b=1,
        api_name="/project",
    )
    assert _plot(main)["data"][0]["type"] == "scatter3d"
    assert len(_plot(side)["data"]) >= 6  # three groups in each of the two maps
    assert pd.read_csv(csv_file)["z"].notna().all()
    assert _frame(neighbours)["rank"].tolist() == [1, 2]


def test_compare_custom(client):
    summary, _, _, per_query, csv_file, _ = client.predict(layer_b=1, max_queries=5, k=3, api_name="/compare")
    frame = _frame(summary)
    assert frame["metric"].tolist() == ["nDCG@3", "MRR@3", "Recall@3", "MAP"]
    per = _frame(per_query)
    assert len(per) == 5
    np.testing.assert_allclose(per["B − A"], per["nDCG@3 B"] - per["nDCG@3 A"], atol=2e-3)
    saved = pd.read_csv(csv_file)  # every column, every digit
    assert len(saved) == 5
    np.testing.assert_allclose(saved["nDCG@3 diff"], saved["nDCG@3 B"] - saved["nDCG@3 A"], atol=1e-9)


def test_compare_defaults(client):
    summary, *_ = client.predict(api_name="/compare")
    assert len(_frame(summary)) == 4


def test_compare_systems_with_a_pipeline_and_a_fusion(client, tiny_engine):
    """Six systems through the API: the means equal the engine's, the pairs are against the baseline, every run
    file and the report come back."""
    embedder, reranker = tiny_engine.embedder, tiny_engine.llm_reranker
    systems = [f"dense={embedder}", f"dense1={embedder}@1", "bm25=bm25", f"rr=bm25>>{reranker}@3",
               "rrf=rrf(bm25,dense)", "sum=combsum(bm25,dense,norm=zmuv)"]  # fmt: skip
    note, means, pairs, plot, *_, side, _, files, query = client.predict(
        systems="\n".join(systems), baseline="bm25", depth=30, max_queries=6, permutations=300,
        api_name="/compare_systems",
    )  # fmt: skip
    expected = tiny_engine.benchmark(systems, baseline="bm25", depth=30, max_queries=6, permutations=300)
    shown = _frame(means).set_index("system")
    for system in expected.systems:
        assert float(shown.loc[system, "AP"]) == pytest.approx(expected.means.loc[system, "AP"], abs=5e-4)
    others = {("bm25", name) for name in expected.systems if name != "bm25"}
    assert {tuple(row) for row in _frame(pairs)[["A", "B"]].to_numpy()} == others
    assert {trace["name"] for trace in _plot(plot)["data"]} >= {"frontier"}
    assert _frame(side).columns.tolist() == ["rank", "bm25", "dense", "dense1", "rr", "rrf", "sum"]
    assert len(files) == 2 + 6 and "6 labelled queries" in note
    assert query["value"] == expected.disagreement["query_id"].iloc[0]  # the side-by-side query: most disagreement


def test_compare_systems_defaults(client):
    note, means, *_ = client.predict(api_name="/compare_systems")
    assert _frame(means)["system"].tolist() and "48 labelled queries" in note
    assert sorted(_frame(means)["system"]) == ["bm25", "combmnz", "embedder", "layer3", "rrf"]


def test_models_and_unload(client):
    client.predict(texts="a model to unload", api_name="/encode")  # whatever ran before: one model is loaded
    catalog, cache, choices, memory = client.predict(api_name="/models")
    catalog_frame = _frame(catalog)
    account = _frame(memory).set_index("what")["MB"]
    parts = account.iloc[:-2]  # the parts, then "resident in all" and the budget
    assert account.index[-2] == "resident in all" and account.index[-1].startswith("model budget (75% of")
    assert abs(parts.sum() - account["resident in all"]) <= len(parts)  # each row rounded to 1 MB
    code = account["program code and libraries (torch, ONNX Runtime, the rest)"]
    assert 0 < code < account["resident in all"] and account["resident in all"] > 100
    assert [choice[0] for choice in choices["choices"]] == ["all", *_frame(cache)["model"]]
    assert len(_frame(cache)) >= 1
    assert "yes (bundled)" in set(catalog_frame["here"])
    assert {"bge-m3", "bge-reranker-v2-minicpm-layerwise"} <= set(catalog_frame["model"])
    cache, _, message = client.predict(key="all", api_name="/unload")
    assert _frame(cache).empty
    assert message == "Unloaded all."
