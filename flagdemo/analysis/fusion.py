"""Fusing runs with ranx's ``fuse``: reciprocal rank fusion, CombSUM, CombMNZ (and ranx's other methods by name).

The runs fused are the systems' run files (each query's top ``depth``). Normalisation before fusing:

- ``rrf``: none — RRF reads ranks only: score(d) = Σ_runs 1 / (k + rank(d)), k = 60 (Cormack et al. 2009) unless
  given; a passage a run did not return adds nothing.
- ``combsum`` / ``combmnz``: each run's scores are min-max normalised per query ((s − min) / (max − min), ranx's
  'min-max') and then summed (CombMNZ multiplies the sum by the number of runs that returned the passage). Another
  ranx normalisation can be named (``norm=zmuv``, ``max``, ``sum``, ``rank``, ``borda``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from flagdemo.analysis import jit
from flagdemo.errors import InvalidInputError

METHODS = {"rrf": "rrf", "combsum": "sum", "combmnz": "mnz", "combmax": "max", "combmin": "min"}
NORMS = ("min-max", "max", "sum", "zmuv", "rank", "borda")
RRF_K = 60

jit.configure()  # before ranx, and with it numba, is first imported


@functools.cache
def warm_up(method: str) -> None:
    """Compile ranx's Numba kernels for ``method`` once per process (seconds), so that a fusion's timing is its own."""
    fuse([{"q": {"a": 1.0, "b": 0.5}}, {"q": {"b": 1.0, "c": 0.2}}], method)


def fuse(
    runs: Sequence[Mapping[str, Mapping[str, float]]],
    method: str = "rrf",
    *,
    k: int = RRF_K,
    norm: str | None = None,
) -> dict[str, dict[str, float]]:
    """One fused run from ``runs`` (``{query: {passage: score}}``), through ``ranx.fuse``; see the module docstring."""
    from ranx import Run
    from ranx import fuse as ranx_fuse

    if method not in METHODS:
        raise InvalidInputError(f"Unknown fusion {method!r}: choose one of {', '.join(METHODS)}.")
    if len(runs) < 2:
        raise InvalidInputError("A fusion needs at least two systems.")
    if method == "rrf":
        if norm not in (None, "none"):
            raise InvalidInputError("RRF reads ranks, not scores: it takes no normalisation.")
        if int(k) < 1:
            raise InvalidInputError(f"RRF's k must be at least 1, not {k}.")
        chosen_norm, params = None, {"k": int(k)}
    else:
        chosen_norm, params = (norm or "min-max"), {}
        if chosen_norm not in NORMS:
            raise InvalidInputError(f"Unknown normalisation {chosen_norm!r}: choose one of {', '.join(NORMS)}.")
    queries = sorted(set().union(*(run.keys() for run in runs)))
    with jit.PARALLEL_KERNELS:
        # every run covers every query (ranx asks for it); a query a run did not answer has no passages from it
        ranx_runs = [
            Run({q: dict(run.get(q, {})) or {"\x00none": 0.0} for q in queries}, name=f"run{number}")
            for number, run in enumerate(runs)
        ]
        fused = ranx_fuse(ranx_runs, norm=chosen_norm, method=METHODS[method], params=params).to_dict()
    return {q: {p: float(s) for p, s in scores.items() if p != "\x00none"} for q, scores in fused.items()}
