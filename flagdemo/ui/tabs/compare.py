"""Compare: N retrieval systems on the bundled labelled set with paired statistics (``/compare_systems``), then two
embedders (or one at two layers) query by query (``/compare``)."""

from __future__ import annotations

import gradio as gr

from flagdemo import limits
from flagdemo.engine import Engine
from flagdemo.engine.systems import parse_systems
from flagdemo.serving import request_log
from flagdemo.ui import common, data_folder, family, inputs, widgets
from flagdemo.ui.views import figures, tables
from flagdemo.ui.views import text as words

TITLE = "Compare"
TAB_ID = "compare"
PERMUTATIONS = 10_000


def example_systems(engine: Engine) -> str:
    """The N-system view's opening example: quick (one encoding serves the embedder and its layer)."""
    model = engine.embedder
    fused = ["rrf=rrf(bm25,embedder)", "combmnz=combmnz(bm25,embedder)"]
    return "\n".join([f"embedder={model}", f"layer3={model}@3", "bm25=bm25", *fused])


def presets(engine: Engine) -> dict[str, str]:
    """Starting points for the builder, by what a person comparing systems asks first."""
    model, reranker = engine.embedder, engine.llm_reranker
    quick = example_systems(engine)
    return {
        "An embedder, one of its layers, BM25 and two fusions (quick)": quick,
        "The same with a reranker over the embedder's top 10 (slow on a CPU)": (
            f"{quick}\nreranked=embedder>>{reranker}@10"
        ),
        "One embedder at several layers": "\n".join(
            [f"layer1={model}@1", f"layer2={model}@2", f"layer3={model}@3", f"last={model}"]
        ),
    }


