"""Plotly figures for the app: pure functions from numbers and labels to a ``go.Figure``.

Nothing here loads a model or touches gradio, so every figure can be unit-tested on hand-made data. Each builder is
wrapped in :func:`failsafe`: a figure that cannot be drawn becomes a small figure that says why, instead of an
exception that would leave the tab broken. Such figures carry ``layout.meta`` = :data:`FAILSAFE_META` (or
:data:`MESSAGE_META` for a plain "nothing to show" figure), so tests and browser checks can tell them from charts.

Readable on a projector: axis labels are numbered and shortened (the full text is in the hover box), colours are
fixed per metric and per sorted group, so two runs look alike.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import ParamSpec

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from flagdemo.ui.views.text import LABEL_CHARS, numbered_label, short_label, wrapped

logger = logging.getLogger(__name__)

P = ParamSpec("P")

PALETTE = (
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#B279A2",
    "#EECA3B",
    "#9D755D",
    "#FF9DA6",
    "#BAB0AC",
    "#1F3B73",
    "#B85C00",
    "#2E6B26",
    "#8C1C13",
    "#2A7F7A",
    "#6A3D7C",
    "#A88700",
    "#5C4033",
    "#D6336C",
    "#5F6B6D",
)
# One colour per metric family in every chart of every run (nDCG@5 and nDCG@10 share one).
METRIC_COLOURS = {"nDCG": "#1B9E77", "MRR": "#D95F02", "Recall": "#7570B3", "MAP": "#E7298A"}
QUERY_COLOUR = "black"
MESSAGE_META = "flagdemo:message"
FAILSAFE_META = "flagdemo:could-not-draw"


def metric_colour(name: str) -> str:
    """The fixed colour of a metric (``nDCG@10`` → nDCG's); other names get grey."""
    return METRIC_COLOURS.get(name.split("@", 1)[0].strip(), "#666666")


def _natural_key(label: str) -> list:
    """``cluster 2`` before ``cluster 10``: numbers inside labels sort as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", label)]


def is_failsafe(fig: go.Figure) -> bool:
    """True for the figure :func:`failsafe` draws instead of a chart that failed."""
    return fig.layout.meta == FAILSAFE_META


def message_figure(message: str, *, title: str = "", meta: str = MESSAGE_META) -> go.Figure:
    """An empty figure that shows one sentence: used for "nothing to show yet" and for drawing failures."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 15}, align="center"
    )
    fig.update_layout(
        title=title or None,
        xaxis={"visible": False},
        yaxis={"visible": False},
        meta=meta,
        height=260,
        margin={"l": 20, "r": 20, "t": 50 if title else 20, "b": 20},
    )
    return fig


def failsafe(builder: Callable[P, go.Figure]) -> Callable[P, go.Figure]:
    """Turn an exception inside a figure builder into a "could not draw" figure (the tab keeps working)."""

    @functools.wraps(builder)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> go.Figure:
        try:
            return builder(*args, **kwargs)
        except Exception as exc:
            logger.exception("figure %s failed", builder.__name__)
            return message_figure(f"Could not draw this chart: {exc}", meta=FAILSAFE_META)

    return wrapper


def _label_chars(n: int) -> int:
    """Shorter axis labels as rows or columns multiply, so 30 labels still fit without overlapping."""
    return LABEL_CHARS if n <= 8 else 28 if n <= 15 else 18


def _categorical_axis(labels: Sequence[str], *, numbered: bool = False) -> dict:
    """Numeric positions with text ticks: repeated labels (tokens, identical texts) stay separate rows/columns.

    ``numbered`` prefixes ``#1``, ``#2`` … (texts; tokens are left as they are) so shortened labels stay telling."""
    limit = _label_chars(len(labels))
    ticks = [numbered_label(i, t, limit) if numbered else short_label(t, limit) for i, t in enumerate(labels)]
    axis = {"tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": ticks, "automargin": True}
    if len(labels) > 15:
        axis["tickfont"] = {"size": 10}
    return axis


