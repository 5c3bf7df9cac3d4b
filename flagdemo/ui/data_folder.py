"""The data folder's part of Projection and Compare (private mode): big stored sets and BEIR folders, chosen by name.

Not a tab of its own: ``projection.render`` and ``compare.render`` each call one section function here, which adds
an accordion with its own button and endpoint (``/project_stored``, ``/compare_beir``) and reuses the tab's model
boxes. Visitors pick an entry from a list of what lies directly in ``FLAGDEMO_DATA_DIR``; nothing typed becomes a
path (``corpus.browse`` looks names up in that listing). In public mode the list is empty and both handlers refuse
with a sentence. The handlers only translate: ``browse.open_map`` and ``browse.compare_on_beir`` do the work.
"""

from __future__ import annotations

import gradio as gr

from flagdemo.corpus import CorpusError, browse
from flagdemo.engine import Engine
from flagdemo.serving import request_log
from flagdemo.ui import common, inputs, widgets
from flagdemo.ui.views import tables
from flagdemo.ui.views import text as words

ONE_COLOUR = "(one colour)"
INTRO = (
    "Open what the server keeps in its data folder: a stored embedding set (made with `flagdemo embed`, drawn with "
    f"up to {browse.MAX_MAP_POINTS:,} points) or a BEIR folder (its first {browse.APP_EMBED_ROWS:,} passages "
    "embedded now with the embedder above)."
)

BEIR_INTRO = (
    "A and B (final layer) search the whole corpus of a BEIR folder from the server's data folder; a stored set of "
    "that folder made with the same embedder is used instead of embedding it again."
)


def entry_choices(kind: str | None = None) -> tuple[list[tuple[str, str]], str]:
    """(label, name) of the data folder's entries (of ``kind`` if given), and why there are none when so."""
    try:
        entries = [entry for entry in browse.list_data_dir() if kind is None or entry.kind == kind]
    except CorpusError as error:
        return [], common.for_visitors(str(error))
    empty = "" if entries else "The data folder holds nothing to open yet."
    return [(entry.label, entry.name) for entry in entries], empty


def chosen_entry(name) -> browse.DataEntry:
    """The listed entry called ``name``; anything else (a path, ``..``, nothing) is refused, after saying why there
    is no list where there is none (public mode, no data folder)."""
    browse.data_dir()
    if not isinstance(name, str) or not name.strip():
        raise inputs.InvalidInputError("Choose a stored set or a BEIR folder from the list first.")
    return browse.find_entry(name)