@common.user_errors("comparing the systems")
def compare_systems(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    systems: str | None = None,
    baseline: str | None = "bm25",
    depth: float = 100,
    max_queries: float = 0,
    permutations: float = PERMUTATIONS,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    specs = inputs.system_lines(example_systems(engine) if systems is None else systems)
    baseline = inputs.optional_text(baseline, "baseline") or None
    depth = inputs.whole_number(depth, "The run depth", minimum=1, maximum=1000)
    max_queries = inputs.whole_number(max_queries, "The number of queries", minimum=0, maximum=1_000_000)
    permutations = inputs.whole_number(permutations, "The number of permutations", minimum=100, maximum=100_000)
    request_log.note(models=[spec.partition("=")[2] for spec in specs])
    step = common.progress_with_last_run(progress)
    outcome = engine.benchmark(
        specs,
        baseline=baseline,
        depth=depth,
        max_queries=max_queries,
        permutations=permutations,
        max_pairs=int(limits.MAX_RERANKED_PAIRS.value()),
        progress=lambda fraction, desc: step(fraction, f"running {desc}"),
    )
    return _present_systems(outcome)


def _present_systems(outcome) -> tuple:
    """The N-system outcome as the section's outputs: note, tables, the frontier chart, one query side by side,
    the downloads, the query picker (ordered by disagreement) and the outcome kept for the picker."""
    headline, names = outcome.measures[0], list(outcome.systems)
    pairs = f"each system against {outcome.baseline}" if outcome.baseline else "every pair of systems"
    settings = outcome.pairs.iloc[0] if len(outcome.pairs) else None
    tests = (
        f"paired randomization test with {int(settings.permutations):,} permutations (seed {int(settings.seed)}), "
        "paired t-test, Holm's correction over each measure's family, paired bootstrap 95% intervals"
        if settings is not None
        else "no pairs to test (one system)"
    )
    note = (
        f"{words.plural(outcome.n_queries, 'labelled query', 'labelled queries')}, "
        f"{words.plural(outcome.n_passages, 'passage')}, {words.plural(len(names), 'system')} in "
        f"{words.duration(outcome.seconds)} (embeddings are reused across systems and later requests). Tested: "
        f"{pairs}; {tests}.\n\n" + "\n".join(f"- {sentence}" for sentence in outcome.sentences)
    )
    ordered = outcome.disagreement
    picker = gr.Dropdown(
        choices=[(f"{r.spread:.2f} · {words.short_label(r.query, 90)}", r.query_id) for r in ordered.itertuples()],
        value=str(ordered["query_id"].iloc[0]),
    )
    return (
        note,
        tables.systems_means_view(outcome.means, outcome.descriptions, outcome.tiers[headline]),
        tables.systems_pairs_view(outcome.pairs, headline, outcome.alpha),
        figures.cost_quality_frontier(outcome.costs, metric=headline),
        tables.systems_costs_view(outcome.costs, headline),
        tables.systems_pipelines_view({name: p["summary"] for name, p in outcome.pipelines.items()}),
        tables.systems_groups_view(outcome.groups, headline, names),
        tables.systems_disagreement_view(outcome.disagreement),
        *side_by_side(outcome, str(ordered["query_id"].iloc[0])),
        [str(path) for path in outcome.write(common.download_dir())],
        picker,
        outcome,
    )


def side_by_side(outcome, query_id: str | None) -> tuple:
    """One query's top 10 per system (the reference first), the passages in it, and a title naming the query."""
    if outcome is None or not query_id:
        return gr.skip(), gr.skip(), gr.skip()
    names = list(outcome.systems)
    reference = outcome.baseline or names[0]
    order = [reference, *[name for name in names if name != reference]]
    tops, changes = outcome.side_by_side(str(query_id), k=10)
    spread = outcome.disagreement.set_index("query_id").loc[str(query_id), "spread"]
    title = (
        f"**Query:** {outcome.retrieval_set.query_texts[str(query_id)]} (spread of {outcome.measures[0]} across "
        f"the systems: {spread:.2f}; reference column: {reference})"
    )
    return (
        title,
        tables.systems_side_by_side_view(tops, changes, order),
        tables.systems_passages_view(tops, order, outcome.retrieval_set.passage_texts),
    )


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


@common.user_errors("adding the system")
def add_system(text: str | None, name, kind, model, over, number) -> str:  # noqa: PLR0917 (gradio's order)
    """The builder row's button: the new ``NAME=SPEC`` line appended, once the whole list still parses."""
    line = inputs.system_line(name, kind, model, over, number)
    lines = [*[kept for kept in (text or "").splitlines() if kept.strip()], line]
    parse_systems([kept.strip() for kept in lines if not kept.strip().startswith("#")])
    return "\n".join(lines)


def render_systems(engine: Engine) -> common.TabParts:
    """The N-system section: the builder, the run settings, and every view of the outcome with how to read it."""
    gr.Markdown("### Compare N systems: is the difference real?")
    gr.Markdown(f"<small>{words.SYSTEMS_GRAMMAR}</small>", elem_id="systems-grammar")
    choices = presets(engine)
    start = gr.Dropdown(list(choices), value=next(iter(choices)), label="Start from", elem_id="systems-preset")
    systems = gr.Textbox(
        example_systems(engine), lines=6, max_lines=14, label="Systems, one per line: NAME=SPEC", elem_id="systems-box"
    )
    with gr.Accordion("Add a system without writing its spec", open=False, elem_id="systems-builder"):
        with gr.Row():
            new_name = gr.Textbox("hybrid", label="Name", elem_id="systems-new-name")
            kind = gr.Dropdown(list(inputs.SYSTEM_KINDS), value="reciprocal rank fusion (RRF)", label="Kind",
                               elem_id="systems-new-kind")  # fmt: skip
            menu = [*engine.model_menu("embedder"), *engine.model_menu("reranker")]
            model = common.model_box(menu, engine.embedder, "Model (embedder or reranker)", "systems-new-model")
            over = gr.Textbox("bm25, embedder", label="Over (the systems it builds on)", elem_id="systems-new-over")
            number = gr.Number(10, label="Layer, or a pipeline's depth", precision=0, elem_id="systems-new-number")
        add = gr.Button("Add to the list", size="sm", elem_id="systems-add")
    with gr.Row():
        baseline = gr.Textbox("bm25", label="Baseline (a system's name; empty = every pair)", elem_id="systems-base")
        depth = gr.Number(100, label="Run depth (passages kept per query)", precision=0, elem_id="systems-depth")
        max_queries = gr.Number(0, label="Queries to use (0 = all)", precision=0, elem_id="systems-max")
        permutations = gr.Number(PERMUTATIONS, label="Permutations", precision=0, elem_id="systems-permutations")
    button = gr.Button("Compare the systems", variant="primary", elem_id="systems-run")
    note = common.note_box("systems-note", "What the set can tell")
    means = widgets.table_box("systems-means", "Means and tiers", "systems-means")
    widgets.how_to_read("systems-means", "systems-means-help")
    pairs = widgets.table_box("systems-pairs", "Paired tests on the first measure", "systems-pairs")
    widgets.how_to_read("systems-pairs", "systems-pairs-help")
    frontier = gr.Plot(label="Quality against cost", elem_id="systems-plot")
    costs = widgets.table_box("systems-costs", "What each system cost here", "systems-costs")
    widgets.how_to_read("systems-costs", "systems-costs-help")
    pipelines = widgets.table_box("systems-pipelines", "Pipelines: ceiling and reordering", "systems-pipelines")
    widgets.how_to_read("systems-pipelines", "systems-pipelines-help")
    groups = widgets.table_box("systems-groups", "Per topic and language", "systems-groups")
    widgets.how_to_read("systems-groups", "systems-groups-help")
    disagree = widgets.table_box("systems-disagree", "Where the systems disagree most", "systems-disagree")
    widgets.how_to_read("systems-disagree", "systems-disagree-help")
    picker = gr.Dropdown(label="Query shown side by side (by how much the systems disagree)", elem_id="systems-query")
    side_title = gr.Markdown(label="The query shown side by side", elem_id="systems-side-title")
    side = widgets.table_box("systems-side", "Their top 10 side by side", "systems-side")
    widgets.how_to_read("systems-side", "systems-side-help")
    passages = widgets.table_box("systems-passages", "The passages in that view", "systems-passages")
    widgets.how_to_read("systems-passages", "systems-passages-help")
    files = gr.File(label="Runs (TREC), per-query measures (CSV) and the report (JSON)", file_count="multiple",
                    elem_id="systems-files")  # fmt: skip
    kept = gr.State()
    picker.input(side_by_side, [kept, picker], [side_title, side, passages], api_visibility="private", queue=False)
    start.change(lambda chosen: choices.get(chosen, gr.skip()), start, systems, api_visibility="private", queue=False)
    add.click(add_system, [systems, new_name, kind, model, over, number], systems, api_visibility="private",
              queue=False)  # fmt: skip
    parts = common.TabParts(
        handler=common.bind(compare_systems, engine),
        inputs=[systems, baseline, depth, max_queries, permutations],
        outputs=[
            note,
            means,
            pairs,
            frontier,
            costs,
            pipelines,
            groups,
            disagree,
            side_title,
            side,
            passages,
            files,
            picker,
            kept,
        ],
        note=note,
        link={"systems": systems, "baseline": baseline},
    )
    common.wire_run(parts, api_name="compare_systems", button=button)
    return parts


def render(engine: Engine) -> common.TabParts:
    gr.Markdown(words.tab_intro(TITLE))
    systems = render_systems(engine)
    gr.Markdown("### Two embedders, query by query")
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
        also=(systems,),
    )
    common.wire_run(parts, api_name="compare", button=button)
    data_folder.compare_section(engine, model_a, model_b)
    return parts
