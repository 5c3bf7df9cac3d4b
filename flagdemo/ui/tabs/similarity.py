"""Similarity: every query against every passage, the top-k per query, and (BGE-M3) where the scores come from."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr

from flagdemo import limits
from flagdemo.engine import Engine
from flagdemo.serving import request_log
from flagdemo.ui import common, family, inputs, widgets
from flagdemo.ui.views import figures, tables, text

TITLE = "Similarity"
TAB_ID = "similarity"
SCORE_MODES = ("dense", "sparse", "colbert", "combined")
M3_ONLY = "Sparse, ColBERT and combined scores need a BGE-M3 model: choose bge-m3 (or a BGE-M3 folder) to use them."


@common.user_errors("computing similarities")
def similarity(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    queries: str = text.SIMILARITY_QUERIES,
    passages: str = text.SIMILARITY_PASSAGES,
    all_pairs: bool = False,
    model: str | None = None,
    use_instruction: bool = True,
    top_k: float = 3,
    score_mode: str = "dense",
    w_dense: float = 1.0,
    w_sparse: float = 0.3,
    w_colbert: float = 1.0,
    pair_query: float = 1,
    pair_passage: float = 1,
    precision: str | None = None,
    task: str = "qa",
    query_images: list | None = None,
    query_bundled: list | None = None,
    fuse_queries: bool = False,
    passage_images: list | None = None,
    passage_bundled: list | None = None,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    name = inputs.model_name(model, engine.similarity_embedder)
    if engine.is_visual(name):
        images = (query_images, query_bundled, fuse_queries, passage_images, passage_bundled)
        return _visual(engine, name, queries, passages, all_pairs, top_k, score_mode, images, progress)
    asked = _Asked.parse(
        engine, name, queries, passages, all_pairs, use_instruction, top_k, score_mode,
        (w_dense, w_sparse, w_colbert), (pair_query, pair_passage), precision, task,
    )  # fmt: skip
    request_log.note(models=[asked.spec.name], inputs=asked.rows + ([] if asked.all_pairs else asked.cols))
    progress(0.1, desc=f"Loading {asked.spec.short_name} and encoding")
    outcome = engine.similarity(
        asked.rows,
        asked.cols,
        model=asked.spec,
        use_instruction=asked.instruction and not asked.all_pairs,
        precision=asked.precision,
        task=asked.task,
    )
    return _present(asked, outcome)


def _visual(engine: Engine, name: str, queries, passages, all_pairs, top_k, score_mode, images, progress):  # noqa: PLR0917
    """Visualized-BGE: queries and passages may be images, texts or both fused; dense scores only."""
    query_images, query_bundled, fuse_queries, passage_images, passage_bundled = images
    asked = family.mixed_items(
        family.chosen_images(query_images, query_bundled),
        inputs.lines_of(queries, "queries")[0],
        fuse=inputs.flag(fuse_queries, "Fuse the queries"),
        what="query",
    )
    if inputs.choice(score_mode, "The score", SCORE_MODES) != "dense":
        raise inputs.InvalidInputError(f"Visualized-BGE has only dense vectors. {M3_ONLY}")
    offered = asked if inputs.flag(all_pairs, "All pairs") else family.mixed_items(
        family.chosen_images(passage_images, passage_bundled), inputs.lines_of(passages, "passages")[0],
        fuse=False, what="passage",
    )  # fmt: skip
    top, top_note = inputs.count_up_to(top_k, "Top-k", len(offered), "passages", int(limits.MAX_TEXTS.value()))
    progress(0.1, desc=f"Loading {name} and encoding")
    heatmap, table, note = family.similarity_visual(engine, name, asked, offered, top_k=top)
    return heatmap, tables.for_display(table), *m3_only_figures(), f"{note} {top_note}".strip()


@dataclass
class _Asked:
    """The widget values of a text similarity, parsed and checked in the order the visitor reads them."""

    spec: object
    task: str | None
    precision: str
    all_pairs: bool
    rows: list[str]
    cols: list[str]
    dropped: int
    score_mode: str
    top_k: int
    top_k_note: str
    pair: tuple[int, int]
    weights: list[float]
    instruction: bool

    @classmethod
    def parse(  # noqa: PLR0917 (the handler's values, in its order)
        cls, engine, name, queries, passages, all_pairs, use_instruction, top_k, score_mode, weights, pair, precision,
        task,
    ) -> _Asked:  # fmt: skip
        task = family.chosen_task(engine, name, task)
        spec = engine.spec(name, "embedder")
        precision = inputs.precision_choice(precision)
        all_pairs = inputs.flag(all_pairs, "All pairs")
        rows, dropped = inputs.lines_of(queries, "queries")
        cols, dropped_cols = (rows, 0) if all_pairs else inputs.lines_of(passages, "passages")
        limits.check_texts(rows, "query", "queries")
        limits.check_texts(cols, "passage")
        score_mode = inputs.choice(score_mode, "The score", SCORE_MODES)
        top_k, top_k_note = inputs.count_up_to(top_k, "Top-k", len(cols), "passages", int(limits.MAX_TEXTS.value()))
        pair_query = inputs.whole_number(pair[0], "The pair's query number", minimum=1, maximum=max(1, len(rows)))
        pair_passage = inputs.whole_number(pair[1], "The pair's passage number", minimum=1, maximum=max(1, len(cols)))
        weights = [
            inputs.real_number(w, f"The {kind} weight", maximum=1.0)
            for w, kind in zip(weights, ("dense", "sparse", "ColBERT"), strict=True)
        ]
        if score_mode != "dense" and not spec.is_m3:
            raise gr.Error(f"{spec.short_name} has only dense vectors. {M3_ONLY}", print_exception=False)
        instruction = inputs.flag(use_instruction, "Use the query instruction")
        return cls(spec, task, precision, all_pairs, rows, cols, dropped + dropped_cols, score_mode, top_k, top_k_note,
                   (pair_query, pair_passage), weights, instruction)  # fmt: skip


def _present(asked: _Asked, outcome) -> tuple:
    """The heatmap, the top-k table, BGE-M3's two views of one pair, and the note."""
    notes = [inputs.precision_note(asked.precision), asked.top_k_note]
    if asked.task is not None and asked.instruction and not asked.all_pairs:
        notes.append(family.task_note(asked.task))
    elif asked.task is not None:
        notes.append(
            f"LLM-Embedder task **{asked.task}**: no instruction used (the instruction box is off or all pairs)."
        )
    if asked.dropped:
        notes.append(f"Skipped {text.plural(asked.dropped, 'empty line')}.")
    if asked.all_pairs:
        notes.append("All pairs: every query against every query, so the diagonal is each text with itself.")
    mode, weights = asked.score_mode, asked.weights
    if mode == "combined":
        scores = outcome.combined(weights)
        notes.append(
            f"Combined = ({weights[0]:g}·dense + {weights[1]:g}·sparse + {weights[2]:g}·ColBERT) / "
            f"{sum(weights):g}, as FlagEmbedding's compute_score."
        )
    else:
        scores = getattr(outcome, mode)
    title = f"{asked.spec.short_name}: {mode} scores" + (" (all pairs)" if asked.all_pairs else "")
    score_name = "cosine" if mode == "dense" else f"{mode} score"
    heatmap = figures.similarity_heatmap(scores, asked.rows, asked.cols, title=title, score_name=score_name)
    top = tables.top_k_table(scores, asked.rows, asked.cols, k=asked.top_k)
    (pair_query, pair_passage), (qi, pi) = asked.pair, (asked.pair[0] - 1, asked.pair[1] - 1)
    alignment = outcome.alignment(qi, pi)
    if outcome.is_m3 and alignment is not None:
        passage_side = outcome.query_result if asked.all_pairs else outcome.passage_result
        lexical = figures.lexical_weights_bar(
            outcome.query_result.lexical_weights[qi],
            passage_side.lexical_weights[pi],
            title=f"Shared tokens: Q{pair_query} × P{pair_passage}",
        )
        colbert = figures.token_alignment_heatmap(*alignment)
    else:
        lexical, colbert = m3_only_figures()
    notes.append("Dense scores are inner products of normalised embeddings, i.e. cosine similarities.")
    return heatmap, tables.for_display(top), lexical, colbert, " ".join(n for n in notes if n)