@failsafe
def similarity_heatmap(
    scores: np.ndarray,
    row_texts: Sequence[str],
    col_texts: Sequence[str],
    *,
    title: str = "Similarity",
    show_values: bool | None = None,
    score_name: str = "score",
) -> go.Figure:
    """Rows × columns scores, readable up to 30 × 30: numbered short labels, the full texts and score on hover, the
    value in each cell while cells are large enough for it (``show_values`` None = decide by size)."""
    matrix = np.asarray(scores, dtype=float)
    if matrix.shape != (len(row_texts), len(col_texts)):
        raise ValueError(f"scores have shape {matrix.shape} but there are {len(row_texts)}×{len(col_texts)} texts")
    n_rows, n_cols = matrix.shape
    if show_values is None:
        show_values = n_cols <= 12 and n_rows <= 20
    rows = [wrapped(t, 60, 3) for t in row_texts]
    cols = [wrapped(t, 60, 3) for t in col_texts]
    hover = [
        [f"<b>#{i + 1}</b> {rows[i]}<br>↔ <b>#{j + 1}</b> {cols[j]}" for j in range(n_cols)] for i in range(n_rows)
    ]
    heatmap = go.Heatmap(
        z=matrix,
        x=list(range(n_cols)),
        y=list(range(n_rows)),
        customdata=hover,
        hovertemplate=f"%{{customdata}}<br>{score_name} %{{z:.4f}}<extra></extra>",
        colorscale="Viridis",
        texttemplate="%{z:.2f}" if show_values else None,
        colorbar={"title": score_name},
        xgap=1,
        ygap=1,
    )
    fig = go.Figure(heatmap)
    fig.update_layout(
        title=title,
        # Labels slanted up to the right end at their column, so the last one never runs off the right edge.
        xaxis={**_categorical_axis(col_texts, numbered=True), "tickangle": -30 if n_cols <= 8 else -60},
        yaxis={**_categorical_axis(row_texts, numbered=True), "autorange": "reversed"},
        height=max(380, 220 + (34 if n_rows <= 12 else 22) * n_rows),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


@failsafe
def top_k_bars(scores: Sequence[float], texts: Sequence[str], *, k: int = 5, title: str = "Top matches") -> go.Figure:
    """The ``k`` best-scoring texts for one query, best on top."""
    values = np.asarray(scores, dtype=float)
    if len(values) != len(texts):
        raise ValueError(f"{len(values)} scores for {len(texts)} texts")
    order = np.argsort(-values, kind="stable")[: max(1, k)]
    fig = go.Figure(
        go.Bar(
            x=values[order],
            y=[f"#{rank + 1} {short_label(texts[i])}" for rank, i in enumerate(order)],
            orientation="h",
            hovertext=[wrapped(texts[i]) for i in order],
            text=[f"{values[i]:.3f}" for i in order],
        )
    )
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, height=max(240, 60 + 30 * len(order)))
    return fig


@failsafe
def rank_change_chart(ranks: Mapping[str, Sequence[int]], texts: Sequence[str], *, title: str = "") -> go.Figure:
    """Bump chart: one line per passage across methods, rank 1 at the top, so reorderings jump out."""
    methods = list(ranks)
    if not methods:
        raise ValueError("no method produced a ranking")
    for method, method_ranks in ranks.items():
        if len(method_ranks) != len(texts):
            raise ValueError(f"{method} ranked {len(method_ranks)} passages, expected {len(texts)}")
    fig = go.Figure()
    for i, text in enumerate(texts):
        fig.add_trace(
            go.Scatter(
                x=methods,
                y=[ranks[m][i] for m in methods],
                mode="lines+markers",
                name=numbered_label(i, text),
                hovertext=[f"{m}: rank {ranks[m][i]}<br>#{i + 1} {wrapped(text)}" for m in methods],
                hoverinfo="text",
                line={"color": PALETTE[i % len(PALETTE)], "width": 3},
                marker={"size": 12},
            )
        )
    fig.update_layout(
        title=title or "Rank of each passage per method (1 = best)",
        yaxis={"autorange": "reversed", "dtick": 1, "title": "rank"},
        height=max(320, 80 + 40 * len(texts)),
        legend={"title": "passage"},
    )
    return fig


