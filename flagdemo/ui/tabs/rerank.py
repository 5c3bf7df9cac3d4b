"""Rerankers: the same passages scored by a bi-encoder, a cross-encoder, an LLM reranker and a layer cutoff."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from flagdemo import limits
from flagdemo.engine import NO_MODEL, Engine
from flagdemo.serving import request_log
from flagdemo.ui import common, inputs, widgets
from flagdemo.ui.views import figures, tables, text

TITLE = "Rerankers"
TAB_ID = "rerank"


@common.user_errors("reranking")
def rerank(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    query: str = text.RERANK_QUERY,
    passages: str = text.RERANK_PASSAGES,
    bi_encoder: str | None = None,
    cross_encoder: str | None = None,
    llm_reranker: str | None = None,
    layerwise_reranker: str | None = None,
    cutoff_layer: float | None = None,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    query = inputs.optional_text(query, "query")
    lines, dropped = inputs.lines_of(passages, "passages")
    limits.check_texts(lines, "passage", setting=limits.MAX_PASSAGES)
    chosen = {
        "bi_encoder": inputs.method_model(bi_encoder, engine.embedder),
        "cross_encoder": inputs.method_model(cross_encoder, engine.cross_encoder),
        "llm_reranker": inputs.method_model(llm_reranker, engine.llm_reranker),
        "layerwise_reranker": inputs.method_model(layerwise_reranker, engine.layerwise_reranker),
    }
    cutoff = inputs.whole_number(
        engine.cutoff_layer if cutoff_layer is None else cutoff_layer, "The cutoff layer", minimum=0, maximum=1000
    )
    request_log.note(models=[m for m in chosen.values() if m != NO_MODEL], inputs=[query, *lines])
    outcomes = engine.rerank_methods(
        query,
        lines,
        **chosen,
        cutoff_layer=None if cutoff == 0 else cutoff,
        progress=common.progress_with_last_run(progress),
    )
    ran = [o for o in outcomes if o.ran]
    failed = [o for o in outcomes if not o.ran]
    if not ran:
        raise gr.Error(
            "None of the chosen methods could run: " + " ".join(o.error for o in failed), print_exception=False
        )
    raw = {o.method: o.scores for o in ran}
    sigmoids = {o.method: o.normalized for o in ran}
    table = tables.rerank_view(lines, raw, sigmoids, width=tables.TABLE_WIDTH["rerank-table"])
    chart = figures.rank_change_chart({o.method: tables.ranks_from_scores(o.scores) for o in ran}, lines)
    tau = tables.kendall_tau_table(raw) if len(ran) > 1 else pd.DataFrame(columns=["method"])
    timings = tables.timing_table(
        [
            {
                "method": o.method,
                "model": o.model,
                "load s": o.load_seconds,
                "run s": o.run_seconds,
                "items": len(lines) if o.ran else 0,
                "tokens/s": (o.n_tokens / o.run_seconds) if o.run_seconds > 0 and o.n_tokens else None,
                "note": o.error or "ok",
            }
            for o in outcomes
        ]
    )
    messages = [f"- **{o.method}** ({o.model}) could not run: {o.error}" for o in failed]
    for o in failed:
        gr.Warning(f"{o.method} could not run: {o.error}")
    if dropped:
        messages.append(f"Skipped {text.plural(dropped, 'empty line')}.")
    summary = "All chosen methods ran." if not failed else ""
    return (
        tables.for_display(table),
        chart,
        tables.for_display(tau),
        tables.for_display(timings),
        "\n\n".join([summary, *messages]),
    )


def render(engine: Engine) -> common.TabParts:
    gr.Markdown(text.tab_intro(TITLE))
    gr.Markdown(text.reranker_caveat(), elem_id="rerank-caveat")
    with gr.Row():
        with gr.Column(scale=2):
            query = gr.Textbox(text.RERANK_QUERY, label="Query (Enter runs)", elem_id="rerank-query")
            passages = gr.Textbox(text.RERANK_PASSAGES, lines=6, label="Candidate passages", elem_id="rerank-passages")
        with gr.Column(scale=1):
            none = [(NO_MODEL, NO_MODEL)]
            bi = common.model_box(
                none + engine.model_menu("embedder"), engine.embedder, "Bi-encoder (cosine)", "rerank-bi"
            )
            cross = common.model_box(
                none + engine.model_menu("cross-encoder"), engine.cross_encoder, "Cross-encoder", "rerank-cross"
            )
            llm = common.model_box(
                none + engine.model_menu("llm-reranker"), engine.llm_reranker, "LLM reranker", "rerank-llm"
            )
            layerwise = common.model_box(
                none + engine.model_menu("layer-cutoff"),
                engine.layerwise_reranker,
                "Layer-cutoff reranker",
                "rerank-lw",
            )
            cutoff = gr.Number(engine.cutoff_layer, label="Cutoff layer (0 = its last)", precision=0)
    button = gr.Button("Compare rerankers", variant="primary", elem_id="rerank-run")
    messages = common.note_box("rerank-messages", "Messages")
    table = widgets.table_box("rerank-table", "Scores and ranks", "rerank-table")
    widgets.how_to_read("rerank-table", "rerank-table-help")
    plot = gr.Plot(label="Rank changes", elem_id="rerank-plot")
    widgets.how_to_read("rerank-chart", "rerank-plot-help")
    tau = widgets.table_box("rerank-tau", "Kendall τ between methods", "rerank-tau")
    widgets.how_to_read("rerank-tau", "rerank-tau-help")
    timing = widgets.table_box("rerank-timing", "Cost per method", "rerank-timing")
    widgets.how_to_read("rerank-timing", "rerank-timing-help")
    for box in (bi, cross, llm, layerwise):
        box.change(common.warn_if_unavailable(engine), box, None, api_visibility="private", queue=False)
    parts = common.TabParts(
        handler=common.bind(rerank, engine),
        inputs=[query, passages, bi, cross, llm, layerwise, cutoff],
        outputs=[table, plot, tau, timing, messages],
        note=messages,
        link={"query": query, "passages": passages, "cutoff_layer": cutoff},
    )
    common.wire_run(parts, api_name="rerank", button=button, submit=[query])
    return parts
