"""The rest of the family in the text tabs: LLM-Embedder's Task choice and Visualized-BGE's images.

Shared by Encode, Similarity and Projection (and the Task choice by every tab whose embedder reads a task): widget
groups as functions that return their components, the model picker's change event that shows or disables them with
their reason, and for a Visualized-BGE model the branch of each tab's handler (one engine call, then tables, figures
and a thumbnail table). The engine work is in ``Engine.encode_mixed`` / ``mixed_similarity`` / ``project_mixed``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from flagdemo import limits
from flagdemo.engine import Engine
from flagdemo.engine.visual import (
    bundled_picture,
    llm_embedder_instruction,
    llm_embedder_tasks,
    make_items,
)
from flagdemo.errors import InvalidInputError
from flagdemo.models.embedders.llm_embedder import DEFAULT_TASK, TASKS
from flagdemo.models.visual.drawing import bundled_images
from flagdemo.models.visual.images import thumbnail_data_uri
from flagdemo.serving import request_log
from flagdemo.ui import common, inputs
from flagdemo.ui.views import figures, tables, text

NOT_LLM_EMBEDDER = "Only LLM-Embedder reads texts behind a task: choose llm-embedder to use one."
VISUAL_NOTE = (
    "Visualized-BGE embeds each item as FlagEmbedding 1.2's encode(image, text) does: an image alone, a text alone "
    "(plain BGE) or an image fused with its text, in fp32; the text-model choices (mode, instruction, layer, "
    "precision) do not apply to it."
)
KIND_MARKS = {"image": "image:", "text": "text:", "image + text": "image+text:"}  # plain words: any font shows them


# ---- LLM-Embedder: the Task choice -----------------------------------------------------------------------------


def task_box(engine: Engine, elem_id: str) -> gr.Dropdown:
    """The six tasks; usable only while the embedder is LLM-Embedder, else disabled with the reason."""
    usable = engine.is_llm_embedder(engine.embedder)
    return gr.Dropdown(
        llm_embedder_tasks(),
        value=DEFAULT_TASK,
        label="Task (LLM-Embedder)",
        interactive=usable,
        info="" if usable else NOT_LLM_EMBEDDER,
        elem_id=elem_id,
    )


def task_update(engine: Engine, name: object):
    usable = isinstance(name, str) and engine.is_llm_embedder(name)
    return gr.update(interactive=usable, info="" if usable else NOT_LLM_EMBEDDER)


def chosen_task(engine: Engine, model: object, task: object) -> str | None:
    """The task to run with (None for every other model, whose Task choice is disabled and says so)."""
    if not (isinstance(model, str) and engine.is_llm_embedder(model)):
        return None
    return inputs.choice(task if task else DEFAULT_TASK, "The task", tuple(TASKS))


def task_note(task: str | None, *, query: bool = True, key: bool = True) -> str:
    """The instructions LLM-Embedder put before the texts, as the note shows them."""
    if task is None:
        return ""
    used = [f"queries «{llm_embedder_instruction(task, 'query')}»"] if query else []
    used += [f"keys «{llm_embedder_instruction(task, 'key')}»"] if key else []
    return f"LLM-Embedder task **{task}** ({TASKS[task].label}): instruction before " + " and ".join(used) + "."


# ---- Visualized-BGE: images -------------------------------------------------------------------------------------


@dataclass
class ImagePicker:
    """Uploads and bundled pictures for one list of items, shown while a Visualized-BGE model is chosen."""

    group: gr.Group
    upload: gr.File
    bundled: gr.CheckboxGroup
    fuse: gr.Checkbox | None = None

    @property
    def inputs(self) -> list:
        return [self.upload, self.bundled, *([self.fuse] if self.fuse is not None else [])]


def image_picker(
    engine: Engine, elem_id: str, label: str, *, fuse: str | None = None, bundled: Sequence[str] = ()
) -> ImagePicker:
    with gr.Group(visible=engine.is_visual(engine.embedder), elem_id=elem_id) as group:
        gr.Markdown(f"**{label}** — with a Visualized-BGE model")
        with gr.Row():
            upload = gr.File(
                label="Upload images (PNG, JPEG, WebP, …)",
                file_count="multiple",
                file_types=["image"],
                height=150,
                elem_id=f"{elem_id}-upload",
            )
            pictures = gr.CheckboxGroup(
                [(caption, name) for name, caption in bundled_images().items()],
                value=list(bundled),
                label="…and / or bundled pictures (drawn by flagdemo, CC0)",
                elem_id=f"{elem_id}-bundled",
            )
        fuse_box = gr.Checkbox(False, label=fuse, elem_id=f"{elem_id}-fuse") if fuse else None
    return ImagePicker(group, upload, pictures, fuse_box)


def family_options(engine: Engine, pickers: Sequence[ImagePicker], *, task: bool = True):
    """The model picker's change event: the Task choice and the image pickers follow the chosen model."""

    def update(name: object):
        visual = engine.is_visual(name)
        shown = [gr.update(visible=visual) for _ in pickers]
        return [task_update(engine, name), *shown] if task else shown

    return update


