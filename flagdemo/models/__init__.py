"""The model layer: a name in, a FlagEmbedding-exact object out (catalog, resolve, sources, cache, the embedder,
reranker and Visualized-BGE classes, and the backends they run on). Nothing here imports serving, engine or ui."""
