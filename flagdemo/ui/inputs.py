"""Every widget value the app reads, parsed in one place with one rule and one message style.

A value that is empty, not a number, or outside its range is refused with a sentence that names the field and the
allowed range; nothing is clamped or replaced silently. Uploads must hold what they are read for (a CSV's column
must exist). No gradio components here: only values in, values (or ``InvalidInputError``) out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from flagdemo import limits
from flagdemo.engine import NO_MODEL, clean_lines
from flagdemo.errors import InvalidInputError
from flagdemo.models.backends.precision import default_precision, is_approximate

MAX_MODEL_NAME = 1000
PRECISION_CHOICES = {
    "fp32 (exact)": "fp32",
    "bf16 (approximate)": "bf16",
    "int8 (approximate, fastest on CPU)": "int8",
}


def _number(value, name: str) -> float:
    """A numeric widget's value as a finite float, or a sentence (an emptied box or letters arrive as None / text)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInputError(f"{name} is empty or not a number: type a number.")
    if isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a number, not {value}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, not {str(value)[:40]!r}.") from None
    if not np.isfinite(number):
        raise InvalidInputError(f"{name} must be a finite number, not {value}.")
    return number


def _range_words(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum:g} and {maximum:g}"
    return f"at least {minimum:g}" if minimum is not None else f"at most {maximum:g}"


def whole_number(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number within [minimum, maximum], or a sentence saying what was wrong with it."""
    number = _number(value, name)
    if not number.is_integer():
        raise InvalidInputError(f"{name} must be a whole number, not {value}.")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise InvalidInputError(f"{name} must be {_range_words(minimum, maximum)}, not {int(number)}.")
    return int(number)


def count_up_to(value, name: str, available: int, noun: str, most: int) -> tuple[int, str]:
    """A whole number from 1 to ``most`` (the most items a request may have): asking for more than the ``available``
    items uses them all and says so, because a default such as top-3 must keep working when a visitor gives two
    passages; a number outside 1 to ``most`` is refused like any other."""
    number = whole_number(value, name, minimum=1, maximum=max(most, available))
    if number <= available:
        return number, ""
    return available, f"{name} {number} is more than the {available} {noun}, so all {available} are used."


def real_number(value, name: str, *, minimum: float = 0.0, maximum: float | None = None) -> float:
    """A finite number within [minimum, maximum], or a sentence."""
    number = _number(value, name)
    if number < minimum or (maximum is not None and number > maximum):
        raise InvalidInputError(f"{name} must be a number {_range_words(minimum, maximum)}, not {value}.")
    return number


def choice(value, name: str, options: Sequence[str]) -> str:
    """One of ``options`` (a radio's or dropdown's value), or a sentence listing them."""
    if isinstance(value, str) and value.strip() in options:
        return value.strip()
    raise InvalidInputError(f"{name} must be one of {', '.join(options)}, not {str(value)[:40]!r}.")


def flag(value, name: str) -> bool:
    """A checkbox's value (true/false); anything else is refused."""
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise InvalidInputError(f"{name} must be true or false, not {str(value)[:40]!r}.")


def lines_of(value: str | None, what: str) -> tuple[list[str], int]:
    """The non-empty lines of a text box and how many empty ones were dropped."""
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"The {what} must be text, one item per line.")
    return limits.split_lines(value)


def model_name(value, default: str) -> str:
    """A model picker's value: empty → the default; anything else must be a name of sane length."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if not isinstance(value, str):
        raise InvalidInputError("The model must be a name from the list, a hub id or a folder.")
    if len(value) > MAX_MODEL_NAME:
        raise InvalidInputError(f"A model name has at most {MAX_MODEL_NAME} characters.")
    return value.strip()


def method_model(value, default: str) -> str:
    """A reranking method's model picker: None → the engine's default; '' or '(none)' leave the method out."""
    if value is None:
        return default
    if isinstance(value, str) and value.strip() in ("", NO_MODEL):
        return NO_MODEL
    return model_name(value, default)


def precision_label(precision: str) -> str:
    return next(label for label, key in PRECISION_CHOICES.items() if key == precision)


def precision_choice(value) -> str:
    """The Precision dropdown's value (a label, or fp32 / bf16 / int8) as a precision; empty → the server default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default_precision()
    if isinstance(value, str):
        cleaned = value.strip()
        if cleaned in PRECISION_CHOICES.values():
            return cleaned
        if cleaned in PRECISION_CHOICES:
            return PRECISION_CHOICES[cleaned]
    raise InvalidInputError(f"The precision must be one of: {', '.join(PRECISION_CHOICES)}.")


def precision_note(precision: str) -> str:
    """The sentence an approximate result carries ('' for exact fp32)."""
    if not is_approximate(precision):
        return ""
    return (
        f"Approximate: computed in {precision_label(precision)}, so the numbers differ slightly from "
        "FlagEmbedding's fp32 results; choose fp32 (exact) to reproduce them."
    )


