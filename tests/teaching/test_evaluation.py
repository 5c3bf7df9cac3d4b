"""Evaluation helpers driven by the numpy stand-ins from teaching_fakes.py; numbers are recomputed independently."""

from __future__ import annotations

import math
from dataclasses import dataclass

import ir_measures
import numpy as np
import pandas as pd
import pytest
from ir_measures import AP, RR, R, nDCG
from teaching_fakes import BagOfWordsEmbedder, OracleEmbedder, OracleReranker, bag_of_words

from flagdemo.analysis import evaluation
from flagdemo.errors import InvalidInputError

METRICS = ["nDCG@10", "MRR@10", "Recall@10", "MAP"]


def reference_metrics(run: pd.DataFrame, small_set) -> pd.DataFrame:
    """The same per-query metrics from ir-measures (trec_eval), scoring each passage by its inverse rank."""
    scored = {
        qid: {pid: -float(rank) for pid, rank in zip(group["passage_id"], group["rank"], strict=True)}
        for qid, group in run.groupby("query_id")
    }
    rows: dict[str, dict[str, float]] = {}
    for result in ir_measures.iter_calc([nDCG @ 10, RR, R @ 10, AP], small_set.judgements, scored):
        rows.setdefault(result.query_id, {})[str(result.measure)] = result.value
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame.rename(columns={"nDCG@10": "nDCG@10", "RR": "RR", "R@10": "Recall@10", "AP": "MAP"})


@pytest.fixture(scope="module")
def first_stage(small_set):
    return evaluation.retrieve(BagOfWordsEmbedder(), small_set, k=10)


class TestRetrieve:
    def test_run_is_the_cosine_ranking(self, small_set, first_stage):
        run = first_stage.run
        n_queries, n_passages = len(small_set.queries), len(small_set.passages)
        assert len(run) == n_queries * n_passages
        assert list(run.columns) == evaluation.RUN_COLUMNS
        query = small_set.queries.iloc[3]
        ours = run[run["query_id"] == query["id"]]
        assert ours["rank"].tolist() == list(range(1, n_passages + 1))
        assert (np.diff(ours["score"].to_numpy()) <= 0).all()
        # recompute three cosines by hand from the raw counts
        q = bag_of_words(query["text"])
        for passage_id, score in zip(ours["passage_id"][:3], ours["score"][:3], strict=True):
            p = bag_of_words(small_set.passage_texts[passage_id])
            assert score == pytest.approx(float(q @ p) / math.sqrt(float(q @ q) * float(p @ p)))

    def test_metrics_match_ir_measures(self, small_set, first_stage):
        reference = reference_metrics(first_stage.run, small_set)
        per_query = first_stage.per_query.set_index("query_id")
        for metric in ("nDCG@10", "Recall@10", "MAP"):
            np.testing.assert_allclose(per_query[metric], reference.loc[per_query.index, metric], atol=1e-12)
        # MRR@10 from the uncut RR: cut at 10 by hand
        cut_rr = reference.loc[per_query.index, "RR"].where(reference.loc[per_query.index, "RR"] >= 0.1, 0.0)
        np.testing.assert_allclose(per_query["MRR@10"], cut_rr, atol=1e-12)
        summary = first_stage.summary.iloc[0]
        assert summary["name"] == "bag-of-words"
        assert summary["queries"] == len(small_set.queries)
        for metric in METRICS:
            assert summary[metric] == pytest.approx(first_stage.per_query[metric].mean())
        # a bag of words finds something but is far from perfect on this set
        assert 0.2 < summary["nDCG@10"] < 0.95

    def test_queries_and_passages_go_through_their_own_encoders(self, small_set):
        embedder = BagOfWordsEmbedder()
        evaluation.retrieve(embedder, small_set, k=5, depth=7)
        assert embedder.calls == [("queries", len(small_set.queries)), ("corpus", len(small_set.passages))]

    def test_depth_limits_the_run(self, small_set):
        result = evaluation.retrieve(BagOfWordsEmbedder(), small_set, k=5, depth=7)
        assert result.run.groupby("query_id").size().eq(7).all()
        assert list(result.per_query.columns[4:8]) == ["nDCG@5", "MRR@5", "Recall@5", "MAP"]

    @pytest.mark.parametrize("output", ["numpy", "m3-dict", "torch"])
    def test_oracle_is_perfect_whatever_the_output_type(self, small_set, output):
        result = evaluation.retrieve(OracleEmbedder(small_set, output=output), small_set, k=10)
        for metric in METRICS:
            assert result.summary.iloc[0][metric] == pytest.approx(1.0)

    def test_wrong_shapes_are_readable_errors(self, small_set):
        class Broken(BagOfWordsEmbedder):
            def encode_corpus(self, corpus, **kwargs):
                return np.ones((len(corpus), 3))

        with pytest.raises(InvalidInputError, match="same model"):
            evaluation.retrieve(Broken(), small_set)

        class Short(BagOfWordsEmbedder):
            def encode_queries(self, queries, **kwargs):
                return np.ones((1, 4))

        with pytest.raises(InvalidInputError, match="expected"):
            evaluation.retrieve(Short(), small_set)

    def test_run_from_scores_breaks_ties_like_trec_eval(self):
        run = evaluation.run_from_scores(np.array([[1.0, 2.0, 1.0]]), ["q"], ["a", "b", "c"])
        assert run["passage_id"].tolist() == ["b", "c", "a"]


