"""The checks every tab operation makes before a model runs, each written once, each a sentence for the visitor."""

from __future__ import annotations

from collections.abc import Sequence

from flagdemo import limits
from flagdemo.errors import EmptyInputError, InvalidInputError, LayerOutOfRangeError
from flagdemo.models.positions import readable_tokens
from flagdemo.models.resolve import NO_MODEL, ModelSpec

EMBEDDER_MODES = ("query", "passage", "raw")


def clean_lines(text: str | Sequence[str] | None) -> list[str]:
    """Non-empty, stripped lines: the app's text boxes hold one item per line."""
    return limits.split_lines(text)[0]


def texts_to_encode(texts: str | Sequence[str] | None) -> list[str]:
    """The lines of ``texts``; refused when there are none."""
    lines = clean_lines(texts)
    if not lines:
        raise EmptyInputError("There is no text to encode: write at least one line.")
    return lines


def query_and_passages(query: str | None, passages: str | Sequence[str] | None) -> tuple[str, list[str]]:
    """The stripped query and the passages' lines; refused when either is missing."""
    query, lines = (query or "").strip(), clean_lines(passages)
    if not query or not lines:
        raise EmptyInputError("Give a query and at least one passage (one per line).")
    return query, lines


def check_mode(mode: str) -> None:
    if mode not in EMBEDDER_MODES:
        raise InvalidInputError(f"Mode must be one of {', '.join(EMBEDDER_MODES)}, not {mode!r}.")


def chosen(name: str | ModelSpec | None) -> bool:
    """Whether a model box holds a model (not empty, not the "none" choice)."""
    return isinstance(name, ModelSpec) or (bool(name) and name.strip() != "" and name != NO_MODEL)


def check_layer(reranker, layer: int) -> None:
    """Refuse a cutoff layer a layer-wise reranker has no head for."""
    valid = list(getattr(reranker, "valid_layers", []) or [])
    if valid and layer not in valid:
        raise LayerOutOfRangeError(f"Layer {layer} is not available for this model: choose {valid[0]} to {valid[-1]}.")


def check_max_length(model, max_length: int | None) -> None:
    """Refuse a maximum length the model cannot read: its position embeddings end there, and torch would fail."""
    config_of = getattr(model, "_backbone_config", None)  # an embedder: its config without loading torch weights
    config = config_of() if config_of is not None else getattr(getattr(model, "model", None), "config", None)
    limit = readable_tokens(config)
    if max_length is not None and limit is not None and int(max_length) > limit:
        raise InvalidInputError(
            f"The maximum length {int(max_length)} is more than this model can read: choose at most {limit} tokens."
        )