def chosen_images(upload: object, bundled: object) -> list[tuple[str, object]]:
    """(label, file) of the uploaded images (by their file names), then the chosen bundled pictures."""
    files = [] if upload in (None, "") else [upload] if isinstance(upload, str | dict) else list(upload)
    images: list[tuple[str, object]] = []
    for index, item in enumerate(files, start=1):
        path = item.get("path") if isinstance(item, dict) else getattr(item, "name", item)
        if not isinstance(path, str) or not path:
            raise InvalidInputError(f"Uploaded image {index} could not be read: upload it again.")
        images.append((Path(path).name, path))
    names = [] if bundled in (None, "") else [bundled] if isinstance(bundled, str) else list(bundled)
    return [*images, *(bundled_picture(name) for name in names)]


def mixed_items(images: list, lines: list[str], *, fuse: bool, what: str) -> list:
    """Items from images and text lines: separately, or (``fuse``) each image with one line (the same line for all
    images, or one line per image)."""
    if not (fuse and images and lines):
        return make_items(images, lines)
    if len(lines) not in (1, len(images)):
        raise InvalidInputError(
            f"To fuse, give one {what} line for all {text.plural(len(images), 'image')}, or one line per image "
            f"({len(images)}), not {len(lines)}."
        )
    return make_items(images, [], image_texts=lines * len(images) if len(lines) == 1 else lines)


def item_labels(encoding) -> list[str]:
    """'image: circle.png', 'text: a red circle', 'image+text: circle.png + a red…': the names the heatmap's axes,
    the tables and a map's hovers use."""
    labels = []
    for label, kind, caption in zip(encoding.labels, encoding.kinds, encoding.texts, strict=True):
        fused = f" + {text.short_label(caption or '', 24)}" if kind == "image + text" else ""
        labels.append(f"{KIND_MARKS[kind]} {label}{fused}")
    return labels


def thumbnail_table(items: Sequence, title: str) -> str:
    """An HTML table of the image items (thumbnail, the label the results use, kind, fused text, what was read)."""
    rows = []
    for item in items:
        if item.image is None:
            continue
        label = html.escape(f"{KIND_MARKS[item.kind]} {item.label}")
        picture = f'<img src="{thumbnail_data_uri(item.image.image)}" alt="{label}" style="height:56px;width:auto">'
        rows.append(
            f"<tr><td>{picture}</td><td>{label}</td><td>{item.kind}</td><td>{html.escape(item.text or '')}</td>"
            f"<td>{html.escape(item.image.description)}</td></tr>"
        )
    if not rows:
        return ""
    header = "<tr><th>picture</th><th>item</th><th>kind</th><th>fused text</th><th>input</th></tr>"
    return f'<p><b>{title}</b></p><table class="flagdemo-thumbnails">{header}{"".join(rows)}</table>'


def pictures(engine: Engine, pickers: Sequence[ImagePicker], titles: Sequence[str] = ("Images",), *, labelled=False):
    """A view that follows a successful run: the thumbnails of the images it embedded ('' for a text model).

    Its inputs are the model, then per picker the text box its lines come from and the picker's inputs."""

    def show(model, *values):
        if not engine.is_visual(model):
            return ""
        tables_html, values = [], list(values)
        for picker, title in zip(pickers, titles, strict=True):
            box, upload, bundled = values[:3]
            fuse = values[3] if picker.fuse is not None else False
            values = values[3 + (picker.fuse is not None) :]
            lines = inputs.lines_of(box, "lines")[0]
            lines = inputs.parse_labelled_lines(lines)[1] if labelled else lines
            items = mixed_items(chosen_images(upload, bundled), lines, fuse=bool(fuse), what="text")
            tables_html.append(thumbnail_table(items, title))
        return "".join(tables_html)

    return show


# ---- Visualized-BGE: the three tabs' results ----------------------------------------------------------------------


def encode_visual(engine: Engine, model: str, images: list, lines: list[str], *, fuse: bool):
    """Encode's outputs for a Visualized-BGE model: the vectors of images, texts or both."""
    items = mixed_items(images, lines, fuse=fuse, what="text")
    request_log.note(models=[model], inputs=[item.label for item in items])
    encoded = engine.encode_mixed(items, model=model)
    labels = item_labels(encoded)
    vectors = encoded.vectors
    table = pd.DataFrame(
        {"item": labels, "kind": encoded.kinds, "norm": np.linalg.norm(vectors, axis=1)}
        | {f"d{i}": vectors[:, i] for i in range(min(4, vectors.shape[1]))}
    )
    figure = figures.vector_heatmap(vectors, labels, title=f"{model}: first dimensions")
    note = (
        f"**{model}** (dimension {vectors.shape[1]}): encoded {text.plural(len(items), 'item')} "
        f"({_counts(encoded.kinds)}) in {text.duration(encoded.seconds)}. {VISUAL_NOTE}"
    )
    return table, tables.embedding_summary(vectors), figure, note, encoded