def should_centre(scores: np.ndarray) -> bool:
    """True when a common shift between layers dwarfs the differences between passages within a layer.

    The logit lens jumps by tens at the last layer for every passage alike; plotted raw, every earlier layer is a
    flat line. Centring each layer (subtracting its mean over passages) keeps every layer's order and gaps."""
    matrix = np.asarray(scores, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 2:
        return False
    between = float(np.ptp(matrix.mean(axis=1)))
    within = float(np.median(np.ptp(matrix, axis=1)))
    return between > 4 * max(within, 1e-12)


@failsafe
def layer_sweep_figure(
    layers: Sequence[int],
    scores: np.ndarray,
    texts: Sequence[str],
    *,
    metrics: Mapping[str, Sequence[float]] | None = None,
    seconds: Sequence[float] | None = None,
    title: str = "",
    centre: bool | None = None,
) -> go.Figure:
    """Each passage's score across layers; below it, ranking quality per layer and the time to reach that layer.

    ``centre`` subtracts each layer's mean over passages (None: when :func:`should_centre` says the common shift
    hides the differences); the panel title says which, and the hover box always gives the raw score."""
    matrix = np.asarray(scores, dtype=float)
    if matrix.shape != (len(layers), len(texts)):
        raise ValueError(f"scores have shape {matrix.shape}, expected ({len(layers)}, {len(texts)})")
    if centre is None:
        centre = should_centre(matrix)
    shown = matrix - matrix.mean(axis=1, keepdims=True) if centre else matrix
    score_title = (
        "Score per layer, centred: each layer's mean over the passages subtracted (hover: raw score)"
        if centre
        else "Score per layer (raw)"
    )
    lower = bool(metrics) or seconds is not None
    fig = make_subplots(
        rows=2 if lower else 1,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        specs=[[{}], [{"secondary_y": True}]] if lower else [[{}]],
        subplot_titles=(score_title, "Quality and cost per layer") if lower else (score_title,),
    )
    for j, text in enumerate(texts):
        fig.add_trace(
            go.Scatter(
                x=list(layers),
                y=shown[:, j],
                mode="lines+markers",
                name=numbered_label(j, text),
                legendgroup="passages",
                legendgrouptitle={"text": "passage"} if j == 0 else None,
                customdata=matrix[:, j],
                hovertemplate=f"#{j + 1} {wrapped(text)}<br>layer %{{x}}: raw score %{{customdata:.4g}}"
                "<extra></extra>",
                line={"color": PALETTE[j % len(PALETTE)]},
            ),
            row=1,
            col=1,
        )
    for name, values in (metrics or {}).items():
        if len(values) != len(layers):
            raise ValueError(f"{name} has {len(values)} values for {len(layers)} layers")
        fig.add_trace(
            go.Scatter(
                x=list(layers),
                y=list(values),
                mode="lines+markers",
                name=name,
                legendgroup="quality",
                line={"color": metric_colour(name), "width": 3},
            ),
            row=2,
            col=1,
            secondary_y=False,
        )
    if seconds is not None:
        if len(seconds) != len(layers):
            raise ValueError(f"{len(seconds)} timings for {len(layers)} layers")
        fig.add_trace(
            go.Scatter(
                x=list(layers),
                y=[1000.0 * s for s in seconds],
                mode="lines",
                name="time to layer (ms)",
                legendgroup="quality",
                line={"dash": "dot", "color": "grey"},
            ),
            row=2,
            col=1,
            secondary_y=True,
        )
    fig.update_yaxes(title_text="score − layer mean" if centre else "score", row=1, col=1)
    if lower:
        fig.update_yaxes(title_text="metric", range=[0, 1.05], row=2, col=1, secondary_y=False)
        fig.update_yaxes(title_text="ms", row=2, col=1, secondary_y=True)
        fig.update_xaxes(title_text="layer", row=2, col=1)
    else:
        fig.update_xaxes(title_text="layer", row=1, col=1)
    fig.update_layout(title=title or None, height=680 if lower else 420, legend={"tracegroupgap": 12})
    return fig


@failsafe
def layer_rank_heatmap(
    layers: Sequence[int], scores: np.ndarray, texts: Sequence[str], *, title: str = ""
) -> go.Figure:
    """Rank of every passage at every layer (1 = best, brightest): the 30-layer matrix as a picture, not 30 columns."""
    matrix = np.asarray(scores, dtype=float)
    if matrix.shape != (len(layers), len(texts)):
        raise ValueError(f"scores have shape {matrix.shape}, expected ({len(layers)}, {len(texts)})")
    ranks = np.empty(matrix.shape, dtype=int)
    for li, row in enumerate(matrix):
        ranks[li, np.argsort(-row, kind="stable")] = np.arange(1, len(texts) + 1)
    fig = go.Figure(
        go.Heatmap(
            z=ranks.T,
            x=[str(layer) for layer in layers],
            y=list(range(len(texts))),
            colorscale="Viridis",
            reversescale=True,
            zmin=1,
            zmax=max(len(texts), 2),
            text=ranks.T,
            texttemplate="%{text}" if len(layers) <= 40 else None,
            customdata=[[wrapped(t, 60, 3)] * len(layers) for t in texts],
            hovertemplate="%{customdata}<br>layer %{x}: rank %{z}<extra></extra>",
            colorbar={"title": "rank"},
            xgap=1,
            ygap=1,
        )
    )
    fig.update_layout(
        title=title or "Rank of each passage at each layer (1 = best)",
        xaxis={"title": "layer", "type": "category"},
        yaxis={**_categorical_axis(texts, numbered=True), "autorange": "reversed"},
        height=max(300, 140 + 30 * len(texts)),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def _group_colours(groups: Sequence[str]) -> dict[str, str]:
    """The same label gets the same colour in every panel and every run: groups in natural order (cluster 2 before
    cluster 10), colours in palette order."""
    ordered = sorted({str(g) for g in groups}, key=_natural_key)
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(ordered)}


def _edge_coordinates(start: np.ndarray, ends: np.ndarray, edges: Sequence[tuple[int, int]]) -> list[list]:
    """Per-axis coordinate lists for many segments in one trace, separated by None (plotly's line breaks)."""
    axes: list[list] = [[] for _ in range(start.shape[1])]
    for q, p in edges:
        for axis in range(start.shape[1]):
            axes[axis].extend([float(start[q, axis]), float(ends[p, axis]), None])
    return axes


@failsafe
def projection_scatter(
    coords: np.ndarray,
    texts: Sequence[str],
    *,
    groups: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    query_coords: np.ndarray | None = None,
    query_texts: Sequence[str] = (),
    edges: Sequence[tuple[int, int]] = (),
    title: str = "",
) -> go.Figure:
    """2D or 3D map of the corpus, one trace per group; queries as stars with lines to their neighbours."""
    points = np.asarray(coords, dtype=float)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"coordinates must have 2 or 3 columns, got shape {points.shape}")
    if len(texts) != len(points):
        raise ValueError(f"{len(points)} points for {len(texts)} texts")
    three_d = points.shape[1] == 3
    group_of = [str(g) for g in groups] if groups is not None else ["passage"] * len(points)
    point_ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(points))]
    colours = _group_colours(group_of)
    scatter = go.Scatter3d if three_d else go.Scatter
    fig = go.Figure()
    for group, colour in colours.items():
        members = [i for i, g in enumerate(group_of) if g == group]
        axes = {name: points[members, k] for k, name in enumerate("xyz"[: points.shape[1]])}
        fig.add_trace(
            scatter(
                **axes,
                mode="markers",
                name=group,
                legendgroup=group,
                marker={"color": colour, "size": 5 if three_d else 10, "opacity": 0.85},
                customdata=[point_ids[i] for i in members],
                hovertext=[f"[{point_ids[i]}] {group}<br>{wrapped(texts[i])}" for i in members],
                hoverinfo="text",
            )
        )
    if query_coords is not None and len(query_texts):
        queries = np.asarray(query_coords, dtype=float)
        if queries.shape != (len(query_texts), points.shape[1]):
            raise ValueError(f"query coordinates have shape {queries.shape} for {len(query_texts)} queries")
        if edges:
            line_axes = _edge_coordinates(queries, points, edges)
            fig.add_trace(
                scatter(
                    **dict(zip("xyz", line_axes, strict=False)),
                    mode="lines",
                    name="query → top-k",
                    line={"color": "rgba(80,80,80,0.5)", "width": 2},
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            scatter(
                **{name: queries[:, k] for k, name in enumerate("xyz"[: points.shape[1]])},
                mode="markers+text",
                name="query",
                text=[f"Q{i + 1} {short_label(t, 24)}" for i, t in enumerate(query_texts)],
                textposition="top center",
                textfont={"size": 13, "color": QUERY_COLOUR},
                marker={
                    "symbol": "diamond" if three_d else "star",
                    "size": 8 if three_d else 18,
                    "color": QUERY_COLOUR,
                },
                hovertext=[f"query Q{i + 1}<br>{wrapped(t)}" for i, t in enumerate(query_texts)],
                hoverinfo="text",
            )
        )
    layout: dict = {"title": title or None, "legend": {"title": "colour"}, "uirevision": "projection"}
    if three_d:
        # The whole cube inside the frame: no margins taken from the scene, the camera a little further out.
        layout |= {
            "height": 680,
            "margin": {"l": 0, "r": 0, "t": 40 if title else 10, "b": 0},
            "scene": {"aspectmode": "cube", "camera": {"eye": {"x": 1.6, "y": 1.6, "z": 1.1}}},
        }
    else:
        layout |= {"height": 560, "margin": {"l": 10, "r": 10, "t": 50 if title else 20, "b": 10}}
    fig.update_layout(**layout)
    return fig


@failsafe
def side_by_side_projection(
    left: np.ndarray,
    right: np.ndarray,
    texts: Sequence[str],
    *,
    groups: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    titles: tuple[str, str] = ("A", "B"),
    highlight: Sequence[str] = (),
) -> go.Figure:
    """Two 2D maps of the same points; a legend click toggles a group in both, highlighted ids are ringed in both."""
    a, b = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"both maps need the same N×2 shape, got {a.shape} and {b.shape}")
    if len(texts) != len(a):
        raise ValueError(f"{len(a)} points for {len(texts)} texts")
    group_of = [str(g) for g in groups] if groups is not None else ["passage"] * len(a)
    point_ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(a))]
    colours = _group_colours(group_of)
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.06)
    for col, points in ((1, a), (2, b)):
        for group, colour in colours.items():
            members = [i for i, g in enumerate(group_of) if g == group]
            fig.add_trace(
                go.Scatter(
                    x=points[members, 0],
                    y=points[members, 1],
                    mode="markers",
                    name=group,
                    legendgroup=group,
                    showlegend=col == 1,
                    marker={"color": colour, "size": 9},
                    customdata=[point_ids[i] for i in members],
                    hovertext=[f"[{point_ids[i]}] {group}<br>{wrapped(texts[i])}" for i in members],
                    hoverinfo="text",
                ),
                row=1,
                col=col,
            )
        ringed = [i for i, pid in enumerate(point_ids) if pid in set(map(str, highlight))]
        if ringed:
            fig.add_trace(
                go.Scatter(
                    x=points[ringed, 0],
                    y=points[ringed, 1],
                    mode="markers+text",
                    name="highlighted",
                    legendgroup="highlighted",
                    showlegend=col == 1,
                    text=[point_ids[i] for i in ringed],
                    textposition="top center",
                    marker={"size": 18, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 2}},
                    hoverinfo="skip",
                ),
                row=1,
                col=col,
            )
    fig.update_layout(height=520, legend={"title": "colour (click toggles both maps)"})
    return fig


