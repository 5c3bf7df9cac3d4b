"""Compare: two embedders (or one at two layers) on the bundled labelled set, query by query."""

from __future__ import annotations

import gradio as gr

from flagdemo.engine import Engine
from flagdemo.serving import request_log
from flagdemo.ui import common, data_folder, family, inputs, widgets
from flagdemo.ui.views import figures, tables
from flagdemo.ui.views import text as words

TITLE = "Compare"
TAB_ID = "compare"


@common.user_errors("comparing the models")
def compare(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    model_a: str | None = None,
    layer_a: float = -1,
    model_b: str | None = None,
    layer_b: float = 3,
    k: float = 10,
    max_queries: float = 0,
    task: str = family.DEFAULT_TASK,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    model_a = inputs.model_name(model_a, engine.embedder)
    model_b = inputs.model_name(model_b, engine.embedder)
    layer_a = inputs.whole_number(layer_a, "A's layer", minimum=-1, maximum=1000)
    layer_b = inputs.whole_number(layer_b, "B's layer", minimum=-1, maximum=1000)
    k = inputs.whole_number(k, "k", minimum=1, maximum=1_000_000)
    max_queries = inputs.whole_number(max_queries, "The number of queries", minimum=0, maximum=1_000_000)
    task_a, task_b = family.chosen_task(engine, model_a, task), family.chosen_task(engine, model_b, task)
    request_log.note(models=[model_a, model_b])
    outcome = engine.compare(
        model_a,
        model_b,
        layer_a=layer_a,
        layer_b=layer_b,
        k=k,
        max_queries=max_queries,
        task_a=task_a,
        task_b=task_b,
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
        f"{words.duration(seconds_a)}, once for both layers"
        if outcome.same_model
        else f"{words.duration(seconds_a)} (A) and {words.duration(seconds_b)} (B)"
    )
    csv_path = common.download_dir() / "comparison.csv"
    per_query.to_csv(csv_path, index=False)
    note = (
        f"{words.plural(outcome.n_queries, 'labelled query', 'labelled queries')}, "
        f"{words.plural(outcome.n_passages, 'passage')}. **A** is {comparison.names[0]}, **B** is "
        f"{comparison.names[1]} (the tables' A and B columns). "
        f"Encoding took {encode_time} (a repeated comparison reuses the embeddings while the model stays loaded). "
        f"Mean overlap (Jaccard) of the two top-{k} lists: {words.number(comparison.mean_jaccard)}."
    )
    if comparison.names[0] == comparison.names[1]:
        note += " A and B are the same model at the same layer, so every difference is 0."
    if task_a or task_b:
        note += " " + family.task_note(task_a or task_b)
    return (
        tables.for_display(tables.comparison_summary_view(comparison.summary, comparison.names)),
        figure,
        tables.for_display(tables.comparison_view(comparison.disagreements, k)),
        tables.for_display(tables.comparison_view(per_query, k)),
        str(csv_path),
        note,
    )


def either_llm_embedder(engine: Engine):
    """The Task choice is usable while A or B is LLM-Embedder (the task applies to that one)."""

    def update(model_a: str, model_b: str):
        return family.task_update(engine, model_a if engine.is_llm_embedder(model_a) else model_b)

    return update


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
        task = family.task_box(engine, "compare-task")
    button = gr.Button("Compare on the labelled set", variant="primary", elem_id="compare-run")
    note = common.note_box("compare-note", "Notes")
    summary = widgets.table_box("compare-summary", "Mean metrics", "compare-summary")
    widgets.how_to_read("compare-summary", "compare-summary-help")
    plot = gr.Plot(label="Per query", elem_id="compare-plot")
    widgets.how_to_read("compare-plot", "compare-plot-help")
    disagree = widgets.table_box("compare-table", "Where they disagree most", "compare-disagree")
    per_query = widgets.table_box("compare-table", "Every query", "compare-table")
    widgets.how_to_read("compare-table", "compare-tables-help")
    file = gr.File(label="Per-query metrics (CSV)", elem_id="compare-file")
    for box in (model_a, model_b):
        box.change(common.warn_if_unavailable(engine), box, None, api_visibility="private", queue=False)
        box.change(either_llm_embedder(engine), [model_a, model_b], task, api_visibility="private", queue=False)
    parts = common.TabParts(
        handler=common.bind(compare, engine),
        inputs=[model_a, layer_a, model_b, layer_b, k, max_queries, task],
        outputs=[summary, plot, disagree, per_query, file, note],
        note=note,
        link={"model_a": model_a, "layer_a": layer_a, "model_b": model_b, "layer_b": layer_b, "k": k},
    )
    common.wire_run(parts, api_name="compare", button=button)
    data_folder.compare_section(engine, model_a, model_b)
    return parts