def similarity_visual(engine: Engine, model: str, queries: list, candidates: list, *, top_k: int):
    """Similarity's outputs for a Visualized-BGE model: every query item against every candidate item."""
    request_log.note(models=[model], inputs=[item.label for item in [*queries, *candidates]])
    asked, offered, scores = engine.mixed_similarity(queries, candidates, model=model)
    rows, cols = item_labels(asked), item_labels(offered)
    heatmap = figures.similarity_heatmap(scores, rows, cols, title=f"{model}: image and text", score_name="cosine")
    top = tables.top_k_table(scores, rows, cols, k=min(top_k, len(cols)))
    note = (
        f"**{model}**: {text.plural(len(rows), 'query', 'queries')} ({_counts(asked.kinds)}) against "
        f"{text.plural(len(cols), 'passage')} ({_counts(offered.kinds)}); scores are cosines of the normalised "
        f"vectors. {VISUAL_NOTE}"
    )
    return heatmap, top, note


def projection_figure(outcome, labels: list[str], thumbnails: list[str | None], edges) -> object:
    """The map, with each image's thumbnail drawn at its point (2D maps; the hover names the item)."""
    figure = figures.projection_scatter(
        outcome.main.coords,
        labels,
        groups=outcome.groups,
        ids=outcome.ids,
        query_coords=outcome.main.query_coords,
        query_texts=outcome.queries,
        edges=edges,
        title=outcome.main.title,
    )
    coords = np.asarray(outcome.main.coords, dtype=float)
    if coords.shape[1] != 2 or not any(thumbnails):
        return figure
    span = float(np.ptp(coords, axis=0).max()) or 1.0
    for (x, y), thumb in zip(coords, thumbnails, strict=True):
        if thumb:
            figure.add_layout_image(
                source=thumb, x=x, y=y, xref="x", yref="y", sizex=span * 0.08, sizey=span * 0.08,
                xanchor="center", yanchor="middle", layer="above",
            )  # fmt: skip
    return figure


def project_visual(engine: Engine, model: str, corpus, queries, *, images: list, params: dict, colour_by, k):
    """Projection's outputs for a Visualized-BGE model: the images and the corpus lines as points, the query lines
    placed among them."""
    colour_by = inputs.choice(colour_by, "Colour by", ("label", "cluster", "none"))
    labels, texts = inputs.parse_labelled_lines(inputs.lines_of(corpus, "corpus")[0])
    items = make_items(images, texts)
    query_lines = inputs.lines_of(queries, "queries")[0]
    asked = make_items([], query_lines) if query_lines else []
    limits.check_count(len(items) + len(asked), limits.MAX_POINTS, "points (images, texts and queries)")
    request_log.note(models=[model], inputs=[item.label for item in [*items, *asked]])
    k = inputs.whole_number(k, "Neighbours per query", minimum=1, maximum=len(items))
    encoded, _, outcome = engine.project_mixed(
        items, model=model, labels=["image"] * len(images) + list(labels), queries=asked, colour_by=colour_by,
        params=params,
    )  # fmt: skip
    names = item_labels(encoded)
    neighbours, edges = pd.DataFrame(columns=["query", "rank", "id", "text", "cosine"]), []
    if outcome.cosines is not None:
        neighbours, edges = tables.neighbours_table(outcome.cosines, outcome.queries, outcome.ids, names, k=k)
    figure = projection_figure(outcome, names, encoded.thumbnails, edges)
    coords = tables.projection_table(outcome.ids, names, outcome.groups, outcome.main.coords)
    csv_path = common.download_dir() / "projection.csv"
    coords.to_csv(csv_path, index=False)
    side = figures.message_figure("The second map compares text models; with images there is one map.")
    how = text.describe_projection(outcome.main.method, outcome.main.params)
    note = (
        f"{text.plural(len(items), 'point')} ({text.plural(len(images), 'image')}, "
        f"{text.plural(len(texts), 'text')}), {text.plural(len(asked), 'query', 'queries')}. {how} {VISUAL_NOTE}"
    )
    return figure, side, tables.for_display(neighbours), str(csv_path), note


def _counts(kinds: Sequence[str]) -> str:
    found = {kind: list(kinds).count(kind) for kind in ("image", "text", "image + text") if kind in kinds}
    return ", ".join(f"{count} {kind}" for kind, count in found.items())