@failsafe
def token_alignment_heatmap(
    similarity: np.ndarray, query_tokens: Sequence[str], passage_tokens: Sequence[str], *, title: str = ""
) -> go.Figure:
    """ColBERT view: token-to-token similarities, with each query token's best passage token marked (MaxSim)."""
    matrix = np.asarray(similarity, dtype=float)
    if matrix.shape != (len(query_tokens), len(passage_tokens)):
        raise ValueError(
            f"similarity has shape {matrix.shape} for {len(query_tokens)} query and "
            f"{len(passage_tokens)} passage tokens"
        )
    best = matrix.argmax(axis=1)
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=list(range(len(passage_tokens))),
            y=list(range(len(query_tokens))),
            colorscale="Blues",
            customdata=[[f"{q} ↔ {p}" for p in passage_tokens] for q in query_tokens],
            hovertemplate="%{customdata}<br>%{z:.3f}<extra></extra>",
            colorbar={"title": "cosine"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=best.tolist(),
            y=list(range(len(query_tokens))),
            mode="markers",
            name="MaxSim",
            marker={"symbol": "x", "size": 10, "color": "crimson"},
            hovertext=[
                f"{q} → {passage_tokens[b]}: {matrix[i, b]:.3f}"
                for i, (q, b) in enumerate(zip(query_tokens, best, strict=True))
            ],
            hoverinfo="text",
        )
    )
    fig.update_layout(
        title=title or f"ColBERT alignment (mean MaxSim {matrix.max(axis=1).mean():.3f})",
        xaxis={**_categorical_axis(passage_tokens), "tickangle": -45},
        yaxis={**_categorical_axis(query_tokens), "autorange": "reversed"},
        height=max(320, 80 + 24 * len(query_tokens)),
    )
    return fig