@functools.cache
def m3_only_figures():
    """The two BGE-M3 views' placeholders for other models: built once (a plotly figure costs ~35 ms to build, most
    of a warm click), and only read afterwards."""
    return (
        figures.message_figure("Lexical weights come with BGE-M3 models."),
        figures.message_figure("The ColBERT token alignment comes with BGE-M3 models."),
    )


def m3_options(engine: Engine):
    """The model picker's change event: the BGE-M3 options are usable only with a BGE-M3 model, and say why."""

    def update(name: str):
        is_m3 = engine.is_m3(name)
        score = (
            gr.update(interactive=True, info="")
            if is_m3
            else gr.update(interactive=False, value="dense", info=M3_ONLY)
        )
        return [score, *(gr.update(interactive=is_m3) for _ in range(5))]

    return update


def render(engine: Engine) -> common.TabParts:
    gr.Markdown(text.tab_intro(TITLE))
    with gr.Row():
        queries = gr.Textbox(
            text.SIMILARITY_QUERIES, lines=4, label="Queries (one per line)", elem_id="similarity-queries"
        )
        passages = gr.Textbox(
            text.SIMILARITY_PASSAGES, lines=6, label="Passages (one per line)", elem_id="similarity-passages"
        )
    with gr.Row():
        model = common.model_box(
            engine.model_menu("embedder"), engine.similarity_embedder, "Embedder", "similarity-model"
        )
        all_pairs = gr.Checkbox(False, label="All pairs of the first list")
        use_instruction = gr.Checkbox(True, label="Use the query instruction")
        top_k = gr.Number(3, label="Top-k", precision=0, elem_id="similarity-top-k")
        precision = common.precision_box("similarity-precision")
        task = family.task_box(engine, "similarity-task")
    with gr.Row():
        query_picker = family.image_picker(
            engine, "similarity-query-images", "Query images",
            fuse="Fuse each query image with a query line (one line for all, or one each)",
        )  # fmt: skip
        passage_picker = family.image_picker(engine, "similarity-passage-images", "Passage images")
    is_m3 = engine.is_m3(engine.similarity_embedder)
    with gr.Accordion("BGE-M3: dense / sparse / ColBERT", open=is_m3):
        with gr.Row():
            score_mode = gr.Radio(
                list(SCORE_MODES),
                value="dense",
                label="Score",
                interactive=is_m3,
                info="" if is_m3 else M3_ONLY,
                elem_id="similarity-score",
            )
            w_dense = gr.Slider(0, 1, 1.0, step=0.05, label="dense weight", interactive=is_m3)
            w_sparse = gr.Slider(0, 1, 0.3, step=0.05, label="sparse weight", interactive=is_m3)
            w_colbert = gr.Slider(0, 1, 1.0, step=0.05, label="ColBERT weight", interactive=is_m3)
        with gr.Row():
            pair_q = gr.Number(1, label="Pair: query #", precision=0, interactive=is_m3)
            pair_p = gr.Number(1, label="Pair: passage #", precision=0, interactive=is_m3)
    button = gr.Button("Compute similarity", variant="primary", elem_id="similarity-run")
    note = common.note_box("similarity-note", "Notes")
    plot = gr.Plot(label="Similarity", elem_id="similarity-plot")
    widgets.how_to_read("similarity-plot", "similarity-plot-help")
    table = widgets.table_box("similarity-table", "Top-k per query", "similarity-table")
    widgets.how_to_read("similarity-table", "similarity-table-help")
    with gr.Row():
        with gr.Column():
            lexical = gr.Plot(label="Lexical weights", elem_id="similarity-lexical")
            widgets.how_to_read("similarity-lexical", "similarity-lexical-help")
        with gr.Column():
            colbert = gr.Plot(label="ColBERT alignment", elem_id="similarity-colbert")
            widgets.how_to_read("similarity-colbert", "similarity-colbert-help")
    pictures = gr.HTML(label="Images", elem_id="similarity-pictures")
    model.change(
        family.family_options(engine, [query_picker, passage_picker]),
        model,
        [task, query_picker.group, passage_picker.group],
        api_visibility="private",
        queue=False,
    )
    model.change(common.warn_if_unavailable(engine), model, None, api_visibility="private", queue=False)
    model.change(
        m3_options(engine),
        model,
        [score_mode, w_dense, w_sparse, w_colbert, pair_q, pair_p],
        api_visibility="private",
        queue=False,
    )
    parts = common.TabParts(
        handler=common.bind(similarity, engine),
        inputs=[
            queries,
            passages,
            all_pairs,
            model,
            use_instruction,
            top_k,
            score_mode,
            w_dense,
            w_sparse,
            w_colbert,
            pair_q,
            pair_p,
            precision,
            task,
            *query_picker.inputs,
            *passage_picker.inputs,
        ],
        outputs=[plot, table, lexical, colbert, note],
        note=note,
        link={"queries": queries, "passages": passages, "model": model, "top_k": top_k},
    )
    shown = [model, queries, *query_picker.inputs, passages, *passage_picker.inputs]
    for run in common.wire_run(parts, api_name="similarity", button=button):
        run.success(
            family.pictures(engine, [query_picker, passage_picker], ["Query images", "Passage images"]),
            shown,
            pictures,
            api_visibility="private",
        )
    return parts
