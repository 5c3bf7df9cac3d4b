"""Figure builders: structure and values of the plotly figures, and the failsafe that replaces a broken chart."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from flagdemo.ui.views import figures


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
    assert list(fig.layout.xaxis.ticktext) == ["#1 same", "#2 other", "#3 same"]
    assert heatmap.customdata[1][2] == "<b>#2</b> q two<br>↔ <b>#3</b> same"


def test_similarity_heatmap_stays_readable_at_30_by_30():
    rng = np.random.default_rng(0)
    long_texts = [f"Passage {i}: " + "a fairly long sentence about something else entirely " * 3 for i in range(30)]
    fig = figures.similarity_heatmap(rng.random((30, 30)), long_texts, long_texts)
    ticks = list(fig.layout.xaxis.ticktext)
    assert len(set(ticks)) == 30  # numbered, so no two labels read the same
    assert max(map(len, ticks)) <= 22  # "#30 " + 18 characters: 30 slanted labels do not overlap
    assert ticks[29].startswith("#30 Passage 29")
    assert fig.data[0].texttemplate is None  # 900 cells are too small for printed values: hover gives them
    assert fig.layout.xaxis.tickangle == -60 and fig.layout.xaxis.automargin
    assert fig.layout.height >= 30 * 22  # rows get height, labels are not squeezed together
    hover = fig.data[0].customdata[4][7]
    assert "Passage 4:" in hover and "Passage 7:" in hover and "<br>" in hover  # full text, wrapped


def test_similarity_heatmap_small_keeps_long_labels_and_values():
    fig = figures.similarity_heatmap(np.eye(3), ["a" * 60, "b", "c"], ["x", "y", "z"])
    assert fig.layout.yaxis.ticktext[0] == "#1 " + "a" * 39 + "…"
    assert fig.data[0].texttemplate == "%{z:.2f}"


def test_failsafe_turns_a_shape_mismatch_into_a_message_figure():
    fig = figures.similarity_heatmap(np.zeros((2, 3)), ["only one"], ["a"])
    assert len(fig.data) == 0
    assert _message(fig).startswith("Could not draw this chart: scores have shape (2, 3)")


def test_failsafe_figure_carries_a_marker_that_charts_and_messages_do_not():
    broken = figures.layer_sweep_figure([1, 2], np.ones((3, 3)), ["a", "b", "c"])
    assert broken.layout.meta == figures.FAILSAFE_META == "flagdemo:could-not-draw"
    assert figures.is_failsafe(broken)
    message = figures.message_figure("Choose a second model to see two maps.")
    assert message.layout.meta == figures.MESSAGE_META and not figures.is_failsafe(message)
    chart = figures.similarity_heatmap(np.eye(2), ["a", "b"], ["c", "d"])
    assert chart.layout.meta is None and not figures.is_failsafe(chart)
    # the marker survives the JSON trip to the browser (gradio sends plotly JSON)
    assert '"meta":"flagdemo:could-not-draw"' in broken.to_json().replace(" ", "")


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


# The logit lens: small differences between passages, then every score jumps by ~40 at the last layer.
JUMPY = np.array([[-14.5, -14.2, -14.9], [-5.9, -5.2, -6.1], [-4.5, -4.9, -4.2], [33.4, 33.0, 33.9]])


def test_layer_sweep_centres_each_layer_when_the_last_layer_jumps():
    fig = figures.layer_sweep_figure([0, 10, 20, 30], JUMPY, ["p1", "p2", "p3"], metrics={"nDCG@3": [0.5] * 4})
    first = fig.data[0]
    np.testing.assert_allclose(first.y, JUMPY[:, 0] - JUMPY.mean(axis=1))
    np.testing.assert_allclose(first.customdata, JUMPY[:, 0])  # the hover box gives the raw score
    assert "raw score" in first.hovertemplate
    panel_title = fig.layout.annotations[0].text
    assert panel_title.startswith("Score per layer, centred") and "mean" in panel_title
    assert fig.layout.yaxis.title.text == "score − layer mean"
    # every layer keeps its order: centring only removes the shift common to all passages
    shown = np.array([trace.y for trace in fig.data[:3]]).T
    assert (np.argsort(shown, axis=1) == np.argsort(JUMPY, axis=1)).all()


def test_layer_sweep_keeps_raw_scores_without_a_jump_or_when_asked():
    calm = np.array([[0.2, 0.5], [0.3, 0.6], [0.35, 0.7]])
    fig = figures.layer_sweep_figure([1, 2, 3], calm, ["a", "b"])
    np.testing.assert_allclose(fig.data[1].y, calm[:, 1])
    assert fig.layout.annotations[0].text == "Score per layer (raw)"
    forced = figures.layer_sweep_figure([0, 10, 20, 30], JUMPY, ["p1", "p2", "p3"], centre=False)
    np.testing.assert_allclose(forced.data[0].y, JUMPY[:, 0])
    assert figures.should_centre(JUMPY) and not figures.should_centre(calm)
    assert not figures.should_centre(JUMPY[:, :1])  # one passage: nothing to compare within a layer


def test_metric_colours_are_fixed_whatever_the_order_or_cutoff():
    layers, scores = [1, 2], np.ones((2, 2))
    one = figures.layer_sweep_figure(layers, scores, ["a", "b"], metrics={"nDCG@5": [0, 1], "MRR@5": [1, 1]})
    two = figures.layer_sweep_figure(layers, scores, ["a", "b"], metrics={"MRR@10": [1, 1], "nDCG@10": [0, 1]})
    colour = {t.name.split("@")[0]: t.line.color for fig in (one,) for t in fig.data[2:]}
    assert colour == {t.name.split("@")[0]: t.line.color for t in two.data[2:]}
    assert colour["nDCG"] == figures.METRIC_COLOURS["nDCG"] != colour["MRR"]


def test_layer_rank_heatmap_shows_every_layer_as_a_column_of_ranks():
    fig = figures.layer_rank_heatmap([0, 10, 20, 30], JUMPY, ["p1", "p2", "p3"])
    z = np.asarray(fig.data[0].z)
    assert z.shape == (3, 4)  # passages down, layers across
    assert z[:, 0].tolist() == [2, 1, 3] and z[:, 3].tolist() == [2, 3, 1]
    assert list(fig.data[0].x) == ["0", "10", "20", "30"]
    assert fig.data[0].reversescale and fig.data[0].zmin == 1


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
    assert list(fig.data[3].text) == ["Q1 q"]
    assert fig.data[3].textposition == "top center"


def test_projection_query_points_carry_their_label_and_full_text():
    query = "Which pets are playful and love to run around the garden all day?"
    fig = figures.projection_scatter(np.zeros((2, 2)), ["a", "b"], query_coords=np.ones((1, 2)), query_texts=[query])
    star = fig.data[-1]
    assert star.mode == "markers+text" and star.text[0] == "Q1 Which pets are playful…"
    assert "all day?" in star.hovertext[0]


def test_group_colours_are_stable_between_runs_with_different_inputs():
    coords = np.zeros((4, 2))
    first = figures.projection_scatter(coords, list("abcd"), groups=["cluster 10", "cluster 2", "cluster 1", "x"])
    second = figures.projection_scatter(coords, list("abcd"), groups=["x", "cluster 1", "cluster 2", "cluster 10"])
    colours = {t.name: t.marker.color for t in first.data}
    assert colours == {t.name: t.marker.color for t in second.data}
    assert [t.name for t in first.data] == ["cluster 1", "cluster 2", "cluster 10", "x"]  # legend in natural order
    scatter = figures.paired_scatter([0.1, 0.2], [0.3, 0.4], ["q1", "q2"], groups=["x", "cluster 1"])
    assert {t.name: t.marker.color for t in scatter.data if t.name != "equal"} == {
        "cluster 1": colours["cluster 1"],
        "x": colours["cluster 2"],  # second in its own sorted list
    }


def test_projection_scatter_in_3d_uses_scatter3d_with_the_whole_cube_in_frame():
    fig = figures.projection_scatter(np.random.default_rng(0).normal(size=(5, 3)), list("abcde"))
    assert fig.data[0].type == "scatter3d"
    assert len(fig.data[0].z) == 5
    assert fig.layout.scene.aspectmode == "cube"
    assert (fig.layout.margin.l, fig.layout.margin.r, fig.layout.margin.b) == (0, 0, 0)
    assert fig.layout.scene.camera.eye.x > 1.25  # further out than plotly's default, so corners are not cut


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