class TestRerank:
    def test_oracle_rerank_of_top_20(self, small_set, first_stage):
        reranker = OracleReranker(small_set)
        result = evaluation.rerank(reranker, small_set, first_stage, top_k=20, k=10)
        assert reranker.calls == [20 * len(small_set.queries)]
        run, first = result.run, first_stage.run
        for query_id in small_set.queries["id"]:
            ours = run[run["query_id"] == query_id]
            before = first[first["query_id"] == query_id]
            # the reranked head is a permutation of the first-stage top 20, the tail is untouched
            assert set(ours["passage_id"][:20]) == set(before["passage_id"][:20])
            assert ours["passage_id"][20:].tolist() == before["passage_id"][20:].tolist()
            assert ours["stage"].tolist() == ["rerank"] * 20 + ["retrieve"] * (len(before) - 20)
            # oracle: the head is sorted by relevance, so nDCG@10 is the best the candidates allow
            judged = small_set.judgements[query_id]
            grades = [judged.get(pid, 0) for pid in ours["passage_id"][:20]]
            assert grades == sorted(grades, reverse=True)
        reference = reference_metrics(run, small_set)
        per_query = result.per_query.set_index("query_id")
        np.testing.assert_allclose(per_query["nDCG@10"], reference.loc[per_query.index, "nDCG@10"], atol=1e-12)
        np.testing.assert_allclose(per_query["MAP"], reference.loc[per_query.index, "MAP"], atol=1e-12)
        assert (per_query["nDCG@10"] >= first_stage.per_query.set_index("query_id")["nDCG@10"] - 1e-12).all()
        assert result.summary.iloc[0]["nDCG@10"] > first_stage.summary.iloc[0]["nDCG@10"]
        assert result.name == "oracle-reranker"

    def test_pairs_line_up_with_their_index(self, small_set, first_stage):
        pairs, index = evaluation.rerank_pairs(small_set, first_stage, top_k=3)
        assert len(pairs) == len(index) == 3 * len(small_set.queries)
        assert index["query_id"].tolist()[:3] == [small_set.queries["id"][0]] * 3
        assert index["first_stage_rank"].tolist()[:3] == [1, 2, 3]
        for (query, passage), row in zip(pairs, index.itertuples(), strict=True):
            assert query == small_set.query_texts[row.query_id]
            assert passage == small_set.passage_texts[row.passage_id]

    def test_single_float_and_per_layer_outputs(self, small_set, first_stage):
        one = small_set.subset(max_queries=1)

        class SingleFloat:
            def compute_score(self, pairs, **kwargs):
                assert len(pairs) == 1
                return 0.5

        result = evaluation.rerank(SingleFloat(), one, first_stage, top_k=1, name="single")
        assert result.run.iloc[0]["score"] == 0.5

        class PerLayer:
            def compute_score(self, pairs, **kwargs):
                return [[0.0] * len(pairs), [1.0] * len(pairs)]

        with pytest.raises(InvalidInputError, match="layer_sweep_metrics"):
            evaluation.rerank(PerLayer(), small_set, first_stage, top_k=2)