def optional_text(value, what: str) -> str:
    """A single-line text widget (instruction, query): stripped, within the text length limit, '' when empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"The {what} must be text.")
    limits.check_text_lengths([value], what)
    return value.strip()


def read_table_upload(path, column: str = "text", label_column: str | None = None) -> tuple[list[str], list[str]]:
    """(texts, labels) of an uploaded .txt (one text per line, no labels) or .csv (``column``, and ``label_column``
    when the CSV has it). A CSV without ``column`` is refused with the columns it has. Empty rows are dropped."""
    if not path:
        return [], []
    file = Path(str(path))
    if not file.is_file():
        raise InvalidInputError("The upload is not a readable file: upload a .txt or .csv file again.")
    limits.check_upload_size(file)
    if file.suffix.lower() != ".csv":
        try:
            texts, _ = limits.split_lines(file.read_text(encoding="utf-8").splitlines())
        except UnicodeDecodeError:
            raise InvalidInputError("The uploaded file is not UTF-8 text: upload a .txt or .csv file.") from None
        limits.check_count(len(texts), limits.MAX_UPLOAD_ROWS, "texts in the upload")
        return texts, []
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"The uploaded CSV could not be read: {str(exc)[:200]}.") from None
    if frame.empty:
        raise InvalidInputError("The uploaded CSV has no rows.")
    column = (column or "text").strip()
    if column not in frame.columns:
        found = ", ".join(f"'{name}'" for name in frame.columns[:20])
        raise InvalidInputError(f"The uploaded CSV has no column '{column[:60]}': its columns are {found}.")
    keep = frame[column].astype(str).str.strip() != ""
    texts = frame.loc[keep, column].astype(str).str.strip().tolist()
    labels = []
    if label_column and label_column in frame.columns:
        labels = [label.strip() or "text" for label in frame.loc[keep, label_column].astype(str)]
    limits.check_count(len(texts), limits.MAX_UPLOAD_ROWS, "texts in the upload")
    return texts, labels


def parse_labelled_lines(raw: str | Sequence[str]) -> tuple[list[str], list[str]]:
    """'label<TAB>text' lines (or 'label | text'); lines without a label get the label 'text'."""
    labels, texts = [], []
    for line in clean_lines(raw):
        for separator in ("\t", " | "):
            if separator in line:
                label, body = line.split(separator, 1)
                if body.strip():
                    labels.append(label.strip() or "text")
                    texts.append(body.strip())
                break
        else:
            labels.append("text")
            texts.append(line)
    return labels, texts


def parse_relevance(raw: str | None, n: int) -> list[float] | None:
    """Comma- or space-separated relevance grades, one per passage; empty → None (no quality metrics)."""
    cleaned = (raw or "").replace(",", " ").split()
    if not cleaned:
        return None
    try:
        grades = [float(v) for v in cleaned]
    except ValueError:
        raise InvalidInputError("Relevance labels must be numbers such as '2, 0, 1' (one per passage).") from None
    if not all(np.isfinite(grades)):
        raise InvalidInputError("Relevance labels must be finite numbers such as '2, 0, 1'.")
    if len(grades) != n:
        raise InvalidInputError(f"Give one relevance label per passage: {n} passages but {len(grades)} labels.")
    return grades


def system_lines(value: str | None) -> list[str]:
    """The Compare builder's box: one ``NAME=SPEC`` per line; blank lines and ``#`` comments are skipped."""
    lines, _ = lines_of(value, "list of systems")
    systems = [line for line in lines if not line.startswith("#")]
    if not systems:
        raise InvalidInputError("Write at least one system, one per line as NAME=SPEC (e.g. bm25=bm25).")
    limits.check_texts(systems, "system", setting=limits.MAX_SYSTEMS)
    return systems


SYSTEM_KINDS = {
    "an embedder": "embedder",
    "an embedder at a layer": "layer",
    "BM25": "bm25",
    "a reranker over a system (pipeline)": "pipeline",
    "reciprocal rank fusion (RRF)": "rrf",
    "CombSUM fusion": "combsum",
    "CombMNZ fusion": "combmnz",
}


def system_line(name, kind, model, over, number) -> str:
    """One ``NAME=SPEC`` line from the builder's row: the kind, a model, the systems it builds on, a layer or depth."""
    name = optional_text(name, "system's name").strip()
    kind = SYSTEM_KINDS[choice(kind, "The kind of system", list(SYSTEM_KINDS))]
    if not name:
        raise InvalidInputError("Give the new system a name (letters, digits, - _ .), e.g. hybrid.")
    members = [part.strip() for part in optional_text(over, "systems it builds on").split(",") if part.strip()]
    if kind == "bm25":
        spec = "bm25"
    elif kind in ("embedder", "layer"):
        spec = model_name(model, "")
        if not spec:
            raise InvalidInputError("Choose the embedder's model.")
        if kind == "layer":
            spec += f"@{whole_number(number, 'The layer', minimum=0, maximum=1000)}"
    elif kind == "pipeline":
        reranker = model_name(model, "")
        if len(members) != 1 or not reranker:
            raise InvalidInputError("A pipeline needs one first-stage system (named in 'Over') and a reranker.")
        spec = f"{members[0]}>>{reranker}@{whole_number(number, 'The depth', minimum=1, maximum=1000)}"
    else:
        if len(members) < 2:
            raise InvalidInputError("A fusion needs at least two systems in 'Over', separated by commas.")
        spec = f"{kind}({','.join(members)})"
    return f"{name}={spec}"
