"""Encode: texts in, one vector each out, with the tokens the model read and what it cost."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np

from flagdemo import limits
from flagdemo.engine import Engine, layer_name
from flagdemo.serving import request_log
from flagdemo.ui import common, family, inputs, widgets
from flagdemo.ui.views import figures, tables, text

TITLE = "Encode"
TAB_ID = "encode"


@common.user_errors("encoding the texts")
def encode(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    texts: str = text.ENCODE_TEXTS,
    upload: str | None = None,
    column: str = "text",
    model: str | None = None,
    mode: str = "passage",
    instruction: str = "",
    max_length: float = 512,
    normalize: bool = True,
    layer: float = -1,
    token_row: float = 1,
    precision: str | None = None,
    task: str = "qa",
    images: list | None = None,
    bundled_images: list | None = None,
    fuse: bool = False,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    model = inputs.model_name(model, engine.embedder)
    if engine.is_visual(model):
        return encode_images(engine, model, texts, images=images, bundled_images=bundled_images, fuse=fuse)
    task = family.chosen_task(engine, model, task)
    precision = inputs.precision_choice(precision)
    mode = inputs.choice(mode, "The mode", ("query", "passage", "raw"))
    uploaded, _ = inputs.read_table_upload(upload, column if isinstance(column, str) else "text")
    lines, dropped = (uploaded, 0) if uploaded else inputs.lines_of(texts, "texts")
    limits.check_texts(lines)
    instruction = inputs.optional_text(instruction, "instruction")
    own = default_instruction(engine, model, mode, task) if mode != "raw" else ""
    if instruction and instruction == own.strip():
        instruction = own  # the model's own instruction, as the box holds it: stripping lost its closing space
    wanted_layer = inputs.whole_number(layer, "The layer", minimum=-1, maximum=1000)
    max_tokens = inputs.whole_number(max_length, "The maximum length", minimum=0, maximum=1_000_000) or None
    row = inputs.whole_number(token_row, "The text whose tokens are shown", minimum=1, maximum=max(1, len(lines)))
    normalize = inputs.flag(normalize, "Normalise")
    request_log.note(models=[model], inputs=lines)
    progress(0.1, desc=f"Loading {model} and encoding {text.plural(len(lines), 'text')}")
    result = engine.encode(
        lines,
        model=model,
        mode=mode,
        instruction=(instruction or None) if mode != "raw" else None,
        max_length=max_tokens,
        normalize=normalize,
        all_layers=wanted_layer >= 0,
        precision=precision,
        task=task,
    )
    vectors = engine.pick_layer(result, wanted_layer)
    table = tables.encode_table(lines, vectors, token_counts=result.token_counts, truncated=result.truncated)
    summary = tables.embedding_summary(vectors)
    figure = figures.vector_heatmap(vectors, lines, title=f"{model}: {layer_name(wanted_layer)}, first dimensions")
    instruction_used = (instruction or default_instruction(engine, model, mode, task)) if mode != "raw" else ""
    tokens = " ".join(f"`{token}`" for token in result.tokens[row - 1])
    token_md = (
        f"**Text {row} as the model reads it** ({text.plural(result.token_counts[row - 1], 'token')}"
        f"{', after the instruction' if instruction_used else ''}"
        f"{', truncated' if result.truncated[row - 1] else ''}):\n\n{tokens}"
    )
    timings = result.timings
    notes = [
        f"**{model}** ({mode} mode, {layer_name(wanted_layer)}, dimension {vectors.shape[1]}): loaded in "
        f"{text.duration(timings.load_seconds)}, encoded {text.plural(timings.n_items, 'text')} / "
        f"{text.plural(timings.n_tokens, 'token')} in {text.duration(timings.run_seconds)} "
        f"({text.number(timings.tokens_per_second)} tokens/s)."
    ]
    if upload and uploaded:
        notes.append(f"Encoded {text.plural(len(lines), 'text')} from the uploaded file, not the text box.")
    if dropped:
        notes.append(f"Skipped {text.plural(dropped, 'empty line')}.")
    notes.append(inputs.precision_note(precision))
    if task is not None:
        used = f"«{instruction_used}»" if instruction_used else "none (raw mode)"
        notes.append(f"LLM-Embedder task **{task}**; instruction used: {used}.")
    if any(result.truncated):
        cut = f"at {max_tokens} tokens" if max_tokens else "at the model's maximum length"
        notes.append(f"{text.plural(sum(result.truncated), 'text')} longer than the model reads, cut {cut}.")
    folder = common.download_dir()
    np.save(folder / "embeddings.npy", vectors)
    table.to_csv(folder / "embeddings.csv", index=False)
    (folder / "embeddings.json").write_text(
        json.dumps({"model": model, "mode": mode, "texts": lines, "embeddings": vectors.tolist()})
    )
    files = [str(folder / name) for name in ("embeddings.npy", "embeddings.csv", "embeddings.json")]
    return (
        tables.for_display(table),
        tables.for_display(summary),
        figure,
        token_md,
        " ".join(n for n in notes if n),
        files,
    )


def default_instruction(engine: Engine, model: str, mode: str, task: str | None) -> str:
    """What the model puts before a text in ``mode``: LLM-Embedder's task pair, else the model's own."""
    if task is not None and mode != "raw":
        return family.llm_embedder_instruction(task, "query" if mode == "query" else "key")
    return engine.default_instruction(model, mode)


def encode_images(engine: Engine, model: str, texts: str, *, images, bundled_images, fuse):
    """Encode with a Visualized-BGE model: images, text lines, or each image fused with its line."""
    lines, _ = inputs.lines_of(texts, "texts")
    chosen = family.chosen_images(images, bundled_images)
    table, summary, figure, note, encoded = family.encode_visual(
        engine, model, chosen, lines, fuse=inputs.flag(fuse, "Fuse")
    )
    folder = common.download_dir()
    np.save(folder / "embeddings.npy", encoded.vectors)
    table.to_csv(folder / "embeddings.csv", index=False)
    (folder / "embeddings.json").write_text(
        json.dumps({"model": model, "items": encoded.labels, "kinds": encoded.kinds, "texts": encoded.texts,
                    "embeddings": encoded.vectors.tolist()})
    )  # fmt: skip
    files = [str(folder / name) for name in ("embeddings.npy", "embeddings.csv", "embeddings.json")]
    tokens = "Visualized-BGE reads each image as 196 patch tokens of its 224 × 224 centre square (pictures below)."
    return tables.for_display(table), tables.for_display(summary), figure, tokens, note, files


def fill_from_upload(upload: str | None, column: str):
    """An upload fills the text box and is cleared, so what runs is what the box shows; one that cannot be read
    stays, with the reason, until the column is corrected or another file is chosen."""
    if not upload:
        return gr.skip(), gr.skip()
    try:
        texts, _ = inputs.read_table_upload(upload, column if isinstance(column, str) else "text")
    except Exception as exc:  # the sentence is shown; the file stays, so a run would say the same
        raise gr.Error(str(exc), print_exception=False) from None
    gr.Info(f"The text box now holds the {text.plural(len(texts), 'text')} of the uploaded file.")
    return "\n".join(texts), None


def render(engine: Engine) -> common.TabParts:
    gr.Markdown(text.tab_intro(TITLE))
    with gr.Row():
        with gr.Column(scale=2):
            texts = gr.Textbox(text.ENCODE_TEXTS, lines=6, label="Texts (one per line)", elem_id="encode-texts")
            with gr.Row():
                upload = gr.File(
                    label="…or upload .txt / .csv (fills the box)",
                    file_types=[".txt", ".csv"],
                    elem_id="encode-upload",
                )
                column = gr.Textbox("text", label="CSV column", elem_id="encode-column")
        with gr.Column(scale=1):
            model = common.model_box(engine.model_menu("embedder"), engine.embedder, "Embedder", "encode-model")
            mode = gr.Radio(["query", "passage", "raw"], value="passage", label="Mode")
            instruction = gr.Textbox(
                engine.default_instruction(engine.embedder, "passage"),
                label="Instruction (prepended in query/passage mode; editable; empty = the model's own)",
                elem_id="encode-instruction",
            )
            with gr.Row():
                max_length = gr.Number(512, label="Max length (tokens, 0 = the model's)", precision=0)
                layer = gr.Number(-1, label="Layer (-1 = last, 0 = embeddings)", precision=0)
            with gr.Row():
                normalize = gr.Checkbox(True, label="Normalise")
                token_row = gr.Number(1, label="Show tokens of text #", precision=0)
            precision = common.precision_box("encode-precision")
            task = family.task_box(engine, "encode-task")
    picker = family.image_picker(
        engine, "encode-images", "Images", fuse="Fuse each image with a text line (one line for all, or one each)"
    )
    button = gr.Button("Encode", variant="primary", elem_id="encode-run")
    note = common.note_box("encode-timing", "Timing and notes")
    table = widgets.table_box("encode-table", "Embeddings", "encode-table")
    widgets.how_to_read("encode-table", "encode-table-help")
    plot = gr.Plot(label="Vectors", elem_id="encode-plot")
    widgets.how_to_read("encode-plot", "encode-plot-help")
    with gr.Row():
        with gr.Column():
            summary = widgets.table_box("encode-summary", "Summary", "encode-summary")
            widgets.how_to_read("encode-summary", "encode-summary-help")
        tokens = gr.Markdown(label="Tokens", elem_id="encode-tokens")
    files = gr.File(label="Download", file_count="multiple", elem_id="encode-files")
    pictures = gr.HTML(label="Images", elem_id="encode-pictures")

    def instruction_for(name: str, chosen_mode: str, chosen_task: str) -> str:
        if not isinstance(name, str) or not isinstance(chosen_mode, str):
            return ""
        llm = engine.is_llm_embedder(name) and chosen_task in family.TASKS
        return default_instruction(engine, name, chosen_mode, chosen_task if llm else None)

    for trigger in (model.change, mode.change, task.change):
        trigger(instruction_for, [model, mode, task], instruction, api_visibility="private", queue=False)
    model.change(
        family.family_options(engine, [picker]), model, [task, picker.group], api_visibility="private", queue=False
    )
    model.change(common.warn_if_unavailable(engine), model, None, api_visibility="private", queue=False)
    for trigger in (upload.upload, column.submit, column.blur):  # a corrected column reads the kept upload again
        trigger(fill_from_upload, [upload, column], [texts, upload], api_visibility="private")
    parts = common.TabParts(
        handler=common.bind(encode, engine),
        inputs=[
            texts,
            upload,
            column,
            model,
            mode,
            instruction,
            max_length,
            normalize,
            layer,
            token_row,
            precision,
            task,
            *picker.inputs,
        ],
        outputs=[table, summary, plot, tokens, note, files],
        note=note,
        link={"texts": texts, "model": model, "mode": mode, "layer": layer},
    )
    for run in common.wire_run(parts, api_name="encode", button=button):
        run.success(
            family.pictures(engine, [picker]), [model, texts, *picker.inputs], pictures, api_visibility="private"
        )
    return parts
