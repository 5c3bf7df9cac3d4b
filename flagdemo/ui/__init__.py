"""The Gradio app: ``build_demo(engine)`` (the composer in ``blocks``, one module per tab in ``tabs``), ``show``
for notebooks, and ``endpoints`` to call every endpoint in-process (tests, notebooks) without a server.

The three load on first use, so the gradio-free ``views`` (tables, figures, text) import without gradio.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"build_demo": "flagdemo.ui.blocks", "show": "flagdemo.ui.notebook", "endpoints": "flagdemo.ui.inprocess"}

__all__ = ["build_demo", "endpoints", "show"]


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'flagdemo.ui' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
