"""Models: every catalog model and whether it can be used here, and what the shared model cache holds."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from flagdemo import limits, serving
from flagdemo.engine import Engine
from flagdemo.ui import common, inputs, widgets
from flagdemo.ui.views import text

TITLE = "Models"
TAB_ID = "models"
HELP = (
    "**Can it be used here?** *yes (bundled)* = shipped in a Python package, works offline; *yes (models folder)* = "
    "found in the server's models folder; *yes (downloaded)* = already in the Hugging Face cache; *downloads on "
    "first use* = the hub is reachable; *needs download* = not on this machine and the hub is out of reach (the "
    "docs/serving.md says how to add it). Any model field also accepts a local folder or a hub id."
)
CACHE_COLUMNS = ["model", "MB", "device", "load s", "runs on"]
MEMORY_COLUMNS = ["what", "MB"]
MEMORY_TABLE_HEIGHT = 800  # pixels: every row of the account with six models cached, so nothing scrolls


@common.user_errors("listing the models")
def models(engine: Engine):
    catalog_table = pd.DataFrame(engine.catalog_rows())
    memory = pd.DataFrame(engine.memory_rows(), columns=MEMORY_COLUMNS)
    return catalog_table, *_loaded(engine), memory


def _loaded(engine: Engine):
    """The cache table and the Unload menu that lists its models."""
    cache = pd.DataFrame(engine.cache_rows(), columns=CACHE_COLUMNS)
    return cache, gr.Dropdown(choices=["all", *cache["model"].tolist()], value="all")


@common.user_errors("unloading a model")
def unload(engine: Engine, key: str = "all"):
    if limits.public_mode():
        raise inputs.InvalidInputError("This public demo manages its loaded models itself: unloading is turned off.")
    key = inputs.optional_text(key, "model to unload") or "all"
    dropped = engine.unload(key)
    cache, dropdown = _loaded(engine)
    message = f"Unloaded {key}." if dropped else f"Nothing to unload for {key}: it is not loaded."
    return cache, dropdown, message


def render(engine: Engine) -> common.TabParts:
    gr.Markdown(text.tab_intro(TITLE))
    gr.Markdown(HELP)
    refresh = gr.Button("Refresh", elem_id="models-refresh")
    catalog_table = widgets.table_box("models-catalog", "Catalog", "models-catalog")
    widgets.how_to_read("models-catalog", "models-catalog-help")
    cache = widgets.table_box("models-cache", "Loaded models (cache)", "models-cache")
    widgets.how_to_read("models-cache", "models-cache-help")
    memory = widgets.table_box(  # tall enough for every row: the total and the budget come last
        "models-memory", "Where this server's memory is", "models-memory", max_height=MEMORY_TABLE_HEIGHT
    )
    widgets.how_to_read("models-memory", "models-memory-help")
    with gr.Row():
        key = gr.Dropdown(["all"], value="all", label="Unload", allow_custom_value=True)
        unload_button = gr.Button("Unload", elem_id="models-unload")
    message = gr.Markdown(label="Message", elem_id="models-message")
    listing = common.bind(models, engine)
    outputs = [catalog_table, cache, key, memory]
    refresh.click(listing, None, outputs, api_name="models", **serving.event_kwargs("models"))
    unload_button.click(
        common.bind(unload, engine), key, [cache, key, message], api_name="unload", **serving.event_kwargs("unload")
    )
    return common.TabParts(handler=listing, inputs=[], outputs=outputs, note=message, memo=False)
