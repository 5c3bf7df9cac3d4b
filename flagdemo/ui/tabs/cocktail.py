"""Cocktail: fine-tune an embedder on a small domain set, blend it back into its base with LM-Cocktail, and see
what the blend gains in the domain against what it forgets elsewhere.

The work itself is :func:`flagdemo.training.blend.tune_and_blend`; the handler reads the widgets, keeps the
fine-tuned checkpoint inside a bounded folder of the cache (deleted when the request ends), and draws the results.
Unlike the other tabs, the page does not compute this tab's example when it loads (fine-tuning takes minutes): the
composer's page-load call gets :func:`opening`, which says so and quotes the defaults' measured result.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from flagdemo import limits
from flagdemo.data import datasets
from flagdemo.engine import Engine
from flagdemo.errors import InvalidInputError
from flagdemo.models import catalog
from flagdemo.models.sources import cache_root
from flagdemo.serving import request_log
from flagdemo.training import blend, finetune
from flagdemo.ui import common, widgets
from flagdemo.ui.views import tables, text

TITLE = "Cocktail"
TAB_ID = "cocktail"
BUNDLED = "cooking_health_finance"
UPLOAD = "my upload (.jsonl)"
MAX_EXAMPLES = 2000
STALE_SECONDS = 3600
INTRO = (
    "LM-Cocktail blends the fine-tuned weights back into the base model (w · fine-tuned + (1 − w) · base) to trade "
    "one against the other. The defaults fine-tune the bundled "
    "MiniLM for one pass over 127 cooking, health and finance examples (English, plus some French, German and "
    "Spanish), then score the base model, the fine-tuned one and the blends at w = 0, 0.1 … 1 on the labelled "
    "set's queries from those topics (in-domain) and from the other five (out-of-domain). Expect a couple of "
    "minutes on 2 CPU cores."
)
MINILM_RUN = (
    '(docs/training.md, "Measured: MiniLM fine-tuned on cooking, health and finance"): in-domain nDCG@10 0.797 '
    "(base) → 0.807 (fine-tuned), out-of-domain 0.863 → 0.877, LM-Cocktail's weight from the held-back data 0.521."
)


def opening_note(base: str) -> str:
    """What the tab says before its first run; the measured figures are MiniLM's, and say so on another base."""
    note = (
        "**Nothing has run yet:** fine-tuning takes minutes, so this tab is not computed when the page opens. Press "
        "*Fine-tune and blend* to run the defaults."
    )
    if catalog.lookup(base, "embedder") is catalog.lookup(catalog.MINILM_KEY, "embedder"):
        return f"{note} For reference, one run of these defaults measured {MINILM_RUN}"
    name = base.rstrip("/").rsplit("/", 1)[-1]  # a hub id's or a folder's last part: never a server path
    return (
        f"{note} Its base here is {name}, larger than all-MiniLM-L6-v2, so a run takes longer and gives its own "
        f"numbers; for reference, one run on all-MiniLM-L6-v2 measured {MINILM_RUN}"
    )


def _workspace() -> Path:
    """A fresh folder for one request's checkpoint, under the cache; folders left by crashed runs are removed."""
    root = cache_root() / "cocktail"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if old.is_dir() and time.time() - old.stat().st_mtime > STALE_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=root))


def _examples(choice: str, upload: str | None) -> tuple[list[dict], list[str]]:
    """The training examples and the topics they name (bundled file: its own; an upload: none)."""
    if choice == UPLOAD:
        if not upload:
            raise InvalidInputError("Upload a .jsonl training file first, or pick the bundled one.")
        limits.check_upload_size(upload)
        examples = finetune.read_training_file(upload, max_examples=MAX_EXAMPLES)
        limits.check_text_lengths([t for e in examples for t in (e["query"], *e["pos"], *e["neg"])], "training text")
        return examples, []
    files = finetune.bundled_training_files()
    if choice not in files:
        raise InvalidInputError(f"Unknown training file {str(choice)[:80]!r}; choose {BUNDLED} or an upload.")
    import json

    rows = [json.loads(line) for line in files[choice].read_text(encoding="utf-8").splitlines() if line.strip()]
    return finetune.check_examples(rows), sorted({row["topic"] for row in rows if "topic" in row})