@common.user_errors("mapping the stored set")
def project_stored(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    entry: str | None = None,
    model: str | None = None,
    colour_by: str = ONE_COLOUR,
    max_points: float = browse.MAX_MAP_POINTS,
    sample: float = browse.FIT_SAMPLE,
    seed: float = 42,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    chosen = chosen_entry(entry)
    model = inputs.model_name(model, engine.embedder)
    max_points = inputs.whole_number(max_points, "The number of points", minimum=20, maximum=browse.MAX_MAP_POINTS)
    sample = inputs.whole_number(sample, "The UMAP fit sample", minimum=20, maximum=browse.MAX_MAP_POINTS)
    seed = inputs.whole_number(seed, "The seed", minimum=0, maximum=2**32 - 1)
    colour_by = "" if colour_by in (None, "", ONE_COLOUR) else str(colour_by)
    request_log.note(models=[model if chosen.kind == "beir" else chosen.model])
    view = browse.open_map(
        chosen.name,
        chosen.kind,
        model=model,
        colour_by=colour_by,
        max_points=max_points,
        sample=sample,
        seed=seed,
        progress=lambda fraction, desc: progress(fraction, desc=desc),
    )
    figure = browse.map_figure(view.coords, view.hover, view.colours, view.title)
    return figure, " ".join(view.notes)


@common.user_errors("listing the columns")
def colour_choices(entry: str | None):
    """Choosing an entry offers its records' fields as colours."""
    if not entry:
        return gr.Dropdown(choices=[ONE_COLOUR], value=ONE_COLOUR)
    chosen = chosen_entry(entry)
    return gr.Dropdown(choices=[ONE_COLOUR, *browse.colour_columns(chosen.name, chosen.kind)], value=ONE_COLOUR)


def refreshed(kind: str | None):
    def refresh():
        choices, empty = entry_choices(kind)
        if empty:
            gr.Info(empty)
        return gr.Dropdown(choices=choices, value=None)

    return refresh


def projection_section(engine: Engine, model: gr.Dropdown) -> None:
    """Projection's accordion: map a stored set or a BEIR folder (``model`` embeds a BEIR folder's passages)."""
    choices, empty = entry_choices()
    with gr.Accordion("Open a stored set or a BEIR folder from the server's data folder", open=False):
        gr.Markdown(empty or INTRO, elem_id="project-stored-intro")
        with gr.Row():
            entry = gr.Dropdown(choices, value=None, label="Stored set or BEIR folder", elem_id="project-stored-entry")
            colour_by = gr.Dropdown(  # a field name, never a path: the handler looks it up in the records
                [ONE_COLOUR],
                value=ONE_COLOUR,
                label="Colour by",
                allow_custom_value=True,
                elem_id="project-stored-colour",
            )
            max_points = gr.Number(browse.MAX_MAP_POINTS, label="Points, at most", precision=0)
            sample = gr.Number(browse.FIT_SAMPLE, label="UMAP fitted on a sample of", precision=0)
            seed = gr.Number(42, label="Seed", precision=0)
        with gr.Row():
            button = gr.Button("Map it", variant="primary", elem_id="project-stored-run")
            refresh = gr.Button("Refresh the list", size="sm", elem_id="project-stored-refresh")
        note = common.note_box("project-stored-note", "Notes")
        plot = gr.Plot(label="Map of the stored set (WebGL)", elem_id="project-stored-plot")
    entry.change(colour_choices, entry, colour_by, api_visibility="private", queue=False)
    refresh.click(refreshed(None), None, entry, api_visibility="private", queue=False)
    parts = common.TabParts(
        handler=common.bind(project_stored, engine),
        inputs=[entry, model, colour_by, max_points, sample, seed],
        outputs=[plot, note],
        note=note,
    )
    common.wire_run(parts, api_name="project_stored", button=button, reset=False)


@common.user_errors("evaluating on the BEIR folder")
def compare_beir(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    folder: str | None = None,
    split: str = "test",
    model_a: str | None = None,
    model_b: str | None = None,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    chosen = chosen_entry(folder)
    if chosen.kind != "beir":
        raise inputs.InvalidInputError(f"{chosen.name} is a stored set; choose a BEIR folder to evaluate on.")
    splits = browse.beir_splits(chosen.name)
    if not splits:
        raise inputs.InvalidInputError(
            f"{chosen.name} has no qrels/<split>.tsv file: there is nothing to score against."
        )
    split = inputs.choice(split, "The split", splits)
    models = list(
        dict.fromkeys([inputs.model_name(model_a, engine.embedder), inputs.model_name(model_b, engine.embedder)])
    )
    request_log.note(models=models)
    result = browse.compare_on_beir(
        chosen.name, models, split=split, progress=lambda fraction, desc: progress(fraction, desc=desc)
    )
    note = (
        f"{words.plural(result.queries, 'judged query', 'judged queries')} of the {split} split of {chosen.name}, "
        "searched over every passage (exact cosine); the measures are trec_eval's, as `flagdemo eval` prints them."
    )
    if len(models) == 1:
        note += " A and B are the same embedder, so it was evaluated once."
    return tables.for_display(result.table), note


def split_choices(folder: str | None):
    if not folder:
        return gr.Dropdown(choices=["test"], value="test")
    splits = browse.beir_splits(chosen_entry(folder).name) or ["test"]
    return gr.Dropdown(choices=splits, value="test" if "test" in splits else splits[0])


def compare_section(engine: Engine, model_a: gr.Dropdown, model_b: gr.Dropdown) -> None:
    """Compare's accordion: embedders A and B evaluated on a BEIR folder (nDCG@10, MRR@10, Recall@100, MAP)."""
    choices, empty = entry_choices("beir")
    with gr.Accordion("Evaluate A and B on a BEIR folder from the server's data folder", open=False):
        gr.Markdown(empty or BEIR_INTRO, elem_id="compare-beir-intro")
        with gr.Row():
            folder = gr.Dropdown(choices, value=None, label="BEIR folder", elem_id="compare-beir-folder")
            split = gr.Dropdown(["test"], value="test", label="Split (qrels)", elem_id="compare-beir-split")
        with gr.Row():
            button = gr.Button("Evaluate on the BEIR folder", variant="primary", elem_id="compare-beir-run")
            refresh = gr.Button("Refresh the list", size="sm", elem_id="compare-beir-refresh")
        note = common.note_box("compare-beir-note", "Notes")
        table = widgets.table_box("compare-summary", "Measures per embedder", "compare-beir-table")
    folder.change(common.user_errors("listing the splits")(split_choices), folder, split,
                  api_visibility="private", queue=False)  # fmt: skip
    refresh.click(refreshed("beir"), None, folder, api_visibility="private", queue=False)
    parts = common.TabParts(
        handler=common.bind(compare_beir, engine),
        inputs=[folder, split, model_a, model_b],
        outputs=[table, note],
        note=note,
    )
    common.wire_run(parts, api_name="compare_beir", button=button, reset=False)
