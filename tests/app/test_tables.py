"""Table builders: columns and the numbers in them."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from flagdemo.engine import Engine
from flagdemo.ui.views import tables


def test_ranks_from_scores_is_one_based_and_stable_on_ties():
    assert tables.ranks_from_scores([0.2, 0.9, 0.5]) == [3, 1, 2]
    assert tables.ranks_from_scores([1.0, 1.0, 0.0]) == [1, 2, 3]


def test_encode_table_has_norms_and_first_dimensions():
    vectors = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]])
    table = tables.encode_table(["a", "b"], vectors, token_counts=[3, 5], truncated=[False, True], n_dims=2)
    assert list(table.columns) == ["#", "text", "tokens", "truncated", "norm", "dim 0", "dim 1"]
    np.testing.assert_allclose(table["norm"], [5.0, 2.0])
    assert table["truncated"].tolist() == [False, True]
    assert table["dim 1"].tolist() == [4.0, 0.0]


def test_embedding_summary_mean_pairwise_cosine():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    summary = dict(zip(*tables.embedding_summary(vectors).to_dict("list").values(), strict=True))
    assert summary["texts"] == 3 and summary["dimensions"] == 2
    expected = (0.0 + 2 * np.sqrt(0.5)) / 3
    assert summary["mean pairwise cosine"] == pytest.approx(expected)
    assert summary["max norm"] == pytest.approx(np.sqrt(2))


def test_top_k_table_lists_the_best_passages_per_query():
    scores = np.array([[0.1, 0.9, 0.5], [0.8, 0.2, 0.3]])
    table = tables.top_k_table(scores, ["q1", "q2"], ["a", "b", "c"], k=2)
    assert table["passage"].tolist() == ["b", "c", "a", "c"]
    assert table["rank"].tolist() == [1, 2, 1, 2]
    assert table["score"].tolist() == [0.9, 0.5, 0.8, 0.3]


def test_rerank_table_adds_score_sigmoid_and_rank_per_method():
    table = tables.rerank_table(
        ["a", "b"], {"cos": [0.2, 0.7], "llm": [3.0, -1.0]}, {"cos": None, "llm": [0.95, 0.27]}
    )
    assert list(table.columns) == ["#", "passage", "cos score", "cos rank", "llm score", "llm sigmoid", "llm rank"]
    assert table["cos rank"].tolist() == [2, 1]
    assert table["llm rank"].tolist() == [1, 2]


def test_kendall_tau_table_is_symmetric_with_ones_on_the_diagonal():
    table = tables.kendall_tau_table({"a": [1, 2, 3, 4], "b": [4, 3, 2, 1], "c": [1, 2, 4, 3]})
    values = table.drop(columns="method").to_numpy()
    np.testing.assert_allclose(values, values.T)
    np.testing.assert_allclose(np.diag(values), 1.0)
    assert values[0, 1] == pytest.approx(-1.0)
    assert values[0, 2] == pytest.approx(4 / 6)  # 5 concordant, 1 discordant pair


def test_layer_tables():
    ranking = tables.layer_ranking_table([2, 4], np.array([[0.1, 0.5], [0.9, 0.2]]), ["a", "b"])
    assert ranking["L2"].tolist() == [2, 1] and ranking["L4"].tolist() == [1, 2]
    metrics = tables.layer_metrics_table([2, 4], {"nDCG@5": [0.5, 1.0]}, [0.01, 0.02])
    assert metrics.columns.tolist() == ["layer", "nDCG@5", "ms to layer"]
    np.testing.assert_allclose(metrics["ms to layer"], [10.0, 20.0])


def test_projection_and_neighbour_tables():
    coords = tables.projection_table(["p1", "p2"], ["a", "b"], ["x", "y"], np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert coords.columns.tolist() == ["id", "kind", "group", "text", "x", "y"]
    scores = np.array([[0.1, 0.9, 0.4]])
    table, edges = tables.neighbours_table(scores, ["q"], ["p1", "p2", "p3"], ["a", "b", "c"], k=2)
    assert table["id"].tolist() == ["p2", "p3"]
    assert edges == [(0, 1), (0, 2)]


# ---- Views for the screen: ordinary inputs fit a 1400 px page -----------------------------------------------------

# "Ordinary size" from the review: eight passages of one or two lines, three queries, 30 layers, 48 queries.
PASSAGES = [
    "Paris is the capital and largest city of France, with about two million residents within the city limits.",
    "France is a country in Western Europe with many famous cities, including Lyon, Marseille, Toulouse and Nice, "
    "and a long Atlantic and Mediterranean coastline.",
    "The Eiffel Tower was built in Paris for the 1889 World's Fair and was for forty-one years the tallest "
    "man-made structure in the world.",
    "Berlin is the capital of Germany.",
    "Lyon is known for its cuisine and silk industry, and the city sits where the Rhône and the Saône rivers meet.",
    "Marseille is the oldest city in France, founded by Greek sailors around 600 BC as the trading port Massalia.",
    "The French Republic is governed from Paris, where the President lives in the Élysée Palace.",
    "Bordeaux is famous for its wine.",
]
QUERIES = [
    "What is the capital of France?",
    "Which French city is known for its food and its silk?",
    "When was the Eiffel Tower built and why?",
]
METHODS = ["bi-encoder", "cross-encoder", "LLM reranker", "cutoff L12"]
RNG = np.random.default_rng(7)


def _raw_and_sigmoid(methods):
    raw = {m: RNG.normal(size=len(PASSAGES)) * 10 for m in methods}
    return raw, {m: None if m == "bi-encoder" else 1 / (1 + np.exp(-raw[m])) for m in methods}


def _per_query(n=48, k=10):
    frame = pd.DataFrame(
        {
            "query_id": [f"q-{i:02d}" for i in range(n)],
            "topic": ["personal_finance"] * n,
            "lang": ["en"] * n,
            "query": [QUERIES[i % 3] for i in range(n)],
            "n_relevant": 3,
        }
    )
    for metric in (f"nDCG@{k}", f"MRR@{k}", f"Recall@{k}", "MAP"):
        frame[f"{metric} A"], frame[f"{metric} B"] = RNG.random(n), RNG.random(n)
        frame[f"{metric} diff"] = frame[f"{metric} B"] - frame[f"{metric} A"]
    frame[f"shared@{k}"], frame[f"Jaccard@{k}"] = 6, 0.43
    return frame


SYSTEMS = {
    "minilm": "all-MiniLM-L6-v2 @ last layer",
    "minilm3": "all-MiniLM-L6-v2 @ layer 3",
    "bm25": "BM25 (bm25s lucene, k1=1.5, b=0.75)",
    "reranked": "all-MiniLM-L6-v2 @ last layer >> SmolLM2-135M-Instruct (top 20)",
    "hybrid": "rrf(BM25 (bm25s lucene, k1=1.5, b=0.75), all-MiniLM-L6-v2 @ last layer; k=60)",
    "combmnz": "combmnz(BM25 (bm25s lucene, k1=1.5, b=0.75), all-MiniLM-L6-v2 @ last layer; norm=min-max)",
}
MEASURES = ["nDCG@10", "RR@10", "R@100", "AP"]


def systems_views() -> dict[str, pd.DataFrame]:
    """The N-system views of six systems as the labelled set gives them (the longest descriptions the grammar's
    ordinary specs produce, every pair against bm25, 13 topic and language groups, a 10-row side by side)."""
    names = list(SYSTEMS)
    means = pd.DataFrame(RNG.random((6, 4)), index=names, columns=MEASURES)
    others = [n for n in names if n != "bm25"]
    pairs = pd.DataFrame(
        [{"a": "bm25", "b": b, "metric": m, "delta": RNG.normal() / 5, "p_randomization": 0.0001, "p_ttest": 3.8e-20,
          "p_holm": RNG.random(), "ci_low": -0.638, "ci_high": -0.497} for m in MEASURES for b in others]
    )  # fmt: skip
    costs = pd.DataFrame(
        {"system": names, "quality": RNG.random(6), "query_ms": [8.02, 8.0, 0.0371, 402.5, 25.8, 3.37],
         "passage_ms": [0.541, 0.541, 0.0337, 0.541, 0.574, 0.574], "pair_ms": [np.nan] * 3 + [393.2] + [np.nan] * 2,
         "model_mb": [86.6, 86.6, 0.0, 599.5, 86.6, 86.6], "bytes_per_vector": [1536.0, 1536.0, 238.0, 1536.0, 1774.0,
         1774.0], "dominated_by": ["", "minilm", "", "minilm, minilm3, hybrid, combmnz", "minilm", "minilm"],
         "pareto": [True, False, True, False, False, False]}
    )  # fmt: skip
    pipelines = {"reranked": {"first": SYSTEMS["minilm"], "depth": 20, "gain": 3, "loss": 40, "same": 5,
                              "ceiling": 0, "mean_delta": -0.494, "hurts": True}}  # fmt: skip
    groups = pd.DataFrame(
        [{"group": g, "value": v, "queries": n, "metric": "nDCG@10", **dict(zip(names, RNG.random(6), strict=True)),
          "mdd": 0.33, "too_small": n < 5}
         for g, v, n in [("topic", "personal_finance", 6), ("topic", "astronomy", 6), ("lang", "en", 43),
                         ("lang", "zh", 2)]]
    )  # fmt: skip
    disagreement = pd.DataFrame(
        {"query_id": [f"q-{i}" for i in range(12)], "query": [QUERIES[i % 3] for i in range(12)],
         "spread": np.linspace(1, 0.5, 12), "best": "combmnz", "worst": "reranked", "mean_rbo": RNG.random(12)}
    )  # fmt: skip
    tops = pd.DataFrame({"rank": range(1, 11)})
    for name in names:
        tops[name] = [f"p-finance-{i:03d}" for i in RNG.permutation(40)[:10]]
        tops[f"{name} label"] = RNG.integers(0, 3, 10)
    changes = pd.DataFrame(
        [{"system": n, "passage_id": p, "base_rank": None, "rank": r, "change": "gained", "label": 1}
         for n in others for r, p in enumerate(tops[n], start=1) if p not in set(tops["bm25"])]
        + [{"system": "minilm", "passage_id": tops["bm25"][0], "base_rank": 1, "rank": 12, "change": "moved",
            "label": 2}]
    )  # fmt: skip
    side = tables.systems_side_by_side_view(tops, changes, names)
    texts = {p: PASSAGES[i % len(PASSAGES)] for i, p in enumerate(dict.fromkeys(tops[names].to_numpy().ravel()))}
    return {
        "systems-means": tables.systems_means_view(means, SYSTEMS, dict.fromkeys(names, 1)),
        "systems-pairs": tables.systems_pairs_view(pairs, "nDCG@10", 0.05),
        "systems-costs": tables.systems_costs_view(costs, "nDCG@10"),
        "systems-pipelines": tables.systems_pipelines_view(pipelines),
        "systems-groups": tables.systems_groups_view(groups, "nDCG@10", names),
        "systems-disagree": tables.systems_disagreement_view(disagreement),
        "systems-side": side,
        "systems-passages": tables.systems_passages_view(tops, names, texts),
    }


def ordinary_views():
    """Every result table as the tabs show it, built from ordinary inputs (view name → (table, layout width))."""
    layers, sweep = list(range(1, 31)), RNG.normal(size=(30, len(PASSAGES)))
    raw, sigmoid = _raw_and_sigmoid(METHODS)
    timings = [
        {"method": m, "model": "SmolLM2-135M-Instruct (logit-lens)", "load s": 0.5812345, "run s": 2.3456789,
         "items": 8, "tokens/s": 1234.56789, "note": "ok"}
        for m in METHODS
    ]  # fmt: skip
    neighbours, _ = tables.neighbours_table(
        RNG.random((3, 16)), QUERIES, [f"p{i}" for i in range(16)], PASSAGES * 2, k=3
    )
    names = ("all-MiniLM-L6-v2 (final layer)", "all-MiniLM-L6-v2 (layer 3)")
    comparison = pd.DataFrame(
        [{"metric": "nDCG@10", names[0]: 0.8381234, names[1]: 0.70123, "diff": -0.137, "B better": 5,
          "A better": 30, "ties": 13}]
    )  # fmt: skip
    views = {
        "encode-table": tables.encode_table(
            PASSAGES, RNG.normal(size=(8, 384)), token_counts=[31] * 8, truncated=[False] * 8
        ),
        "encode-summary": tables.embedding_summary(RNG.normal(size=(8, 384))),
        "similarity-table": tables.top_k_table(RNG.random((3, 8)), QUERIES, PASSAGES, k=3),
        "rerank-table": tables.rerank_view(PASSAGES, raw, sigmoid),
        "rerank-tau": tables.kendall_tau_table(raw),
        "rerank-timing": tables.timing_table(timings),
        "sweep-ranks": tables.layer_rank_summary(layers, sweep, PASSAGES),
        "sweep-metrics": tables.layer_metrics_table(layers, {"nDCG@5": RNG.random(30), "MRR@5": RNG.random(30)}, None),
        "projection-table": neighbours,
        "compare-summary": tables.comparison_summary_view(comparison, names),
        "compare-table": tables.comparison_view(_per_query(), 10),
        "cocktail-table": pd.DataFrame(
            {
                "weight": [*np.linspace(0, 1, 11), 0.5212],
                "in-domain nDCG@10": np.linspace(0.79, 0.81, 12),
                "out-of-domain nDCG@10": np.linspace(0.86, 0.88, 12),
                "all nDCG@10": np.linspace(0.83, 0.85, 12),
                "in-domain queries": 18,
                "out-of-domain queries": 30,
                "data-derived": [False] * 11 + [True],
            }
        ),
        "models-catalog": pd.DataFrame(Engine().catalog_rows()),
        "models-cache": pd.DataFrame(
            [
                [
                    "SmolLM2-135M-Instruct (AutoModelForCausalLM, float32, cpu)",
                    513.0,
                    "cpu",
                    6.4,
                    "ONNX Runtime (graph loaded from the cache in 1.2 s); layer sweeps on PyTorch",
                ]
            ],
            columns=["model", "MB", "device", "load s", "runs on"],
        ),
        "models-memory": pd.DataFrame(Engine().memory_rows(), columns=["what", "MB"]),
        **systems_views(),
    }
    return {name: (tables.for_display(table), tables.TABLE_WIDTH[name]) for name, table in views.items()}


def test_round_significant_keeps_four_digits_whatever_the_size():
    assert tables.round_significant(0.873456) == 0.8735
    assert tables.round_significant(1234.5678) == 1235.0
    assert tables.round_significant(-14.52149) == -14.52
    assert tables.round_significant(0.000123456) == 0.0001235
    assert tables.round_significant(3.0) == 3.0 and tables.round_significant(0.0) == 0.0
    assert np.isnan(tables.round_significant(float("nan")))


def test_for_display_rounds_floats_only_and_leaves_the_exact_table_alone():
    exact = pd.DataFrame({"#": [1, 2], "text": ["a", "b"], "score": [0.87345678, 12.3456789], "ms": [1234.56789, 5.0]})
    shown = tables.for_display(exact, headers={"ms": "ms to layer"})
    assert shown["score"].tolist() == [0.8735, 12.35]
    assert shown["ms to layer"].tolist() == [1235.0, 5.0]
    assert shown["#"].tolist() == [1, 2] and shown["#"].dtype == exact["#"].dtype
    assert exact["score"].tolist() == [0.87345678, 12.3456789]  # the download keeps every digit


def test_a_missing_number_shows_as_a_dash_not_null():
    shown = tables.for_display(pd.DataFrame({"method": ["a", "b"], "tokens/s": [1234.5678, None]}))
    assert shown["tokens/s"].tolist() == [1235.0, tables.MISSING]


@pytest.mark.parametrize("view", sorted(tables.TABLE_WIDTH))
def test_every_view_of_ordinary_inputs_fits_its_width(view):
    table, width = ordinary_views()[view]
    assert tables.row_chars(table, width=width) <= tables.WIDTH_CHARS[width], tables.column_chars(table, width=width)
    settings = tables.dataframe_settings(table, width=width)
    shares = [float(w.rstrip("%")) for w in settings["column_widths"]]
    assert len(shares) == table.shape[1] and 99 <= sum(shares) <= 99.5
    # every column gets at least the share its longest header word needs, so no header breaks inside a word
    budget = tables.WIDTH_CHARS[width]
    for name, share in zip(table.columns, shares, strict=True):
        longest_word = max(len(w) for w in re.split(r"\s+|(?<=-)", str(name)))
        assert share / 100 * budget >= longest_word, (name, share)


def test_the_width_budget_rejects_the_old_wide_tables():
    raw, sigmoid = _raw_and_sigmoid(METHODS)
    every_column = tables.for_display(tables.rerank_table(PASSAGES, raw, sigmoid))  # 13 columns
    assert tables.row_chars(every_column) > tables.WIDTH_CHARS["full"]
    one_column_per_layer = tables.layer_ranking_table(list(range(1, 31)), RNG.normal(size=(30, 8)), PASSAGES)
    assert tables.row_chars(one_column_per_layer) > tables.WIDTH_CHARS["full"]
    assert tables.row_chars(_per_query()) > tables.WIDTH_CHARS["full"]  # Compare's 19 columns


def test_headers_are_short_and_numbers_have_at_most_four_significant_digits():
    for view, (table, _) in ordinary_views().items():
        assert all(len(str(name)) <= 24 for name in table.columns), (view, list(table.columns))
        for name in table.columns:
            if pd.api.types.is_float_dtype(table[name]):
                # significant digits from the mantissa (5.6e-05 has two; "%g" would print it in scientific form)
                digits = [
                    len(f"{abs(v):.10e}".split("e")[0].replace(".", "").rstrip("0")) for v in table[name].dropna()
                ]
                assert max(digits, default=0) <= 4, (view, name, table[name].tolist())


def test_dataframe_settings_wrap_text_type_numbers_and_cut_long_cells():
    table, _ = ordinary_views()["rerank-table"]
    settings = tables.dataframe_settings(table)
    assert settings["wrap"] is True and settings["max_chars"] == tables.CELL_CHARS
    assert settings["datatype"][:3] == ["number", "str", "number"]
    passage_share = float(settings["column_widths"][1].rstrip("%"))
    assert passage_share == max(float(w.rstrip("%")) for w in settings["column_widths"])
    with pytest.raises(ValueError, match="width must be one of"):
        tables.dataframe_settings(table, width="wide")


def test_rerank_view_puts_ranks_side_by_side_and_keeps_sigmoids_while_they_fit():
    raw, sigmoid = _raw_and_sigmoid(["bi-encoder", "LLM reranker", "cutoff L12"])
    view = tables.rerank_view(PASSAGES, raw, sigmoid)
    assert list(view.columns[2:5]) == ["bi-encoder rank", "LLM reranker rank", "cutoff L12 rank"]
    assert list(view.columns[-2:]) == ["LLM reranker sigmoid", "cutoff L12 sigmoid"]
    assert view["LLM reranker rank"].tolist() == tables.ranks_from_scores(raw["LLM reranker"])
    assert view["LLM reranker score"].tolist() == [tables.round_significant(v) for v in raw["LLM reranker"]]
    raw4, sigmoid4 = _raw_and_sigmoid(METHODS)
    four = tables.rerank_view(PASSAGES, raw4, sigmoid4)
    assert not any(c.endswith("sigmoid") for c in four.columns)  # no room: the download has them
    assert [c for c in four.columns if c.endswith("rank")] == [f"{m} rank" for m in METHODS]


def test_layer_views_replace_thirty_rank_columns():
    layers = [0, 10, 20, 30]
    scores = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.3, 0.1, 0.2], [0.9, 0.1, 0.2]])
    summary = tables.layer_rank_summary(layers, scores, ["a", "b", "c"])
    assert summary.columns.tolist() == [
        "#", "passage", "rank at layer 0", "rank at layer 30", "best rank", "settled at layer", "score at layer 30",
    ]  # fmt: skip
    assert summary["rank at layer 0"].tolist() == [3, 2, 1]
    assert summary["rank at layer 30"].tolist() == [1, 3, 2]
    assert summary["best rank"].tolist() == [1, 2, 1]
    assert summary["settled at layer"].tolist() == [10, 20, 20]  # a: first at 10 and stays; b, c swap back at 20
    long = tables.layer_scores_long(layers, scores, ["a", "b", "c"])
    assert long.shape == (12, 5) and long.columns.tolist() == ["layer", "#", "passage", "score", "rank"]
    at_30 = long[long["layer"] == 30]
    assert at_30["rank"].tolist() == [1, 3, 2] and at_30["score"].tolist() == [0.9, 0.1, 0.2]
    assert tables.layer_scores_long(list(range(30)), np.zeros((30, 8)), PASSAGES).shape == (240, 5)


def test_comparison_view_has_eight_columns_and_the_nDCG_difference():
    per_query = _per_query(n=5)
    view = tables.comparison_view(per_query, 10)
    assert view.columns.tolist() == [
        "query", "topic", "nDCG@10 A", "nDCG@10 B", "B − A", "MRR@10 A", "MRR@10 B", "shared of top 10",
    ]  # fmt: skip
    expected = (per_query["nDCG@10 B"] - per_query["nDCG@10 A"]).map(lambda v: tables.round_significant(v, 3))
    assert view["B − A"].tolist() == expected.tolist()
    assert view["query"].tolist() == per_query["query"].tolist()  # full text: gr.DataFrame cuts it on screen
    with pytest.raises(ValueError, match="lacks the columns"):
        tables.comparison_view(per_query.drop(columns="topic"), 10)


def test_comparison_summary_view_names_the_runs_a_and_b():
    names = ("all-MiniLM-L6-v2 (final layer)", "all-MiniLM-L6-v2 (layer 3)")
    summary = pd.DataFrame([{"metric": "MRR@10", names[0]: 0.99012, names[1]: 0.81234, "diff": -0.17778, "ties": 3}])
    view = tables.comparison_summary_view(summary, names)
    assert view.columns.tolist() == ["metric", "A", "B", "B − A", "ties"]
    assert view.iloc[0].tolist() == ["MRR@10", 0.99, 0.812, -0.178, 3]
    with pytest.raises(ValueError, match="lacks the columns"):
        tables.comparison_summary_view(summary, ("x", "y"))