def _number(value, name: str, default: float, low: float, high: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, not {str(value)[:40]!r}.") from None
    if not low <= number <= high:
        raise InvalidInputError(f"{name} must be between {low:g} and {high:g}, not {value}.")
    return number


def loss_figure(losses: list[float]) -> go.Figure:
    """Training loss per step."""
    figure = go.Figure(go.Scatter(x=list(range(1, len(losses) + 1)), y=losses, mode="lines+markers", name="loss"))
    figure.update_layout(title="Training loss (InfoNCE, temperature 0.02)", xaxis_title="step",
                         yaxis_title="loss", height=320, margin={"l": 50, "r": 20, "t": 50, "b": 40})  # fmt: skip
    return figure


def curve_figure(curve: pd.DataFrame, data_weight: float) -> go.Figure:
    """nDCG@10 against the fine-tuned model's weight, in-domain and out-of-domain, LM-Cocktail's weight marked."""
    figure = go.Figure()
    for column, colour in (("in-domain nDCG@10", "#1f77b4"), ("out-of-domain nDCG@10", "#d62728")):
        figure.add_trace(go.Scatter(x=curve["weight"], y=curve[column], mode="lines+markers", name=column,
                                    line={"color": colour}))  # fmt: skip
    figure.add_vline(x=data_weight, line_dash="dash", line_color="#555",
                     annotation_text=f"LM-Cocktail's weight from data: {data_weight:.3f}")  # fmt: skip
    figure.update_layout(
        title="Blends of base (w = 0) and fine-tuned (w = 1)",
        xaxis_title="weight of the fine-tuned model, w",
        yaxis_title="nDCG@10 on the labelled set",
        height=420,
        margin={"l": 50, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def _summary(run: blend.CocktailRun, base: str, seconds: float) -> str:
    curve = run.curve
    ends = curve.set_index("weight")
    inside, outside = "in-domain nDCG@10", "out-of-domain nDCG@10"
    best = curve.loc[curve[inside].idxmax()]
    tuned = run.finetuned
    return (
        f"Fine-tuned {base} on {tuned.examples} examples for {tuned.steps} steps; {run.held_out_examples} examples "
        f"were held back to derive LM-Cocktail's weight for the fine-tuned model: {run.data_weight:.3f} (losses "
        f"base {run.data_losses[0]:.3f}, fine-tuned {run.data_losses[1]:.3f}). In-domain nDCG@10: base "
        f"{ends.loc[0.0, inside]:.3f}, fine-tuned {ends.loc[1.0, inside]:.3f}, best blend {best[inside]:.3f} at "
        f"w = {best['weight']:g}. Out-of-domain: base {ends.loc[0.0, outside]:.3f}, fine-tuned "
        f"{ends.loc[1.0, outside]:.3f}. {int(curve['in-domain queries'].iloc[0])} in-domain and "
        f"{int(curve['out-of-domain queries'].iloc[0])} out-of-domain queries, so one query moves a mean by "
        f"several hundredths. Took {seconds:.0f} s."
    )


def _blend_folder() -> Path | None:
    """Where the blend at LM-Cocktail's weight is written for download; None in public mode (no server files
    handed out there)."""
    if limits.public_mode():
        return None
    return Path(tempfile.gettempdir()) / f"flagdemo-cocktail-{uuid.uuid4().hex}" / "merged"  # made when written


@common.user_errors("fine-tuning and blending the model")
def cocktail(  # noqa: PLR0917 (gradio passes widget values positionally)
    engine: Engine,
    base_model: str | None = None,
    training_file: str = BUNDLED,
    upload: str | None = None,
    in_domain: list[str] | None = None,
    epochs: float = 1,
    learning_rate: float = 2e-5,
    temperature: float = 5.0,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
):
    """Fine-tune, derive LM-Cocktail's weight, measure the blends; returns figures, table, download and a note."""
    base = base_model.strip() if isinstance(base_model, str) and base_model.strip() else engine.fine_tuning_base
    examples, file_topics = _examples(training_file or BUNDLED, upload)
    topics = list(in_domain) if in_domain else file_topics
    if not topics:
        raise InvalidInputError("Tick the labelled-set topics your training file covers (the in-domain ones).")
    epochs = int(_number(epochs, "Epochs", 1, 1, 5))
    learning_rate = _number(learning_rate, "The learning rate", 2e-5, 1e-7, 1e-3)
    temperature = _number(temperature, "LM-Cocktail's temperature", 5.0, 0.01, 100)
    request_log.note(models=[base], inputs=[example["query"] for example in examples])
    started = time.perf_counter()
    workdir, blend_to = _workspace(), _blend_folder()
    try:
        step = common.progress_with_last_run(progress)
        step(0.0, "Loading the base model")
        run = engine.tune_and_blend(
            base,
            examples,
            topics,
            workdir,
            epochs=epochs,
            learning_rate=learning_rate,
            temperature=temperature,
            blend_to=blend_to,
            progress=step,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    download = None
    if blend_to is not None:
        download = shutil.make_archive(str(blend_to.parent / "merged-model"), "zip", blend_to)
    return (
        loss_figure(run.finetuned.losses),
        curve_figure(run.curve, run.data_weight),
        tables.for_display(run.curve),
        download,
        _summary(run, base, time.perf_counter() - started),
    )


def opening(engine: Engine):
    """What the page shows before the first run: empty results and a note that says why (not a fine-tuning run)."""

    def show(*_values):
        return None, None, None, None, opening_note(engine.fine_tuning_base)

    show.__name__ = "cocktail_opening"
    return show


def render(engine: Engine) -> common.TabParts:
    gr.Markdown(text.tab_intro(TITLE))
    gr.Markdown(INTRO)
    topics = sorted(set(datasets.load_retrieval_set().queries["topic"]))
    with gr.Row():
        model = common.model_box(
            engine.model_menu("embedder"), engine.fine_tuning_base, "Base embedder", "cocktail-model"
        )
        training = gr.Dropdown([BUNDLED, UPLOAD], value=BUNDLED, label="Training file", elem_id="cocktail-file")
        upload = gr.File(
            label="Upload (.jsonl: query, pos, neg)", file_types=[".jsonl"], type="filepath", elem_id="cocktail-upload"
        )
    with gr.Row():
        in_domain = gr.CheckboxGroup(
            topics,
            value=["cooking", "health", "personal_finance"],
            label="In-domain topics (the rest are out-of-domain)",
            elem_id="cocktail-topics",
        )
        epochs = gr.Number(1, label="Epochs", precision=0, elem_id="cocktail-epochs")
        learning_rate = gr.Number(2e-5, label="Learning rate", elem_id="cocktail-lr")
        temperature = gr.Number(5.0, label="LM-Cocktail temperature", elem_id="cocktail-temperature")
    button = gr.Button("Fine-tune and blend", variant="primary", elem_id="cocktail-run")
    note = common.note_box("cocktail-note", "Notes")
    with gr.Row():
        loss_plot = gr.Plot(label="Training loss", elem_id="cocktail-loss")
        curve_plot = gr.Plot(label="Merge curve", elem_id="cocktail-curve")
    widgets.how_to_read("cocktail-curve", "cocktail-curve-help")
    table = widgets.table_box("cocktail-table", "nDCG@10 per blend", "cocktail-table")
    widgets.how_to_read("cocktail-table", "cocktail-table-help")
    download = gr.File(label="The blend at LM-Cocktail's weight (zip)", elem_id="cocktail-download")
    model.change(common.warn_if_unavailable(engine), model, None, api_visibility="private", queue=False)
    inputs = [model, training, upload, in_domain, epochs, learning_rate, temperature]
    outputs = [loss_plot, curve_plot, table, download, note]
    run = common.TabParts(handler=common.bind(cocktail, engine), inputs=inputs, outputs=outputs, note=note)
    common.wire_run(run, api_name="cocktail", button=button, reset=False)  # a reset would start minutes of work
    return common.TabParts(handler=opening(engine), inputs=inputs, outputs=outputs, note=note)