@failsafe
def lexical_weights_bar(
    query_weights: Mapping[str, float], passage_weights: Mapping[str, float], *, top: int = 20, title: str = ""
) -> go.Figure:
    """Sparse view: the tokens a query and passage share, each side's weight, and their product (the score terms)."""
    shared = sorted(set(query_weights) & set(passage_weights), key=lambda t: -query_weights[t] * passage_weights[t])
    if not shared:
        return message_figure("The query and the passage share no weighted token: the lexical score is 0.")
    shared = shared[:top]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=shared, y=[query_weights[t] for t in shared], name="query weight"))
    fig.add_trace(go.Bar(x=shared, y=[passage_weights[t] for t in shared], name="passage weight"))
    fig.add_trace(
        go.Bar(x=shared, y=[query_weights[t] * passage_weights[t] for t in shared], name="product (adds to score)")
    )
    total = sum(query_weights[t] * passage_weights[t] for t in set(query_weights) & set(passage_weights))
    fig.update_layout(barmode="group", title=title or f"Shared tokens (lexical score {total:.4f})", height=380)
    return fig


@failsafe
def vector_heatmap(vectors: np.ndarray, texts: Sequence[str], *, n_dims: int = 64, title: str = "") -> go.Figure:
    """The first ``n_dims`` values of each embedding as colour: what "a text becomes a vector" looks like."""
    matrix = np.asarray(vectors, dtype=float)
    if matrix.ndim != 2 or len(matrix) != len(texts):
        raise ValueError(f"{len(texts)} texts but vectors of shape {matrix.shape}")
    shown = matrix[:, :n_dims]
    limit = float(np.abs(shown).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            y=list(range(len(texts))),
            colorscale="RdBu",
            zmin=-limit,
            zmax=limit,
            customdata=[[wrapped(t, 60, 3)] * shown.shape[1] for t in texts],
            hovertemplate="%{customdata}<br>dim %{x}: %{z:.4f}<extra></extra>",
            colorbar={"title": "value"},
        )
    )
    fig.update_layout(
        title=title or f"First {shown.shape[1]} of {matrix.shape[1]} dimensions",
        xaxis={"title": "dimension"},
        yaxis={**_categorical_axis(texts, numbered=True), "autorange": "reversed"},
        height=max(260, 80 + (30 if len(texts) <= 12 else 20) * len(texts)),
    )
    return fig


