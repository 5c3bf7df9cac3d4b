"""Figure builders: structure and values of the plotly figures, and the failsafe that replaces a broken chart."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from flagdemo import figures


def _message(fig: go.Figure) -> str:
    return fig.layout.annotations[0].text if fig.layout.annotations else ""


def test_similarity_heatmap_keeps_values_labels_and_hover():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.5]])
    fig = figures.similarity_heatmap(scores, ["q one", "q two"], ["same", "other", "same"])
    heatmap = fig.data[0]
    assert heatmap.type == "heatmap"
    np.testing.assert_allclose(np.asarray(heatmap.z), scores)
    assert heatmap.texttemplate == "%{z:.2f}"
    # Repeated labels stay separate columns: positions are numeric, the text is only the tick label.
    assert list(fig.layout.xaxis.tickvals) == [0, 1, 2]
    assert list(fig.layout.xaxis.ticktext) == ["same", "other", "same"]
    assert heatmap.customdata[1][2] == "q two<br>↔ same"


def test_failsafe_turns_a_shape_mismatch_into_a_message_figure():
    fig = figures.similarity_heatmap(np.zeros((2, 3)), ["only one"], ["a"])
    assert len(fig.data) == 0
    assert _message(fig).startswith("Could not draw this chart: scores have shape (2, 3)")


def test_long_labels_are_shortened_to_one_line():
    label = figures.short_label("word " * 40, limit=20)
    assert len(label) == 20
    assert label.endswith("…")
    assert "\n" not in figures.short_label("a\nb")


def test_top_k_bars_orders_best_first():
    fig = figures.top_k_bars([0.1, 0.7, 0.4], ["low", "high", "mid"], k=2)
    assert list(fig.data[0].x) == [0.7, 0.4]
    assert [y.split(" ", 1)[1] for y in fig.data[0].y] == ["high", "mid"]


def test_rank_change_chart_has_one_line_per_passage_with_its_ranks():
    fig = figures.rank_change_chart({"cosine": [1, 2, 3], "llm": [3, 1, 2]}, ["a", "b", "c"])
    assert len(fig.data) == 3
    assert list(fig.data[0].x) == ["cosine", "llm"]
    assert list(fig.data[0].y) == [1, 3]
    assert list(fig.data[2].y) == [3, 2]
    assert fig.layout.yaxis.autorange == "reversed"


def test_rank_change_chart_rejects_a_short_ranking():
    fig = figures.rank_change_chart({"cosine": [1, 2]}, ["a", "b", "c"])
    assert "cosine ranked 2 passages, expected 3" in _message(fig)


def test_layer_sweep_figure_puts_metrics_and_time_on_two_axes():
    scores = np.array([[0.1, 0.2], [0.5, 0.3], [0.9, 0.1]])
    fig = figures.layer_sweep_figure(
        [1, 2, 3],
        scores,
        ["p1", "p2"],
        metrics={"nDCG@5": [0.5, 0.8, 1.0], "MRR@5": [0.5, 1, 1]},
        seconds=[0.01, 0.02, 0.03],
    )
    assert len(fig.data) == 5
    np.testing.assert_allclose(fig.data[0].y, [0.1, 0.5, 0.9])
    assert fig.data[2].name == "nDCG@5"
    time_trace = fig.data[4]
    np.testing.assert_allclose(time_trace.y, [10.0, 20.0, 30.0])
    assert time_trace.yaxis != fig.data[2].yaxis  # the secondary axis


def test_layer_sweep_figure_without_labels_is_one_panel():
    fig = figures.layer_sweep_figure([1, 2], np.ones((2, 3)), ["a", "b", "c"])
    assert len(fig.data) == 3
    assert {trace.yaxis for trace in fig.data} == {"y"}


def test_projection_scatter_groups_points_and_draws_query_edges():
    coords = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    fig = figures.projection_scatter(
        coords,
        ["a", "b", "c", "d"],
        groups=["x", "y", "x", "y"],
        ids=["p1", "p2", "p3", "p4"],
        query_coords=np.array([[0.5, 0.5]]),
        query_texts=["q"],
        edges=[(0, 1), (0, 3)],
    )
    types = [trace.type for trace in fig.data]
    assert types == ["scatter"] * 4
    assert fig.data[0].name == "x" and list(fig.data[0].customdata) == ["p1", "p3"]
    edges = fig.data[2]
    assert list(edges.x) == [0.5, 1.0, None, 0.5, 1.0, None]
    assert list(edges.y) == [0.5, 0.0, None, 0.5, 1.0, None]
    assert list(fig.data[3].text) == ["Q1"]


def test_projection_scatter_in_3d_uses_scatter3d():
    fig = figures.projection_scatter(np.random.default_rng(0).normal(size=(5, 3)), list("abcde"))
    assert fig.data[0].type == "scatter3d"
    assert len(fig.data[0].z) == 5


def test_projection_scatter_rejects_1d_coordinates():
    assert "2 or 3 columns" in _message(figures.projection_scatter(np.zeros((3, 1)), ["a", "b", "c"]))


def test_side_by_side_links_groups_and_highlights_in_both_maps():
    left = np.array([[0, 0], [1, 1], [2, 2]], dtype=float)
    right = -left
    fig = figures.side_by_side_projection(left, right, ["a", "b", "c"], groups=["g", "h", "g"], highlight=["1"])
    scatter = [t for t in fig.data if t.name in ("g", "h")]
    assert len(scatter) == 4
    assert {t.legendgroup for t in scatter} == {"g", "h"}
    assert [t.showlegend for t in scatter] == [True, True, False, False]
    rings = [t for t in fig.data if t.name == "highlighted"]
    assert len(rings) == 2
    assert (rings[0].x[0], rings[1].x[0]) == (1.0, -1.0)


def test_token_alignment_marks_the_best_passage_token_per_query_token():
    sim = np.array([[0.1, 0.9, 0.2], [0.7, 0.3, 0.6]])
    fig = figures.token_alignment_heatmap(sim, ["hello", "world"], ["a", "b", "a"])
    assert fig.data[0].type == "heatmap"
    assert list(fig.data[1].x) == [1, 0]
    assert "0.800" in fig.layout.title.text  # mean MaxSim (0.9 + 0.7) / 2


def test_lexical_weights_bar_shows_shared_tokens_and_their_products():
    fig = figures.lexical_weights_bar({"cat": 0.5, "sat": 0.2, "the": 0.1}, {"cat": 0.4, "the": 0.3, "dog": 0.9})
    assert list(fig.data[0].x) == ["cat", "the"]
    np.testing.assert_allclose(fig.data[2].y, [0.2, 0.03])
    assert "0.2300" in fig.layout.title.text


def test_lexical_weights_bar_without_shared_tokens_says_so():
    assert "share no weighted token" in _message(figures.lexical_weights_bar({"a": 1.0}, {"b": 1.0}))


def test_vector_heatmap_shows_the_first_dimensions():
    vectors = np.arange(20, dtype=float).reshape(2, 10)
    fig = figures.vector_heatmap(vectors, ["a", "b"], n_dims=4)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), vectors[:, :4])
    assert fig.data[0].zmax == 13.0 and fig.data[0].zmin == -13.0


@pytest.mark.parametrize("message", ["Nothing yet.", "Could not draw: x"])
def test_message_figure_has_no_data_and_the_sentence(message):
    fig = figures.message_figure(message)
    assert len(fig.data) == 0
    assert _message(fig) == message
