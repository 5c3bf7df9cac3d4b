"""pandas tables for the app: pure functions from numbers and texts to DataFrames (what the UI shows and downloads).

Two layers. The *builders* (``encode_table``, ``rerank_table`` …) keep every digit and the full texts: CSV downloads,
the API and tests see exact values. The *views* (``for_display``, ``layer_rank_summary``, ``comparison_view`` …) are
what a person reads at 1400 px: short headers, numbers at 4 significant digits, no 30-column matrices; and
``dataframe_settings`` gives the gr.DataFrame keyword arguments (column widths, wrapping, cell truncation with the
full text one click away) that keep a view inside the page. Nothing here imports gradio.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from flagdemo.ui.views.text import short_label


def ranks_from_scores(scores: Sequence[float]) -> list[int]:
    """1-based ranks, highest score first; ties keep input order (stable), like a sorted result list."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    ranks = np.empty(len(order), dtype=int)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks.tolist()


def encode_table(
    texts: Sequence[str],
    embeddings: np.ndarray,
    *,
    token_counts: Sequence[int],
    truncated: Sequence[bool],
    n_dims: int = 4,
) -> pd.DataFrame:
    """One row per text: its length in tokens, whether it was cut, its vector's norm and first dimensions."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    table = pd.DataFrame(
        {
            "#": np.arange(1, len(texts) + 1),
            "text": list(texts),
            "tokens": list(token_counts),
            "truncated": [bool(t) for t in truncated],
            "norm": np.linalg.norm(vectors, axis=1),
        }
    )
    for d in range(min(n_dims, vectors.shape[1])):
        table[f"dim {d}"] = vectors[:, d]
    return table


def embedding_summary(embeddings: np.ndarray) -> pd.DataFrame:
    """A few numbers that tell normalised from raw vectors and a crowded space from a spread one."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.clip(norms[:, None], 1e-12, None)
    cosines = unit @ unit.T
    off_diagonal = cosines[~np.eye(len(vectors), dtype=bool)]
    rows = [
        ("texts", float(len(vectors))),
        ("dimensions", float(vectors.shape[1])),
        ("mean norm", float(norms.mean())),
        ("min norm", float(norms.min())),
        ("max norm", float(norms.max())),
        ("mean value", float(vectors.mean())),
        ("mean pairwise cosine", float(off_diagonal.mean()) if off_diagonal.size else float("nan")),
    ]
    return pd.DataFrame(rows, columns=["statistic", "value"])


def top_k_table(scores: np.ndarray, queries: Sequence[str], passages: Sequence[str], *, k: int = 3) -> pd.DataFrame:
    """For each query its ``k`` best passages with scores: the retrieval view of a similarity matrix."""
    matrix = np.asarray(scores, dtype=float)
    rows = []
    for qi, query in enumerate(queries):
        order = np.argsort(-matrix[qi], kind="stable")[:k]
        for rank, pi in enumerate(order, start=1):
            rows.append(
                {"query": short_label(query, 60), "rank": rank, "passage": passages[pi], "score": matrix[qi, pi]}
            )
    return pd.DataFrame(rows, columns=["query", "rank", "passage", "score"])


def rerank_table(
    passages: Sequence[str],
    raw: Mapping[str, Sequence[float]],
    normalized: Mapping[str, Sequence[float] | None],
) -> pd.DataFrame:
    """Side by side per method: raw score, sigmoid (when the method has one) and rank of every passage."""
    table = pd.DataFrame({"#": np.arange(1, len(passages) + 1), "passage": list(passages)})
    for method, scores in raw.items():
        table[f"{method} score"] = list(map(float, scores))
        sigmoid = normalized.get(method)
        if sigmoid is not None:
            table[f"{method} sigmoid"] = list(map(float, sigmoid))
        table[f"{method} rank"] = ranks_from_scores(scores)
    return table


