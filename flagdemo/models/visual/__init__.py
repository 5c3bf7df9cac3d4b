"""Visualized-BGE (image + text embeddings, FlagEmbedding 1.2's research model) natively on torch.

``eva``: the EVA02-CLIP vision tower (pure torch; the golden environment imports it too). ``images``: opening,
checking and preprocessing images, thumbnails. ``model``: ``Visualized_BGE`` (also ``flagdemo.Visualized_BGE``).
``explore``: what the app's tabs call. ``drawing``: the bundled CC0 pictures and the golden test images. Nothing here
imports gradio, and importing this package imports nothing else.
"""
