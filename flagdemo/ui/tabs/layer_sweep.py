"""Layer sweep: one model's scores at every chosen layer, from one forward pass, with quality and cost per layer."""

from __future__ import annotations

import gradio as gr

from flagdemo import limits
from flagdemo.data import datasets
from flagdemo.engine import Engine
from flagdemo.serving import request_log
from flagdemo.ui import common, family, inputs, widgets
from flagdemo.ui.views import figures, tables, text

TITLE = "Layer sweep"
TAB_ID = "layer_sweep"


@common.user_errors("sweeping the layers")
def layer_sweep(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    model: str | None = None,
    query: str = text.RERANK_QUERY,
    passages: str = text.RERANK_PASSAGES,
    relevance: str = text.RERANK_RELEVANCE,
    first_layer: float = 0,
    last_layer: float = 0,
    step: float = 1,
    k: float = 5,
    task: str = "qa",
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    model = inputs.model_name(model, engine.llm_reranker)
    task = family.chosen_task(engine, model, task)
    query = inputs.optional_text(query, "query")
    lines, dropped = inputs.lines_of(passages, "passages")
    limits.check_texts(lines, "passage", setting=limits.MAX_PASSAGES)
    grades = inputs.parse_relevance(inputs.optional_text(relevance, "relevance labels"), len(lines))
    first = inputs.whole_number(first_layer, "The first layer", minimum=0, maximum=1000)
    last = inputs.whole_number(last_layer, "The last layer", minimum=0, maximum=1000)
    step = inputs.whole_number(step, "The layer step", minimum=1, maximum=1000)
    k, k_note = inputs.count_up_to(k, "k", len(lines), "passages", int(limits.MAX_PASSAGES.value()))
    request_log.note(models=[model], inputs=[query, *lines])
    outcome = engine.layer_sweep(
        model,
        query,
        lines,
        first=first,
        last=last,
        step=step,
        grades=grades,
        k=k,
        progress=common.progress_with_last_run(progress),
        task=task,
    )
    sweep = outcome.sweep
    figure = figures.layer_sweep_figure(
        sweep.layers,
        outcome.scores,
        lines,
        metrics=outcome.metrics or None,
        seconds=outcome.seconds_per_layer,
        title=f"{outcome.model}: {outcome.description}",
    )
    ranking = tables.layer_rank_summary(sweep.layers, outcome.scores, lines)
    metric_table = tables.layer_metrics_table(sweep.layers, outcome.metrics, outcome.seconds_per_layer)
    note = (
        f"{text.plural(len(sweep.layers), 'layer')} from one pass in {text.duration(sweep.seconds)}. "
        f"Scores are {outcome.description}."
    )
    best = outcome.best_layer()
    if best is not None:
        note += f" Best nDCG@{k} {text.number(best[1])}, first reached at layer {best[0]}."
    else:
        note += " Add relevance labels (one grade per passage) to see nDCG and MRR per layer."
    if dropped:
        note += f" Skipped {text.plural(dropped, 'empty line')}."
    if task is not None:
        note += f" {family.task_note(task)}"
    if k_note and best is not None:
        note += f" {k_note}"
    per_layer = tables.layer_scores_long(sweep.layers, outcome.scores, lines)
    return (
        figure,
        tables.for_display(ranking),
        tables.for_display(metric_table),
        note,
        {"layers": list(sweep.layers), "scores": outcome.scores, "passages": lines, "long": per_layer},
    )


def per_layer_views(sweep: dict | None):
    """The sweep's rank matrix as a heatmap and every score at every layer as a long CSV (exact numbers), drawn
    from the last run the tab keeps (not part of the API: its table and plot already carry the numbers)."""
    if not sweep:
        return None, None
    path = common.download_dir() / "layer-scores.csv"
    sweep["long"].to_csv(path, index=False)
    heatmap = figures.layer_rank_heatmap(sweep["layers"], sweep["scores"], sweep["passages"])
    return heatmap, str(path)


@common.user_errors("filling in a labelled query")
def sweep_sample(query_id: str):
    """Fill the inputs from one labelled query: its question, its judged passages and their grades."""
    if not query_id:
        return gr.skip(), gr.skip(), gr.skip()
    question, passages, grades = datasets.judged_passages(query_id)
    return question, "\n".join(passages), ", ".join(str(g) for g in grades)


def render(engine: Engine) -> common.TabParts:
    gr.Markdown(text.tab_intro(TITLE))
    with gr.Row():
        with gr.Column(scale=2):
            query = gr.Textbox(text.RERANK_QUERY, label="Query (Enter runs)", elem_id="sweep-query")
            passages = gr.Textbox(text.RERANK_PASSAGES, lines=6, label="Passages")
            relevance = gr.Textbox(text.RERANK_RELEVANCE, label="Relevance per passage (e.g. 2, 0, 1; empty = none)")
        with gr.Column(scale=1):
            menu = list(dict.fromkeys(engine.model_menu("llm-reranker") + engine.model_menu("embedder")))
            model = common.model_box(menu, engine.llm_reranker, "LLM / layer-wise reranker or embedder", "sweep-model")
            with gr.Row():
                first = gr.Number(0, label="First layer (0 = the first)", precision=0)
                last = gr.Number(0, label="Last layer (0 = the model's last)", precision=0)
            with gr.Row():
                step = gr.Number(1, label="Every n layers", precision=0, elem_id="sweep-step")
                k = gr.Number(5, label="k for nDCG@k / MRR@k", precision=0)
            task = family.task_box(engine, "sweep-task")
    sample = gr.Dropdown(
        [("", ""), *datasets.labelled_query_choices()],
        value="",
        label="…or fill in a question of the labelled set (its judged passages and grades)",
        elem_id="sweep-sample",
    )
    button = gr.Button("Sweep layers", variant="primary", elem_id="sweep-run")
    note = common.note_box("sweep-note", "Notes")
    plot = gr.Plot(label="Scores per layer", elem_id="sweep-plot")
    widgets.how_to_read("sweep-plot", "sweep-plot-help")
    heatmap = gr.Plot(label="Rank per layer", elem_id="sweep-rank-plot")
    ranking = widgets.table_box("sweep-ranks", "Rank of each passage, and where it settled", "sweep-ranking")
    widgets.how_to_read("sweep-ranks", "sweep-tables-help")
    with gr.Row():
        with gr.Column():
            quality = widgets.table_box("sweep-metrics", "Quality and time per layer", "sweep-metrics")
            widgets.how_to_read("sweep-metrics", "sweep-metrics-help")
        scores_file = gr.File(label="Every score at every layer (CSV)", elem_id="sweep-file")
    last_sweep = gr.State(None)
    last_sweep.change(per_layer_views, last_sweep, [heatmap, scores_file], api_visibility="private", queue=False)
    sample.change(sweep_sample, sample, [query, passages, relevance], api_visibility="private", queue=False)
    model.change(common.warn_if_unavailable(engine), model, None, api_visibility="private", queue=False)
    model.change(family.family_options(engine, []), model, [task], api_visibility="private", queue=False)
    parts = common.TabParts(
        handler=common.bind(layer_sweep, engine),
        inputs=[model, query, passages, relevance, first, last, step, k, task],
        outputs=[plot, ranking, quality, note, last_sweep],
        note=note,
        link={"model": model, "query": query, "passages": passages, "relevance": relevance},
    )
    common.wire_run(parts, api_name="layer_sweep", button=button, submit=[query])
    return parts
