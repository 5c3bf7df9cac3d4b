"""The app, or one of its tabs, inside a Jupyter notebook: ``flagdemo.ui.show(tab="similarity")``."""

from __future__ import annotations

import gradio as gr

from flagdemo.engine import Engine


def show(tab: str | None = None, *, engine: Engine | None = None, height: int = 900) -> gr.Blocks:
    """Launch the app (or only ``tab``: encode, similarity, rerank, layer_sweep, project, compare, models) on a
    local port and render it inline below the cell, as gradio does in notebooks. Returns the Blocks; call
    ``.close()`` on it to stop the server."""
    from flagdemo.ui.blocks import build_demo, theme

    demo = build_demo(engine, only=tab)
    demo.launch(inline=True, height=height, prevent_thread_lock=True, quiet=True, theme=theme())
    return demo
