"""Projection: a 2D or 3D map of a corpus's embeddings, with queries placed among their nearest neighbours."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from flagdemo import limits
from flagdemo.data import datasets
from flagdemo.engine import NO_MODEL, Engine
from flagdemo.serving import request_log
from flagdemo.ui import common, data_folder, family, inputs, widgets
from flagdemo.ui.views import figures, tables, text

TITLE = "Projection"
TAB_ID = "project"
TEXT_BOX = "text box"
METHODS = ("umap", "pca", "tsne")
COLOURS = ("label", "cluster", "relevance", "none")


@common.user_errors("projecting the embeddings")
def project(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    corpus: str = text.PROJECTION_CORPUS,
    upload: str | None = None,
    sample: str = TEXT_BOX,
    model: str | None = None,
    layer: float = -1,
    method: str = "umap",
    dims: float = 2,
    n_neighbors: float = 15,
    min_dist: float = 0.1,
    perplexity: float = 30,
    seed: float = 42,
    colour_by: str = "label",
    queries: str = text.PROJECTION_QUERIES,
    k: float = 3,
    model_b: str | None = None,
    layer_b: float = -1,
    relevance_query: str = "",
    task: str = "qa",
    corpus_images: list | None = None,
    corpus_bundled: list | None = None,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    model = inputs.model_name(model, engine.embedder)
    if engine.is_visual(model):
        if inputs.method_model(model_b, NO_MODEL) != NO_MODEL:
            raise inputs.InvalidInputError("The second map compares text models: set its model to (none) for images.")
        return family.project_visual(
            engine, model, corpus, queries, images=family.chosen_images(corpus_images, corpus_bundled),
            params=map_params(method, dims, n_neighbors, min_dist, perplexity, seed), colour_by=colour_by, k=k,
        )  # fmt: skip
    task = family.chosen_task(engine, model, task)
    model_b = inputs.method_model(model_b, NO_MODEL)
    texts, labels, query_lines, source, colour_by = _points(
        corpus, upload, sample, queries, colour_by=colour_by, relevance_query=relevance_query
    )
    wanted_layer = inputs.whole_number(layer, "The layer", minimum=-1, maximum=1000)
    wanted_b = inputs.whole_number(layer_b, "The second map's layer", minimum=-1, maximum=1000)
    k = inputs.whole_number(k, "Neighbours per query", minimum=1, maximum=len(texts))
    params = map_params(method, dims, n_neighbors, min_dist, perplexity, seed)
    request_log.note(models=[model, None if model_b == NO_MODEL else model_b], inputs=[*texts, *query_lines])
    outcome = engine.project(
        texts,
        model=model,
        labels=labels,
        queries=query_lines,
        layer=wanted_layer,
        colour_by=colour_by,
        params=params,
        model_b=None if model_b == NO_MODEL else model_b,
        layer_b=wanted_b,
        progress=lambda fraction, desc: progress(fraction, desc=desc),
        task=task,
    )
    return _present(outcome, texts, query_lines, k=k, source=source, task=task)


def _points(corpus, upload, sample, queries, *, colour_by, relevance_query):
    """The texts to map (an upload, a sample or the text box), their labels, the queries, where the texts came from
    and the colouring; relevance colouring turns the labelled question into the first query."""
    sample = inputs.choice(sample or TEXT_BOX, "The corpus source", [TEXT_BOX, *datasets.sample_names()])
    colour_by = inputs.choice(colour_by, "Colour by", COLOURS)
    relevance_query = inputs.optional_text(relevance_query, "labelled query")
    uploaded, uploaded_labels = inputs.read_table_upload(upload, "text", "label")
    if uploaded:
        texts, labels = uploaded, uploaded_labels or ["upload"] * len(uploaded)
        source = "the uploaded file"
    elif sample != TEXT_BOX:
        labels, texts = datasets.sample_corpus(sample)
        source = f"the sample '{sample}'"
    else:
        labels, texts = inputs.parse_labelled_lines(inputs.lines_of(corpus, "corpus")[0])
        source = ""
    query_lines, _ = inputs.lines_of(queries, "queries")
    limits.check_text_lengths(texts)
    limits.check_text_lengths(query_lines, "query")
    if colour_by == "relevance":
        if uploaded or sample != datasets.LABELLED_PASSAGES:
            raise inputs.InvalidInputError(
                f"Colouring by relevance needs the sample '{datasets.LABELLED_PASSAGES}' and a labelled question."
            )
        query_text, labels = datasets.relevance_labels(relevance_query or datasets.labelled_query_choices()[0][1])
        query_lines = [query_text, *query_lines]
        colour_by = "label"
    limits.check_count(len(texts) + len(query_lines), limits.MAX_POINTS, "points (texts and queries)")
    if not texts:
        raise inputs.InvalidInputError(
            "There is nothing to project: write one text per line (optionally label<TAB>text)."
        )
    return texts, labels, query_lines, source, colour_by


def _present(outcome, texts: list[str], query_lines: list[str], *, k: int, source: str, task: str):
    """The map, the side-by-side maps, the neighbours table, the coordinates CSV and the summary line."""
    neighbours, edges = pd.DataFrame(columns=["query", "rank", "id", "text", "cosine"]), []
    if outcome.cosines is not None:
        neighbours, edges = tables.neighbours_table(outcome.cosines, query_lines, outcome.ids, texts, k=k)
    main = figures.projection_scatter(
        outcome.main.coords,
        texts,
        groups=outcome.groups,
        ids=outcome.ids,
        query_coords=outcome.main.query_coords,
        query_texts=query_lines,
        edges=edges,
        title=outcome.main.title,
    )
    if outcome.side is None:
        side = figures.message_figure("Choose a second model or layer to see two maps side by side.")
    else:
        map_a, map_b = outcome.side
        side = figures.side_by_side_projection(
            map_a.coords,
            map_b.coords,
            texts,
            groups=outcome.groups,
            ids=outcome.ids,
            titles=(map_a.title, map_b.title),
            highlight=neighbours["id"].head(k).tolist() if len(neighbours) else (),
        )
    coords = tables.projection_table(outcome.ids, texts, outcome.groups, outcome.main.coords)
    if outcome.main.query_coords is not None:
        query_table = tables.projection_table(
            [f"Q{i + 1}" for i in range(len(query_lines))],
            query_lines,
            ["query"] * len(query_lines),
            outcome.main.query_coords,
            kind="query",
        )
        coords = pd.concat([coords, query_table], ignore_index=True)
    csv_path = common.download_dir() / "projection.csv"
    coords.to_csv(csv_path, index=False)
    summary = (
        f"{text.plural(len(texts), 'text')}{f' from {source}' if source else ''}, "
        f"{text.plural(len(query_lines), 'query', 'queries')}. "
        f"{text.describe_projection(outcome.main.method, outcome.main.params)}"
    )
    table = tables.for_display(neighbours)
    return main, side, table, str(csv_path), " ".join([summary, *outcome.notes, family.task_note(task)])


def map_params(method, dims, n_neighbors, min_dist, perplexity, seed) -> dict:  # noqa: PLR0917 (the widgets)
    """The map's hyperparameters from their widgets, each checked."""
    return {
        "method": inputs.choice(method, "The method", METHODS),
        "dims": inputs.whole_number(dims, "The number of dimensions", minimum=2, maximum=3),
        "n_neighbors": inputs.whole_number(n_neighbors, "UMAP n_neighbors", minimum=2, maximum=10_000),
        "min_dist": inputs.real_number(min_dist, "UMAP min_dist", maximum=1.0),
        "perplexity": inputs.real_number(perplexity, "t-SNE perplexity", minimum=1.0, maximum=10_000.0),
        "seed": inputs.whole_number(seed, "The seed", minimum=0, maximum=2**32 - 1),
    }


