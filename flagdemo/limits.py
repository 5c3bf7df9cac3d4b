"""What one request may ask of the app, and the host's safety switches, all read from environment variables.

A public Space and a workshop room send pasted books, thousands of lines and many users at once: each bound here
keeps one request from starving the others, and each check answers with a sentence that names the limit and the
variable that raises it. Values are read on every call, so an operator (or a test) can change them without a restart.
No gradio here: the checks raise flagdemo errors and the app shows their message.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flagdemo.errors import InvalidInputError, ResourceLimitError

TRUTHY = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class Setting:
    """One limit: its environment variable, default, and what it bounds (for messages and docs/serving.md)."""

    env: str
    default: float
    meaning: str
    integer: bool = True

    def value(self) -> float:
        return env_number(self.env, self.default, integer=self.integer)


MAX_TEXTS = Setting("FLAGDEMO_MAX_TEXTS", 512, "texts (lines) in one list of one request")
MAX_CHARS = Setting("FLAGDEMO_MAX_CHARS", 8000, "characters in one text, query or instruction")
MAX_UPLOAD_MB = Setting("FLAGDEMO_MAX_UPLOAD_MB", 10, "size of an uploaded .txt / .csv file, in MB", integer=False)
MAX_UPLOAD_ROWS = Setting("FLAGDEMO_MAX_UPLOAD_ROWS", 2000, "texts read from one upload (the rest are dropped)")
MAX_PASSAGES = Setting("FLAGDEMO_MAX_PASSAGES", 100, "candidate passages per rerank or layer sweep")
MAX_SYSTEMS = Setting("FLAGDEMO_MAX_SYSTEMS", 12, "systems in one comparison (Compare's N-system view)")
MAX_RERANKED_PAIRS = Setting(
    "FLAGDEMO_MAX_RERANKED_PAIRS", 2000, "query–passage pairs the pipelines of one comparison rerank"
)
MAX_POINTS = Setting("FLAGDEMO_MAX_POINTS", 2000, "points (texts + queries) in one projection")
# Images (Visualized-BGE): checked before the pixels are decoded, so a hostile file costs no memory.
MAX_IMAGES = Setting("FLAGDEMO_MAX_IMAGES", 64, "images in one request")
MAX_IMAGE_MB = Setting("FLAGDEMO_MAX_IMAGE_MB", 10, "size of one image file, in MB", integer=False)
MAX_IMAGE_MEGAPIXELS = Setting("FLAGDEMO_MAX_IMAGE_MEGAPIXELS", 25, "width x height of one image, in megapixels",
                               integer=False)  # fmt: skip
MIN_IMAGE_SIDE = Setting("FLAGDEMO_MIN_IMAGE_SIDE", 8, "shortest side of one image, in pixels")
MAX_IMAGE_ASPECT = Setting("FLAGDEMO_MAX_IMAGE_ASPECT", 20, "long side / short side of one image", integer=False)
IMAGE_SETTINGS = (MAX_IMAGES, MAX_IMAGE_MB, MAX_IMAGE_MEGAPIXELS, MIN_IMAGE_SIDE, MAX_IMAGE_ASPECT)
ALL_SETTINGS = (
    MAX_TEXTS, MAX_CHARS, MAX_UPLOAD_MB, MAX_UPLOAD_ROWS, MAX_PASSAGES, MAX_SYSTEMS, MAX_RERANKED_PAIRS, MAX_POINTS,
    *IMAGE_SETTINGS,
)  # fmt: skip


def env_number(name: str, default: float, *, integer: bool = True, allow_zero: bool = False) -> float:
    """The number in environment variable ``name`` (``default`` when unset or blank); a sentence naming the variable
    when it is not a finite number, or not above zero (at least zero with ``allow_zero``, where 0 switches a feature
    off). "inf" and "nan" are refused: an unbounded cache or upload is a setting to spell out, not a float quirk."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        number = int(raw) if integer else float(raw)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        kind = "whole number" if integer else "number"
        bound = "of at least 0" if allow_zero else "above 0"
        raise InvalidInputError(f"The environment variable {name} must be a {kind} {bound}, not {raw!r}.")
    return number


def flag(name: str) -> bool:
    """An on/off environment switch: 1 / true / yes / on (any case) turn it on."""
    return os.environ.get(name, "").strip().lower() in TRUTHY


def public_mode() -> bool:
    """FLAGDEMO_PUBLIC=1: only the app's own and catalog models, never paths or other hub ids.

    Unset, it is on when running on a Hugging Face Space (which sets SPACE_ID), so a duplicated Space is safe before
    anyone configures it; FLAGDEMO_PUBLIC=0 turns it off there.
    """
    if os.environ.get("FLAGDEMO_PUBLIC", "").strip():
        return flag("FLAGDEMO_PUBLIC")
    return bool(os.environ.get("SPACE_ID", "").strip())


def zero_gpu() -> bool:
    """SPACES_ZERO_GPU, which a Hugging Face Space on ZeroGPU hardware sets: a GPU is lent per decorated call."""
    return flag("SPACES_ZERO_GPU")


def debug_mode() -> bool:
    """FLAGDEMO_DEBUG=1: request log lines also carry the user's texts."""
    return flag("FLAGDEMO_DEBUG")


def split_lines(text: str | Sequence[str] | None) -> tuple[list[str], int]:
    """The non-empty, stripped lines of a text box (or list), and how many blank or whitespace-only were dropped."""
    if text is None:
        return [], 0
    lines = text.splitlines() if isinstance(text, str) else [str(t) for t in text]
    kept = [line.strip() for line in lines if line.strip()]
    return kept, len(lines) - len(kept)


def _count(n: int) -> str:
    return f"{n:,}"


def check_count(n: int, setting: Setting, what: str) -> None:
    """Refuse more than ``setting`` items, naming the variable that raises the bound."""
    limit = int(setting.value())
    if n > limit:
        raise ResourceLimitError(
            f"There are {_count(n)} {what}; one request takes at most {_count(limit)} ({setting.env}). "
            "Send fewer at a time."
        )


def check_text_lengths(texts: Sequence[str], what: str = "text") -> None:
    """Refuse any text longer than FLAGDEMO_MAX_CHARS characters (the model would only read its start anyway)."""
    limit = int(MAX_CHARS.value())
    for position, item in enumerate(texts, start=1):
        if len(item) > limit:
            raise ResourceLimitError(
                f"{what.capitalize()} {position} has {_count(len(item))} characters; the limit is {_count(limit)} per "
                f"{what} ({MAX_CHARS.env}). A model reads only its first few hundred tokens anyway: shorten it."
            )


def check_texts(
    texts: Sequence[str], what: str = "text", plural: str | None = None, *, setting: Setting = MAX_TEXTS
) -> None:
    """Both bounds on one list: how many (``setting``), and how long each."""
    check_count(len(texts), setting, plural or f"{what}s")
    check_text_lengths(texts, what)


def check_upload_size(path: str | os.PathLike) -> None:
    """Refuse an uploaded file above FLAGDEMO_MAX_UPLOAD_MB before reading it."""
    limit_mb = MAX_UPLOAD_MB.value()
    try:
        size = Path(path).stat().st_size
    except OSError:
        raise InvalidInputError("The uploaded file could not be read: upload it again.") from None
    if size > limit_mb * 2**20:
        raise ResourceLimitError(
            f"The uploaded file has {size / 2**20:.1f} MB; the limit is {limit_mb:g} MB ({MAX_UPLOAD_MB.env})."
        )
