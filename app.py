"""Entry point: `python app.py` (or `make run`), `gradio app.py` (reload mode) and Hugging Face Spaces.

The module-level ``demo`` is what Spaces and reload mode look for; the server only starts under ``__main__``.
Host and port come from --host/--port, else GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, else 127.0.0.1:7860.
"""

from __future__ import annotations

import argparse
import logging
import os

# Idle OpenMP threads sleep instead of spinning: on a shared or busy CPU (a Space, a laptop in a workshop) spinning
# threads wait on each other and a short request took 0.5 s instead of 27 ms; on an idle CPU it costs ~5 ms. Set
# before torch loads, and only as a default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from flagdemo.analysis.warm_up import start_warm_up
from flagdemo.serving.memory import limit_heap_arenas
from flagdemo.ui import build_demo
from flagdemo.ui.blocks import compute_examples_in_background, theme

limit_heap_arenas()  # before the server's threads allocate (see flagdemo.serving.memory)
demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="flagdemo: explore BGE / FlagEmbedding embedders and rerankers.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("flagdemo").setLevel(logging.INFO)
    start_warm_up()  # compile UMAP and ranx in the background so the first map and fusion are quick
    compute_examples_in_background(demo)  # every tab's example, ready before the first visitor arrives
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, theme=theme())


if __name__ == "__main__":
    main()