@failsafe
def paired_scatter(
    a: Sequence[float],
    b: Sequence[float],
    texts: Sequence[str],
    *,
    groups: Sequence[str],
    names: tuple[str, str] = ("A", "B"),
    metric: str = "nDCG@10",
) -> go.Figure:
    """One point per query, A's score across and B's up: above the diagonal B wins, below A wins."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or len(x) != len(texts) or len(groups) != len(x):
        raise ValueError(f"{len(x)} and {len(y)} values for {len(texts)} queries")
    fig = go.Figure()
    for group, colour in _group_colours(groups).items():
        members = [i for i, g in enumerate(groups) if str(g) == group]
        fig.add_trace(
            go.Scatter(
                x=x[members],
                y=y[members],
                mode="markers",
                name=group,
                marker={"color": colour, "size": 10, "opacity": 0.8},
                hovertext=[f"{wrapped(texts[i])}<br>A {x[i]:.3f} · B {y[i]:.3f}" for i in members],
                hoverinfo="text",
            )
        )
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="equal", line={"dash": "dot", "color": "grey"}))
    fig.update_layout(
        title=f"{metric} per query: {names[1]} (up) vs {names[0]} (across)",
        xaxis={"title": f"{metric} {names[0]}", "range": [-0.02, 1.02]},
        yaxis={"title": f"{metric} {names[1]}", "range": [-0.02, 1.02]},
        height=520,
    )
    return fig


@failsafe
def cost_quality_frontier(costs: pd.DataFrame, *, metric: str) -> go.Figure:
    """Quality up, milliseconds per query across (log scale): the systems no other beats on both are joined by the
    frontier line; a dominated system is drawn hollow and its hover names the systems that beat it."""
    if costs.empty:
        raise ValueError("no systems to draw")
    frame = costs.sort_values("query_ms", kind="mergesort").copy()
    frame["query_ms"] = frame["query_ms"].clip(lower=1e-3)  # a log axis cannot show 0 ms
    fig = go.Figure()
    frontier = frame[frame["pareto"]]
    fig.add_trace(
        go.Scatter(x=frontier["query_ms"], y=frontier["quality"], mode="lines", name="frontier",
                   line={"dash": "dot", "color": "grey"}, hoverinfo="skip")
    )  # fmt: skip
    for on_frontier, name in ((True, "on the frontier"), (False, "dominated")):
        part = frame[frame["pareto"] == on_frontier]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["query_ms"],
                y=part["quality"],
                mode="markers+text",
                name=name,
                text=part["system"],
                textposition="top center",
                marker={
                    "size": 12,
                    "color": PALETTE[0] if on_frontier else "white",
                    "line": {"color": PALETTE[0], "width": 2},
                },
                hovertext=[
                    f"{r.system}: {metric} {r.quality:.3f}, {r.query_ms:.3g} ms per query"
                    + (f"<br>dominated by {r.dominated_by}" if r.dominated_by else "")
                    for r in part.itertuples(index=False)
                ],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title=f"{metric} against the time per query",
        xaxis={"title": "ms per query (log scale)", "type": "log"},
        yaxis={"title": f"mean {metric}"},
        height=460,
    )
    return fig
