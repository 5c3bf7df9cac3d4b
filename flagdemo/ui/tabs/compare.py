"""Compare: two embedders (or one at two layers) on the bundled labelled set, query by query."""

from __future__ import annotations

import gradio as gr

from flagdemo import figures, request_log
from flagdemo import text as words
from flagdemo.engine import Engine
from flagdemo.ui import common, inputs

TITLE = "Compare"
TAB_ID = "compare"
READ_SUMMARY = (
    "mean over the queries. nDCG@k rewards putting the most relevant passages first (1 = the judged order); "
    "MRR@k is 1 / the rank of the first relevant passage; Recall@k the share of relevant passages in the top k."
)
READ_PLOT = (
    "one dot per query: A's nDCG against B's. Dots above the diagonal are queries where B does better, below "
    "where A does; colours are topics."
)
READ_TABLES = "the queries where A and B differ most, then every query; download the CSV for all the numbers."


@common.user_errors("comparing the models")
def compare(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    model_a: str | None = None,
    layer_a: float = -1,
    model_b: str | None = None,
    layer_b: float = 3,
    k: float = 10,
    max_queries: float = 0,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    model_a = inputs.model_name(model_a, engine.embedder)
    model_b = inputs.model_name(model_b, engine.embedder)
    layer_a = inputs.whole_number(layer_a, "A's layer", minimum=-1, maximum=1000)
    layer_b = inputs.whole_number(layer_b, "B's layer", minimum=-1, maximum=1000)
    k = inputs.whole_number(k, "k", minimum=1, maximum=1_000_000)
    max_queries = inputs.whole_number(max_queries, "The number of queries", minimum=0, maximum=1_000_000)
    request_log.note(models=[model_a, model_b])
    outcome = engine.compare(
        model_a,
        model_b,
        layer_a=layer_a,
        layer_b=layer_b,
        k=k,
        max_queries=max_queries,
        progress=lambda fraction, desc: progress(fraction, desc=desc),
    )
    comparison = outcome.comparison
    per_query = comparison.per_query
    metric = f"nDCG@{k}"
    figure = figures.paired_scatter(
        per_query[f"{metric} A"],
        per_query[f"{metric} B"],
        per_query["query"].tolist(),
        groups=per_query["topic"].tolist(),
        names=comparison.names,
        metric=metric,
    )
    seconds_a, seconds_b = outcome.seconds
    encode_time = (
        f"{seconds_a:.1f} s, once for both layers"
        if outcome.same_model
        else f"{seconds_a:.1f} s (A) and {seconds_b:.1f} s (B)"
    )
    csv_path = common.download_dir() / "comparison.csv"
    per_query.to_csv(csv_path, index=False)
    note = (
        f"{common.plural(outcome.n_queries, 'labelled query', 'labelled queries')}, "
        f"{common.plural(outcome.n_passages, 'passage')}. A = {comparison.names[0]}, B = {comparison.names[1]}. "
        f"Encoding took {encode_time} (a repeated comparison reuses the embeddings while the model stays loaded). "
        f"Mean overlap (Jaccard) of the two top-{k} lists: {comparison.mean_jaccard:.3f}."
    )
    if comparison.names[0] == comparison.names[1]:
        note += " A and B are the same model at the same layer, so every difference is 0."
    return (
        common.shown(comparison.summary),
        figure,
        common.shown(comparison.disagreements),
        common.shown(per_query),
        str(csv_path),
        note,
    )


def render(engine: Engine) -> common.TabParts:
    gr.Markdown(words.tab_intro(TITLE))
    menu = engine.model_menu("embedder")
    with gr.Row():
        model_a = common.model_box(menu, engine.embedder, "A: embedder", "compare-model-a")
        layer_a = gr.Number(-1, label="A: layer (-1 = last)", precision=0)
        model_b = common.model_box(menu, engine.embedder, "B: embedder", "compare-model-b")
        layer_b = gr.Number(3, label="B: layer (-1 = last)", precision=0)
    with gr.Row():
        k = gr.Number(10, label="k", precision=0, elem_id="compare-k")
        max_queries = gr.Number(0, label="Queries to use (0 = all)", precision=0, elem_id="compare-max")
    button = gr.Button("Compare on the labelled set", variant="primary", elem_id="compare-run")
    note = common.note_box("compare-note", "Notes")
    summary = gr.DataFrame(label="Mean metrics", elem_id="compare-summary")
    common.how_to_read(READ_SUMMARY, "compare-summary-help")
    plot = gr.Plot(label="Per query", elem_id="compare-plot")
    common.how_to_read(READ_PLOT, "compare-plot-help")
    disagree = gr.DataFrame(label="Where they disagree most", elem_id="compare-disagree", wrap=True)
    per_query = gr.DataFrame(label="Every query", elem_id="compare-table", wrap=True)
    common.how_to_read(READ_TABLES, "compare-tables-help")
    file = gr.File(label="Per-query metrics (CSV)", elem_id="compare-file")
    for box in (model_a, model_b):
        box.change(common.warn_if_unavailable(engine), box, None, api_visibility="private", queue=False)
    parts = common.TabParts(
        handler=common.bind(compare, engine),
        inputs=[model_a, layer_a, model_b, layer_b, k, max_queries],
        outputs=[summary, plot, disagree, per_query, file, note],
        note=note,
        link={"model_a": model_a, "layer_a": layer_a, "model_b": model_b, "layer_b": layer_b, "k": k},
    )
    common.wire_run(parts, api_name="compare", button=button)
    return parts