def corpus_lines(labels: list[str], texts: list[str]) -> str:
    return "\n".join(f"{label}\t{body}" for label, body in zip(labels, texts, strict=True))


@common.user_errors("filling in the corpus")
def fill_from_sample(sample: str):
    """Choosing a sample shows its texts (label<TAB>text) in the corpus box: what runs is what the box shows."""
    if not sample or sample == TEXT_BOX:
        return gr.skip()
    labels, texts = datasets.sample_corpus(sample)
    return corpus_lines(labels, texts)


@common.user_errors("reading the upload")
def fill_from_upload(upload: str | None):
    """An upload fills the corpus box (labels from its 'label' column) and the upload is cleared."""
    if not upload:
        return gr.skip(), gr.skip(), gr.skip()
    texts, labels = inputs.read_table_upload(upload, "text", "label")
    gr.Info(f"The corpus box now holds the {text.plural(len(texts), 'text')} of the uploaded file.")
    return corpus_lines(labels or ["upload"] * len(texts), texts), None, TEXT_BOX


def render(engine: Engine) -> common.TabParts:
    gr.Markdown(text.tab_intro(TITLE))
    with gr.Row():
        with gr.Column(scale=2):
            corpus = gr.Textbox(
                text.PROJECTION_CORPUS,
                lines=8,
                label="Corpus: one text per line, optionally label<TAB>text",
                elem_id="project-corpus",
            )
            with gr.Row():
                sample = gr.Dropdown(
                    [TEXT_BOX, *datasets.sample_names()],
                    value=TEXT_BOX,
                    label="…or a bundled sample (fills the box)",
                    elem_id="project-sample",
                )
                upload = gr.File(
                    label="…or upload .txt / .csv with columns 'text' and optional 'label' (fills the box)",
                    file_types=[".txt", ".csv"],
                    elem_id="project-upload",
                )
            queries = gr.Textbox(text.PROJECTION_QUERIES, lines=2, label="Queries to place in the map")
        with gr.Column(scale=1):
            model = common.model_box(engine.model_menu("embedder"), engine.embedder, "Embedder", "project-model")
            layer = gr.Number(-1, label="Layer (-1 = last)", precision=0)
            method = gr.Radio(list(METHODS), value="umap", label="Method")
            dims = common.number_choices(gr.Radio([2, 3], value=2, label="Dimensions"))
            colour_by = gr.Radio(list(COLOURS), value="label", label="Colour by")
            relevance_query = gr.Dropdown(
                [("", ""), *datasets.labelled_query_choices()],
                value="",
                label="Labelled question for relevance colours (with the labelled set passages)",
            )
            k = gr.Number(3, label="Neighbours per query", precision=0)
            task = family.task_box(engine, "project-task")
    picker = family.image_picker(engine, "project-images", "Images to place among the corpus")
    with gr.Accordion("Hyperparameters and a second map", open=False):
        with gr.Row():
            n_neighbors = gr.Number(15, label="UMAP n_neighbors", precision=0)
            min_dist = gr.Number(0.1, label="UMAP min_dist")
            perplexity = gr.Number(30, label="t-SNE perplexity")
            seed = gr.Number(42, label="Seed", precision=0)
        with gr.Row():
            model_b = common.model_box(
                [(NO_MODEL, NO_MODEL), *engine.model_menu("embedder")],
                NO_MODEL,
                "Second map: model",
                "project-model-b",
            )
            layer_b = gr.Number(-1, label="Second map: layer (-1 = last)", precision=0)
    button = gr.Button("Project", variant="primary", elem_id="project-run")
    note = common.note_box("project-note", "Notes")
    plot = gr.Plot(label="Map", elem_id="project-plot")
    widgets.how_to_read("projection-map", "project-plot-help")
    side = gr.Plot(label="Two maps, points linked by id", elem_id="project-side")
    widgets.how_to_read("projection-side", "project-side-help")
    table = widgets.table_box("projection-table", "Nearest neighbours of each query", "project-table")
    widgets.how_to_read("projection-table", "project-table-help")
    file = gr.File(label="Coordinates (CSV)", elem_id="project-file")
    pictures = gr.HTML(label="Images", elem_id="project-pictures")
    model.change(family.family_options(engine, [picker]), model, [task, picker.group], api_visibility="private")
    sample.change(fill_from_sample, sample, corpus, api_visibility="private", queue=False)
    corpus.input(lambda: TEXT_BOX, None, sample, api_visibility="private", queue=False)
    upload.upload(fill_from_upload, upload, [corpus, upload, sample], api_visibility="private")
    for box in (model, model_b):
        box.change(common.warn_if_unavailable(engine), box, None, api_visibility="private")
    parts = common.TabParts(
        handler=common.bind(project, engine),
        inputs=[
            corpus,
            upload,
            sample,
            model,
            layer,
            method,
            dims,
            n_neighbors,
            min_dist,
            perplexity,
            seed,
            colour_by,
            queries,
            k,
            model_b,
            layer_b,
            relevance_query,
            task,
            *picker.inputs,
        ],
        outputs=[plot, side, table, file, note],
        note=note,
        link={"sample": sample, "model": model, "method": method, "dims": dims, "colour_by": colour_by},
    )
    for run in common.wire_run(parts, api_name="project", button=button):
        run.success(
            family.pictures(engine, [picker], labelled=True),
            [model, corpus, *picker.inputs],
            pictures,
            api_visibility="private",
        )
    data_folder.projection_section(engine, model)
    return parts