@dataclass
class FakeSweep:
    layers: list[int]
    scores: np.ndarray
    cumulative_seconds: list[float]


class TestLayerSweep:
    def test_metrics_per_layer(self, small_set, first_stage):
        pairs, index = evaluation.rerank_pairs(small_set, first_stage, top_k=20)
        oracle = np.asarray(OracleReranker(small_set).compute_score(pairs))
        keep_first_stage = -index["first_stage_rank"].to_numpy(dtype=float)
        reversed_order = index["first_stage_rank"].to_numpy(dtype=float)
        sweep = FakeSweep([4, 8, 12], np.stack([reversed_order, keep_first_stage, oracle]), [0.1, 0.2, 0.3])
        table = evaluation.layer_sweep_metrics(sweep, index, small_set, k=10, first_stage_run=first_stage)
        assert table["layer"].tolist() == [4, 8, 12]
        assert table["cumulative_seconds"].tolist() == [0.1, 0.2, 0.3]
        assert table["tied_queries"].tolist() == [0, 0, 0]
        first = first_stage.summary.iloc[0]
        best = evaluation.rerank(OracleReranker(small_set), small_set, first_stage, top_k=20).summary.iloc[0]
        for metric in METRICS:
            assert table.loc[1, metric] == pytest.approx(first[metric])  # same order as the first stage
            assert table.loc[2, metric] == pytest.approx(best[metric])  # the oracle layer
        assert table.loc[0, "nDCG@10"] < table.loc[1, "nDCG@10"] < table.loc[2, "nDCG@10"]

    def test_tied_layers_are_flagged_and_skipped_when_choosing_the_best(self, small_set, first_stage):
        pairs, index = evaluation.rerank_pairs(small_set, first_stage, top_k=20)
        oracle = np.asarray(OracleReranker(small_set).compute_score(pairs))
        constant = np.zeros(len(pairs))
        one_query_tied = oracle.copy()
        one_query_tied[:20] = 1.0  # the first query's 20 candidates all tie
        sweep = FakeSweep([0, 1, 2], np.stack([constant, one_query_tied, -oracle]), [0.0, 0.1, 0.2])
        table = evaluation.layer_sweep_metrics(sweep, index, small_set, k=10, first_stage_run=first_stage)
        assert table["tied_queries"].tolist() == [len(small_set.queries), 1, 0]
        # the constant layer keeps the first-stage order and scores higher than the anti-oracle layer 2 ...
        assert table.loc[0, "nDCG@10"] == pytest.approx(first_stage.summary.iloc[0]["nDCG@10"])
        assert table.loc[0, "nDCG@10"] > table.loc[2, "nDCG@10"]
        # ... but only a layer that ranks every query can be chosen as the best cutoff
        assert evaluation.best_layer(table, "nDCG@10")["layer"] == 2
        assert evaluation.best_layer(table.iloc[:2], "nDCG@10")["layer"] in (0, 1)

    def test_shape_mismatch_is_a_readable_error(self, small_set, first_stage):
        _, index = evaluation.rerank_pairs(small_set, first_stage, top_k=5)
        sweep = FakeSweep([1, 2], np.zeros((2, 3)), [0.1, 0.2])
        with pytest.raises(InvalidInputError, match="pair index"):
            evaluation.layer_sweep_metrics(sweep, index, small_set)


