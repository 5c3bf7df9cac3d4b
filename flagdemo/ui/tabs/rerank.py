"""Rerankers: the same passages scored by a bi-encoder, a cross-encoder, an LLM reranker and a layer cutoff."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from flagdemo import catalog, figures, limits, request_log, tables, text
from flagdemo.engine import NO_MODEL, Engine
from flagdemo.ui import common, inputs

TITLE = "Rerankers"
TAB_ID = "rerank"
SMOLLM2_CAVEAT = (
    f"**About the default LLM reranker:** {catalog.SMOLLM2_KEY} is a small chat model that was never trained to "
    "judge relevance; flagdemo ships it because it runs offline. Expect odd rankings (the Eiffel Tower above Paris) "
    "and raw scores so high that every sigmoid reads 1.0. On the bundled labelled set it makes MiniLM's ranking "
    "worse: nDCG@10 drops from 0.838 (MiniLM alone) to 0.345 when SmolLM2 reranks MiniLM's top 20, and its best "
    "cutoff layer (21 of 30) reaches 0.416. A trained reranker such as bge-reranker-base shows what reranking is for."
)
READ_TABLE = (
    "one row per passage. *raw* is what each method outputs (a cosine for the bi-encoder, a logit for the "
    "rerankers: any real number); *sigmoid* squeezes a logit into 0–1 so methods can be set side by side, but it "
    "does not change the order. *rank* 1 is the method's best passage."
)
READ_PLOT = "each line is one passage: where each method ranks it. Crossing lines are where the methods disagree."
READ_TAU = (
    "Kendall τ between two methods' rankings: 1 = the same order, 0 = unrelated, −1 = reversed. "
    "Cost: seconds to load (0 when the model was already loaded) and to score."
)


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
        progress=lambda fraction, desc: progress(fraction, desc=desc),
    )
    ran = [o for o in outcomes if o.ran]
    failed = [o for o in outcomes if not o.ran]
    if not ran:
        raise gr.Error(
            "None of the chosen methods could run: " + " ".join(o.error for o in failed), print_exception=False
        )
    raw = {o.method: o.scores for o in ran}
    table = tables.rerank_table(lines, raw, {o.method: o.normalized for o in ran})
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
        messages.append(f"Skipped {common.plural(dropped, 'empty line')}.")
    summary = "All chosen methods ran." if not failed else ""
    return common.shown(table), chart, common.shown(tau), common.shown(timings), "\n\n".join([summary, *messages])


def render(engine: Engine) -> common.TabParts:
    gr.Markdown(text.tab_intro(TITLE))
    gr.Markdown(SMOLLM2_CAVEAT, elem_id="rerank-caveat")
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
    table = gr.DataFrame(label="Scores and ranks", elem_id="rerank-table", wrap=True)
    common.how_to_read(READ_TABLE, "rerank-table-help")
    plot = gr.Plot(label="Rank changes", elem_id="rerank-plot")
    common.how_to_read(READ_PLOT, "rerank-plot-help")
    with gr.Row():
        tau = gr.DataFrame(label="Kendall τ between methods", elem_id="rerank-tau")
        timing = gr.DataFrame(label="Cost per method", elem_id="rerank-timing")
    common.how_to_read(READ_TAU, "rerank-tau-help")
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
