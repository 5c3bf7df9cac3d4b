"""Numbers in, numbers out: similarity scores, retrieval metrics, projections and evaluation tables. No model is
loaded here; callers pass vectors, scores or objects with ``encode`` / ``compute_score``."""