class TestCompareRuns:
    def test_per_query_differences_overlap_and_disagreements(self, small_set, first_stage):
        reranked = evaluation.rerank(OracleReranker(small_set), small_set, first_stage, top_k=20)
        comparison = evaluation.compare_runs(first_stage, reranked, k=10, top_n=4)
        assert comparison.names == ("bag-of-words", "oracle-reranker")
        per_query = comparison.per_query
        for metric in METRICS:
            expected = reranked.per_query[metric].to_numpy() - first_stage.per_query[metric].to_numpy()
            np.testing.assert_allclose(per_query[f"{metric} diff"], expected, atol=1e-12)
        # the oracle only reorders the top 20: the top-10 overlap is computed from the two runs by hand
        query_id = per_query["query_id"][0]
        top_a = set(first_stage.run[first_stage.run["query_id"] == query_id]["passage_id"][:10])
        top_b = set(reranked.run[reranked.run["query_id"] == query_id]["passage_id"][:10])
        assert per_query["Jaccard@10"][0] == pytest.approx(len(top_a & top_b) / len(top_a | top_b))
        assert per_query["shared@10"][0] == len(top_a & top_b)
        gaps = comparison.disagreements["nDCG@10 diff"].abs().tolist()
        assert len(gaps) == 4 and gaps == sorted(gaps, reverse=True)
        assert gaps[0] == pytest.approx(per_query["nDCG@10 diff"].abs().max())
        summary = comparison.summary.set_index("metric")
        assert summary.loc["nDCG@10", "diff"] == pytest.approx(per_query["nDCG@10 diff"].mean())
        counts = summary.loc["nDCG@10", ["B better", "A better", "ties"]]
        assert counts.sum() == len(small_set.queries)
        assert summary.loc["nDCG@10", "A better"] == 0  # an oracle rerank never loses on nDCG@10
        assert comparison.mean_jaccard == pytest.approx(per_query["Jaccard@10"].mean())

    def test_a_run_against_itself(self, small_set, first_stage):
        comparison = evaluation.compare_runs(first_stage, first_stage.run, k=5)
        assert comparison.names == ("bag-of-words", "B")
        assert (comparison.per_query["Jaccard@5"] == 1.0).all()
        assert (comparison.per_query["nDCG@5 diff"] == 0).all()
        assert (comparison.summary["ties"] == len(small_set.queries)).all()
        same_name = evaluation.compare_runs(first_stage, first_stage)
        assert same_name.names == ("bag-of-words (A)", "bag-of-words (B)")

    def test_plain_frames_need_the_set(self, first_stage):
        with pytest.raises(InvalidInputError, match="retrieval_set"):
            evaluation.compare_runs(first_stage.run, first_stage.run)

    def test_summary_table_stacks_rows(self, small_set, first_stage):
        oracle = evaluation.retrieve(OracleEmbedder(small_set), small_set)
        table = evaluation.summary_table([first_stage, oracle])
        assert table["name"].tolist() == ["bag-of-words", "oracle"]
        assert table.loc[1, "nDCG@10"] == pytest.approx(1.0)


def test_markdown_table():
    frame = pd.DataFrame({"name": ["a|b"], "nDCG@10": [0.12345], "queries": [3]})
    assert evaluation.markdown_table(frame).splitlines() == [
        "| name | nDCG@10 | queries |",
        "|---|---|---|",
        "| a\\|b | 0.123 | 3 |",
    ]