def kendall_tau_table(raw: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """Pairwise Kendall τ between methods' scores: 1 = same order, -1 = reversed."""
    methods = list(raw)
    values = np.ones((len(methods), len(methods)))
    for i, a in enumerate(methods):
        for j, b in enumerate(methods):
            if i < j:
                tau = kendalltau(raw[a], raw[b]).statistic if len(raw[a]) > 1 else float("nan")
                values[i, j] = values[j, i] = tau
    table = pd.DataFrame(values, columns=methods)
    table.insert(0, "method", methods)
    return table


def timing_table(rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """One row per method or model: what it cost (load and run seconds, items, tokens per second)."""
    return pd.DataFrame(list(rows), columns=["method", "model", "load s", "run s", "items", "tokens/s", "note"])


def layer_ranking_table(layers: Sequence[int], scores: np.ndarray, passages: Sequence[str]) -> pd.DataFrame:
    """Rank of every passage at every layer: where the order settles tells how deep the model must go."""
    matrix = np.asarray(scores, dtype=float)
    table = pd.DataFrame({"#": np.arange(1, len(passages) + 1), "passage": [short_label(p, 60) for p in passages]})
    for li, layer in enumerate(layers):
        table[f"L{layer}"] = ranks_from_scores(matrix[li])
    return table


def layer_metrics_table(
    layers: Sequence[int], metrics: Mapping[str, Sequence[float]], seconds: Sequence[float] | None
) -> pd.DataFrame:
    """Quality and cost per cutoff layer, the numbers behind the sweep chart."""
    table = pd.DataFrame({"layer": list(layers)})
    for name, values in metrics.items():
        table[name] = list(map(float, values))
    if seconds is not None:
        table["ms to layer"] = [1000.0 * s for s in seconds]
    return table


def projection_table(
    ids: Sequence[str],
    texts: Sequence[str],
    groups: Sequence[str],
    coords: np.ndarray,
    *,
    kind: str = "passage",
) -> pd.DataFrame:
    """Coordinates with ids, texts and colours: the downloadable CSV of a map."""
    points = np.asarray(coords, dtype=float)
    table = pd.DataFrame({"id": list(ids), "kind": kind, "group": list(groups), "text": list(texts)})
    for axis, name in enumerate("xyz"[: points.shape[1]]):
        table[name] = points[:, axis]
    return table


def neighbours_table(
    scores: np.ndarray, query_texts: Sequence[str], ids: Sequence[str], texts: Sequence[str], *, k: int
) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """Each query's ``k`` nearest corpus points (by cosine) as a table, and the (query, point) edges to draw."""
    matrix = np.asarray(scores, dtype=float)
    rows, edges = [], []
    for qi, query in enumerate(query_texts):
        for rank, pi in enumerate(np.argsort(-matrix[qi], kind="stable")[:k], start=1):
            rows.append(
                {
                    "query": f"Q{qi + 1}: {short_label(query, 50)}",
                    "rank": rank,
                    "id": ids[pi],
                    "text": texts[pi],
                    "cosine": matrix[qi, pi],
                }
            )
            edges.append((qi, int(pi)))
    return pd.DataFrame(rows, columns=["query", "rank", "id", "text", "cosine"]), edges


# ---- Views: what a person reads at 1400 px ------------------------------------------------------------------------

DISPLAY_DIGITS = 4
# A result table spans the page (about 1,250 px of a 1400 px window) or half of it when two tables share a row.
# At gradio's table font one character is about 8 px and each cell adds about 3 characters of padding.
WIDTH_CHARS = {"full": 150, "half": 70}
CELL_PADDING_CHARS = 3
# Text cells longer than this are cut on screen; one click on the cell shows the whole text (gradio's max_chars).
CELL_CHARS = 90
# A text column wraps; this many characters per line keeps a one- or two-line passage to two or three lines.
TEXT_COLUMN_CHARS = {"full": 48, "half": 26}
# The narrowest numeric column: a 4-digit number or a short header word.
MIN_COLUMN_CHARS = 5
# How wide each result table is laid out (keys as in text.HOW_TO_READ): "half" when two tables share a row.
MAX_HEIGHT = 420  # pixels: about ten rows of one line, then the table scrolls

TABLE_WIDTH = {
    "encode-table": "full",
    "encode-summary": "half",
    "similarity-table": "full",
    "rerank-table": "full",
    "rerank-tau": "half",
    "rerank-timing": "full",
    "sweep-ranks": "full",
    "sweep-metrics": "half",
    "projection-table": "full",
    "compare-summary": "full",
    "compare-table": "full",
    "systems-means": "full",
    "systems-pairs": "full",
    "systems-costs": "full",
    "systems-pipelines": "full",
    "systems-groups": "full",
    "systems-disagree": "full",
    "systems-side": "full",
    "systems-passages": "full",
    "cocktail-table": "full",
    "models-catalog": "full",
    "models-cache": "full",
    "models-memory": "full",
}


MISSING = "–"  # what a table shows for a number that does not exist (a method that could not run, a rate of 0 tokens)


def round_significant(value: float, digits: int = DISPLAY_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (0.873456 → 0.8735, 1234.5678 → 1235.0); NaN stays NaN."""
    number = float(value)
    if not np.isfinite(number) or number == 0:
        return number
    return float(f"{number:.{digits}g}")


def for_display(
    table: pd.DataFrame, *, digits: int = DISPLAY_DIGITS, headers: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """A copy for the screen: floats at ``digits`` significant digits, a missing number as a dash (the browser would
    print "null"), headers renamed; integers and texts as they are (gr.DataFrame cuts long texts itself, see
    :func:`dataframe_settings`)."""
    shown = table.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = [MISSING if pd.isna(v) else round_significant(v, digits) for v in shown[column]]
    return shown.rename(columns=dict(headers or {}))


def _cell_chars(value: object) -> int:
    if isinstance(value, bool | np.bool_):
        return 5
    if isinstance(value, float | np.floating):
        return len(f"{float(value):g}")
    return len(str(value))


def _is_text_column(column: pd.Series) -> bool:
    """Free text (passages, queries, notes) wraps; short labels (ids, topics, method names) do not."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    return any(_cell_chars(v) > 24 for v in column)


def column_chars(table: pd.DataFrame, *, width: str = "full") -> list[int]:
    """Characters each column needs on screen: its longest cell (a text column wraps at a fixed line length, a cell
    is cut at CELL_CHARS) or the longest word of its header, whichever is wider; headers wrap between words."""
    needs = []
    for name in table.columns:
        header_word = max((len(word) for word in re.split(r"\s+|(?<=-)", str(name))), default=1)
        longest = max(map(_cell_chars, table[name]), default=0)
        if _is_text_column(table[name]):
            needs.append(max(header_word, min(longest, TEXT_COLUMN_CHARS[width])))
        else:
            needs.append(max(header_word, min(longest, CELL_CHARS), MIN_COLUMN_CHARS))
    return needs


def row_chars(table: pd.DataFrame, *, width: str = "full") -> int:
    """Characters one row of ``table`` needs, padding included: it fits when this is at most WIDTH_CHARS[width]."""
    return sum(chars + CELL_PADDING_CHARS for chars in column_chars(table, width=width))


def dataframe_settings(table: pd.DataFrame, *, width: str = "full", max_height: int = MAX_HEIGHT) -> dict:
    """Keyword arguments for gr.DataFrame (or its update) that show ``table`` without sideways scrolling.

    Column widths are percentages of the table's own width, in proportion to what each column needs (so they always
    add up to the page); text wraps inside its column; a cell longer than CELL_CHARS is cut and one click shows it
    whole; numbers are typed as numbers so they sort and align. ``width`` is "full" or "half" (two tables in a row).
    """
    if width not in WIDTH_CHARS:
        raise ValueError(f"width must be one of {sorted(WIDTH_CHARS)}, got {width!r}")
    needs = [chars + CELL_PADDING_CHARS for chars in column_chars(table, width=width)]
    datatype = [
        "bool"
        if pd.api.types.is_bool_dtype(table[name])
        else "number"
        if pd.api.types.is_numeric_dtype(table[name])
        else "str"
        for name in table.columns
    ]
    return {
        "wrap": True,
        "max_chars": CELL_CHARS,
        "column_widths": column_shares(needs),
        "datatype": datatype,
        "max_height": max_height,
    }


def column_shares(needs: Sequence[int], *, tenths: int = 994) -> list[str]:
    """Column widths in percent, in proportion to ``needs``, adding up to exactly 99.4 % (a little under 100 %, so
    cell borders never add up to a sideways scrollbar): each share is rounded down to 0.1 %, and the tenths that
    rounding lost go to the columns that lost the most (rounding every share down could lose 1 % with ten columns)."""
    total = sum(needs) or 1
    exact = [tenths * need / total for need in needs]
    shares = [math.floor(value) for value in exact]
    by_loss = sorted(range(len(needs)), key=lambda i: shares[i] - exact[i])
    for i in by_loss[: tenths - sum(shares)] if needs else []:
        shares[i] += 1
    return [f"{share / 10:.1f}%" for share in shares]


def layer_scores_long(layers: Sequence[int], scores: np.ndarray, passages: Sequence[str]) -> pd.DataFrame:
    """The layer sweep as a long (tidy) table: one row per layer and passage, with score and rank at that layer.

    Thirty layers stay four columns wide; it is also the shape pandas, plotting tools and spreadsheets expect."""
    matrix = np.asarray(scores, dtype=float)
    if matrix.shape != (len(layers), len(passages)):
        raise ValueError(f"scores have shape {matrix.shape}, expected ({len(layers)}, {len(passages)})")
    rows = [
        {"layer": int(layer), "#": j + 1, "passage": passages[j], "score": float(matrix[li, j]), "rank": rank}
        for li, layer in enumerate(layers)
        for j, rank in enumerate(ranks_from_scores(matrix[li]))
    ]
    return pd.DataFrame(rows, columns=["layer", "#", "passage", "score", "rank"])


def settled_layers(layers: Sequence[int], ranks: np.ndarray) -> list[int]:
    """For each passage, the first layer from which its rank equals its final rank at every later layer."""
    matrix = np.asarray(ranks)
    settled = []
    for j in range(matrix.shape[1]):
        first = len(layers) - 1
        while first > 0 and matrix[first - 1, j] == matrix[-1, j]:
            first -= 1
        settled.append(int(layers[first]))
    return settled


def layer_rank_summary(layers: Sequence[int], scores: np.ndarray, passages: Sequence[str]) -> pd.DataFrame:
    """Per passage: its rank at the first and last layer swept, its best rank, and the layer where its rank settled.

    The narrow replacement for one rank column per layer; the full matrix is :func:`layer_scores_long` and the
    rank heatmap figure."""
    matrix = np.asarray(scores, dtype=float)
    if matrix.shape != (len(layers), len(passages)):
        raise ValueError(f"scores have shape {matrix.shape}, expected ({len(layers)}, {len(passages)})")
    ranks = np.array([ranks_from_scores(row) for row in matrix])
    return pd.DataFrame(
        {
            "#": np.arange(1, len(passages) + 1),
            "passage": list(passages),
            f"rank at layer {layers[0]}": ranks[0],
            f"rank at layer {layers[-1]}": ranks[-1],
            "best rank": ranks.min(axis=0),
            "settled at layer": settled_layers(layers, ranks),
            f"score at layer {layers[-1]}": matrix[-1],
        }
    )


def comparison_view(per_query: pd.DataFrame, k: int) -> pd.DataFrame:
    """Compare's per-query (or disagreement) table in eight columns instead of nineteen: the query, its topic,
    nDCG@k and MRR@k of A and B, B − A in nDCG, and how many top-k passages A and B share. The download keeps all."""
    ndcg, mrr = f"nDCG@{k}", f"MRR@{k}"
    missing = [c for c in ("query", "topic", f"{ndcg} A", f"{ndcg} B", f"{mrr} A", f"{mrr} B") if c not in per_query]
    if missing:
        raise ValueError(f"the comparison table lacks the columns {missing}")
    view = pd.DataFrame(
        {
            "query": per_query["query"].astype(str),
            "topic": per_query["topic"].astype(str),
            f"{ndcg} A": per_query[f"{ndcg} A"].astype(float),
            f"{ndcg} B": per_query[f"{ndcg} B"].astype(float),
            "B − A": (per_query[f"{ndcg} B"] - per_query[f"{ndcg} A"]).astype(float),
            f"{mrr} A": per_query[f"{mrr} A"].astype(float),
            f"{mrr} B": per_query[f"{mrr} B"].astype(float),
        }
    )
    if f"shared@{k}" in per_query:
        view[f"shared of top {k}"] = per_query[f"shared@{k}"].astype(int)
    return for_display(view.reset_index(drop=True), digits=3)


def rerank_view(
    passages: Sequence[str],
    raw: Mapping[str, Sequence[float]],
    normalized: Mapping[str, Sequence[float] | None],
    *,
    width: str = "full",
) -> pd.DataFrame:
    """The Rerankers table for the screen: every method's rank side by side, then its raw score, then the sigmoids.

    The sigmoid columns come last and only while the row still fits ``width`` (four methods leave no room for them:
    the download, :func:`rerank_table`, always has them)."""
    view = pd.DataFrame({"#": np.arange(1, len(passages) + 1), "passage": list(passages)})
    for method, scores in raw.items():
        view[f"{method} rank"] = ranks_from_scores(scores)
    for method, scores in raw.items():
        view[f"{method} score"] = [round_significant(v) for v in map(float, scores)]
    for method in raw:
        sigmoid = normalized.get(method)
        if sigmoid is None:
            continue
        wider = view.assign(**{f"{method} sigmoid": [round_significant(v) for v in map(float, sigmoid)]})
        if row_chars(wider, width=width) > WIDTH_CHARS[width]:
            break
        view = wider
    return view


def comparison_summary_view(summary: pd.DataFrame, names: tuple[str, str]) -> pd.DataFrame:
    """Compare's mean-metrics table with "A" and "B" as headers instead of two long run names (the tab's note says
    which run is A and which is B), the difference as "B − A"."""
    missing = [c for c in ("metric", *names, "diff") if c not in summary]
    if missing:
        raise ValueError(f"the summary table lacks the columns {missing}")
    view = summary.rename(columns={names[0]: "A", names[1]: "B", "diff": "B − A"})
    return for_display(view.reset_index(drop=True), digits=3)


# ---- Compare N systems (the views of ``BenchmarkOutcome``; its own tables keep every digit for the downloads) ----


def systems_means_view(means: pd.DataFrame, descriptions: Mapping[str, str], tiers: Mapping[str, int]) -> pd.DataFrame:
    """One row per system, best tier first: its name, what it is, its tier on the first measure, every mean."""
    headline = str(means.columns[0])
    view = pd.DataFrame(
        {
            "system": [str(s) for s in means.index],
            "what it is": [descriptions.get(s, "") for s in means.index],
            f"tier ({headline})": [int(tiers[s]) for s in means.index],
        }
    )
    for measure in means.columns:
        view[str(measure)] = means[measure].to_numpy(dtype=float)
    view = view.sort_values([f"tier ({headline})", headline], ascending=[True, False], kind="mergesort")
    return for_display(view.reset_index(drop=True), digits=3)


def systems_pairs_view(pairs: pd.DataFrame, metric: str, alpha: float) -> pd.DataFrame:
    """The paired tests on ``metric``, one row per pair: the difference, its 95% interval, the three p-values and
    the verdict in words (Holm-adjusted randomization p against ``alpha``)."""
    rows = pairs[pairs["metric"] == metric]
    verdicts = [
        "cannot tell apart" if r.p_holm >= alpha else f"{r.b} better" if r.delta > 0 else f"{r.a} better"
        for r in rows.itertuples(index=False)
    ]
    view = pd.DataFrame(
        {
            "A": rows["a"].astype(str).to_numpy(),
            "B": rows["b"].astype(str).to_numpy(),
            "Δ (B − A)": rows["delta"].to_numpy(dtype=float),
            "95% interval": [f"{lo:+.3f} to {hi:+.3f}" for lo, hi in zip(rows.ci_low, rows.ci_high, strict=True)],
            "p randomization": rows["p_randomization"].to_numpy(dtype=float),
            "p t-test": rows["p_ttest"].to_numpy(dtype=float),
            "p Holm": rows["p_holm"].to_numpy(dtype=float),
            "verdict": verdicts,
        }
    )
    return for_display(view, digits=3)


def systems_costs_view(costs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """What each system cost next to its quality; a dash where a cost does not apply (BM25 has no model)."""
    view = pd.DataFrame(
        {
            "system": costs["system"].astype(str),
            metric: costs["quality"].astype(float),
            "ms per query": costs["query_ms"].astype(float),
            "ms per passage": costs["passage_ms"].astype(float),
            "ms per reranked pair": costs["pair_ms"].astype(float),
            "model MB": costs["model_mb"].astype(float),
            "bytes per vector": costs["bytes_per_vector"].astype(float),
            "dominated by": costs["dominated_by"].astype(str).replace("", "— (on the frontier)"),
        }
    )
    return for_display(view.reset_index(drop=True), digits=3)


def systems_pipelines_view(summaries: Mapping[str, Mapping]) -> pd.DataFrame:
    """Per pipeline: where its change came from (queries gained, lost, unchanged, stuck at the recall ceiling)."""
    columns = ["pipeline", "first stage", "depth", "gained", "lost", "unchanged", "recall ceiling", "mean Δ",
               "verdict"]  # fmt: skip
    rows = [
        [name, s["first"], s["depth"], s["gain"], s["loss"], s["same"], s["ceiling"], s["mean_delta"],
         "the reranker hurts" if s["hurts"] else "the reranker helps" if s["mean_delta"] > 0 else "no change"]
        for name, s in summaries.items()
    ]  # fmt: skip
    return for_display(pd.DataFrame(rows, columns=columns), digits=3)


def systems_groups_view(groups: pd.DataFrame, metric: str, systems: Sequence[str]) -> pd.DataFrame:
    """Per topic and language on ``metric``: queries, each system's mean, and the difference the group could detect."""
    if groups is None or groups.empty:
        return pd.DataFrame({"group": [], "queries": []})
    rows = groups[groups["metric"] == metric]
    view = pd.DataFrame(
        {
            "group": [f"{'language' if g == 'lang' else g} {v}" for g, v in zip(rows.group, rows.value, strict=True)],
            "queries": rows["queries"].astype(int).to_numpy(),
        }
    )
    for system in systems:
        view[str(system)] = rows[system].to_numpy(dtype=float)
    view["detectable Δ"] = [
        "too few queries" if small else f"{mdd:.2f}" for small, mdd in zip(rows["too_small"], rows["mdd"], strict=True)
    ]
    return for_display(view.reset_index(drop=True), digits=3)


def systems_disagreement_view(disagreement: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The ``top`` queries where the systems disagree most: the spread of the first measure, who did best and worst,
    and how much their top 10 overlap with the reference (rank-biased overlap, 1 = the same list)."""
    rows = disagreement.head(top)
    view = pd.DataFrame(
        {
            "query": rows["query"].astype(str),
            "spread": rows["spread"].astype(float),
            "best": rows["best"].astype(str),
            "worst": rows["worst"].astype(str),
            "mean RBO": rows["mean_rbo"].astype(float),
        }
    )
    return for_display(view.reset_index(drop=True), digits=3)


CHANGE_MARKS = {"gained": "new", "same": "", "lost": ""}


def systems_side_by_side_view(tops: pd.DataFrame, changes: pd.DataFrame, systems: Sequence[str]) -> pd.DataFrame:
    """One query's top results, one column per system: each cell a passage id, its graded label, and how it moved
    against the reference (the first column): "new" (not in the reference's top), ↑n / ↓n places."""
    marks: dict[tuple[str, str], str] = {}
    for row in changes.itertuples(index=False) if not changes.empty else ():
        if row.change == "moved":
            shift = int(row.base_rank) - int(row.rank)
            marks[row.system, row.passage_id] = f"↑{shift}" if shift > 0 else f"↓{-shift}"
        else:
            marks[row.system, row.passage_id] = CHANGE_MARKS.get(row.change, "")
    view = pd.DataFrame({"rank": tops["rank"].astype(int)})
    for system in systems:
        cells = []
        for passage, label in zip(tops[system], tops[f"{system} label"], strict=True):
            if not passage:
                cells.append("")
                continue
            mark = marks.get((system, passage), "")
            cells.append(f"{passage} · {int(label)}" + (f" {mark}" if mark else ""))
        view[str(system)] = cells
    return view


def systems_passages_view(tops: pd.DataFrame, systems: Sequence[str], texts: Mapping[str, str]) -> pd.DataFrame:
    """The passages of a side-by-side view, each once: its id, its graded label for this query, its text."""
    seen: dict[str, int] = {}
    for system in systems:
        for passage, label in zip(tops[system], tops[f"{system} label"], strict=True):
            if passage and passage not in seen:
                seen[passage] = int(label)
    return pd.DataFrame(
        {"passage": list(seen), "label": list(seen.values()), "text": [texts.get(p, "") for p in seen]}
    )
