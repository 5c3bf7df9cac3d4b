"""How a tab shows a result table and its "how to read this" line: the legible views of ``tables`` and ``text``
laid out with the gr.DataFrame settings that keep them inside a 1400 px page.

``name`` is the table's key in ``tables.TABLE_WIDTH`` and ``text.HOW_TO_READ`` ("rerank-table", "sweep-ranks" …).
A handler returns a plain DataFrame (``tables.for_display`` of its result), so API clients receive the table as
before; the table box then fits its column widths to what arrived (:func:`table_box`).
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from flagdemo.ui.views import tables, text


def table_box(name: str, label: str, elem_id: str, *, max_height: int = tables.MAX_HEIGHT) -> gr.DataFrame:
    """A result table that, whenever a result arrives, sets its column widths and types from that result; past
    ``max_height`` pixels it scrolls (a table whose last rows carry its point, like a total, should show them all)."""
    width = tables.TABLE_WIDTH[name]
    settings = {"width": width, "max_height": max_height}
    box = gr.DataFrame(label=label, elem_id=elem_id, **tables.dataframe_settings(pd.DataFrame(), **settings))

    def fit(shown: pd.DataFrame | None):
        if shown is None or len(shown.columns) == 0:
            return gr.skip()
        return gr.DataFrame(**tables.dataframe_settings(shown, **settings))

    box.change(fit, box, box, api_visibility="private", queue=False, show_progress="hidden")
    return box


def how_to_read(name: str, elem_id: str) -> gr.Markdown:
    """The "how to read this" line under a plot or table, in the words of ``text.HOW_TO_READ``."""
    return gr.Markdown(f"<small>{text.how_to_read(name)}</small>", elem_id=elem_id)