@pytest.mark.slow
def test_default_models_report_runs_end_to_end_on_tiny_models(tiny_dir):
    """The `make quality` pipeline with the committed tiny models: real engine classes, real sweep."""
    from flagdemo import FlagLLMReranker, FlagModel
    from flagdemo.engine import quality

    embedder = FlagModel(str(tiny_dir / "bert-embedder"))
    reranker = FlagLLMReranker(str(tiny_dir / "llama-decoder"))
    summary, per_layer = quality.default_models_report(embedder, reranker, top_k=6, k=5, max_queries=4)
    assert summary["queries"].tolist() == [4, 4, 4]
    assert summary["name"][1].endswith("rerank top-6")
    assert per_layer["layer"].tolist() == sorted(per_layer["layer"])
    assert (np.diff(per_layer["cumulative_seconds"]) >= 0).all()
    ranking_layers = per_layer[per_layer["tied_queries"] == 0]
    assert per_layer.loc[0, "tied_queries"] == 4  # layer 0: every pair ends in the same prompt token
    assert not ranking_layers.empty
    best = ranking_layers.loc[ranking_layers["nDCG@5"].idxmax()]
    assert summary.loc[2, "nDCG@5"] == pytest.approx(best["nDCG@5"])
    assert f"layer {int(best['layer'])} of" in summary["name"][2]
    # the sweep's last layer is the reranker's own score, so its quality equals the rerank row's
    for metric in ("nDCG@5", "MRR@5", "Recall@5", "MAP"):
        assert per_layer[metric].iloc[-1] == pytest.approx(summary.loc[1, metric], abs=1e-9)


class TestLayerEmbedder:
    def test_last_layer_is_the_ordinary_embedding_and_earlier_layers_differ(self, tiny_dir, small_set):
        from flagdemo import FlagModel
        from flagdemo.errors import LayerOutOfRangeError

        model = FlagModel(str(tiny_dir / "bert-embedder"), query_instruction_for_retrieval="Find: ")
        texts = small_set.passages["text"].tolist()[:5]
        queries = small_set.queries["text"].tolist()[:3]
        last = evaluation.LayerEmbedder(model, -1)
        assert last.layer == model.num_layers
        np.testing.assert_allclose(last.encode_corpus(texts), model.encode_corpus(texts), atol=1e-5)
        np.testing.assert_allclose(last.encode_queries(queries), model.encode_queries(queries), atol=1e-5)
        first = evaluation.LayerEmbedder(model, 0)
        assert not np.allclose(first.encode_corpus(texts), model.encode_corpus(texts), atol=1e-3)
        assert first.model_name.endswith("@ layer 0")
        with pytest.raises(LayerOutOfRangeError, match="layers 0 to"):
            evaluation.LayerEmbedder(model, model.num_layers + 1)
        with pytest.raises(InvalidInputError, match="encode_detailed"):
            evaluation.LayerEmbedder(BagOfWordsEmbedder(), 1)


class TestInspectionHelpers:
    def test_top_passages(self, small_set, first_stage):
        query_id = small_set.queries["id"][0]
        top = evaluation.top_passages(first_stage, query_id, n=4)
        run = first_stage.run[first_stage.run["query_id"] == query_id]
        assert top["rank"].tolist() == [1, 2, 3, 4]
        assert top["passage_id"].tolist() == run["passage_id"].tolist()[:4]
        judged = small_set.judgements[query_id]
        assert top["relevance"].tolist() == [judged.get(p, 0) for p in top["passage_id"]]
        assert top["passage"][0] == small_set.passage_texts[top["passage_id"][0]]
        with pytest.raises(InvalidInputError, match="Unknown query id"):
            evaluation.top_passages(first_stage, "q-none")

    def test_hard_negative_ranks(self, small_set, first_stage):
        table = evaluation.hard_negative_ranks(first_stage)
        assert len(table) == int(small_set.qrels["hard_negative"].sum())
        run = first_stage.run.set_index(["query_id", "passage_id"])["rank"]
        for row in table.itertuples():
            assert row.rank == run[(row.query_id, row.passage_id)]
            best = min(run[(row.query_id, p)] for p in small_set.relevant_passages(row.query_id))
            assert row.best_relevant_rank == best
            assert row.beats_all_relevant == (row.rank < best)
        assert table["beats_all_relevant"].any()  # word overlap does fool a bag of words
        oracle = evaluation.hard_negative_ranks(evaluation.retrieve(OracleEmbedder(small_set), small_set))
        assert not oracle["beats_all_relevant"].any()
