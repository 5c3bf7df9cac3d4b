"""The Gradio app: ``build_demo(engine)`` lays out the tabs and wires each main button to a handler.

Handlers are thin: they read the widgets, call the :class:`~flagdemo.engine.Engine`, and hand numbers to
``figures`` and ``tables``. They live on :class:`Handlers` so tests can call them without a server. Every main
action has a stable ``api_name`` and every input a default, so each endpoint answers with no arguments. Errors
reach the user as sentences (``gr.Error`` / ``gr.Warning``); models stay in the engine's cache, never in a session.
"""

from __future__ import annotations

import functools
import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

import gradio as gr
import numpy as np
import pandas as pd

from flagdemo import datasets, evaluation, figures, limits, metrics, request_log, serving, tables, text
from flagdemo.engine import NO_MODEL, Engine, clean_lines
from flagdemo.errors import FlagDemoError, InvalidInputError
from flagdemo.fastpath import default_precision, is_approximate
from flagdemo.result_cache import ResultCache, reuse_note

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

MAX_MODEL_NAME = 1000
TEXT_BOX = "text box"
LABELLED_PASSAGES = "labelled set passages (by topic)"

try:  # ZeroGPU Spaces: spaces.GPU borrows a GPU per call; elsewhere it returns the function unchanged.
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(fn: Callable[P, R]) -> Callable[P, R]:
        return fn


def user_errors(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Show expected failures as their own sentence and unexpected ones as a generic sentence (details in the log).

    Each call also writes one request log line named after the handler (which is its api_name).
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with request_log.logged_request(fn.__name__):
                try:
                    return fn(*args, **kwargs)
                except gr.Error:
                    request_log.set_outcome("refused:Error")
                    raise
                except FlagDemoError as exc:
                    request_log.set_outcome(f"refused:{type(exc).__name__}")
                    raise gr.Error(str(exc), print_exception=False) from None
                except Exception as exc:
                    request_log.set_outcome(f"failed:{type(exc).__name__}")
                    logger.exception("unexpected failure while %s", action)
                    raise gr.Error(text.ERROR_FALLBACK.format(action=action), print_exception=False) from None

        return wrapper

    return decorate


def _download_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="flagdemo-"))


DISPLAY_DECIMALS = 4


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """Floats rounded for the screen (downloads keep every digit)."""
    return table.round(DISPLAY_DECIMALS)


def lines_of(value: str | None, what: str) -> list[str]:
    """The lines of a text box; empty and whitespace-only lines are dropped, and the user is told so."""
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"The {what} must be text, one item per line.")
    lines, dropped = limits.split_lines(value)
    if dropped:
        gr.Info(f"Skipped {dropped} empty line{'' if dropped == 1 else 's'} in the {what}.")
    return lines


def _widget_float(value, name: str) -> float | None:
    """A numeric widget's value as a float, None when left empty, or a sentence when it is not a number."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, not {str(value)[:40]!r}.") from None


def whole_number(value, name: str, *, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    """A numeric widget's value as an int (None → ``default``), or a sentence saying what was wrong with it."""
    number = _widget_float(value, name)
    if number is None:
        return default
    if not np.isfinite(number) or not number.is_integer():
        raise InvalidInputError(f"{name} must be a whole number, not {value}.")
    number = int(number)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        bounds = (
            f"between {minimum} and {maximum}"
            if minimum is not None and maximum is not None
            else (f"at least {minimum}" if minimum is not None else f"at most {maximum}")
        )
        raise InvalidInputError(f"{name} must be {bounds}, not {number}.")
    return number


def real_number(value, name: str, *, default: float, minimum: float = 0.0, maximum: float | None = None) -> float:
    """A numeric widget's value as a finite float within bounds (None → ``default``)."""
    number = _widget_float(value, name)
    if number is None:
        return default
    if not np.isfinite(number) or number < minimum or (maximum is not None and number > maximum):
        upper = f" and at most {maximum:g}" if maximum is not None else ""
        raise InvalidInputError(f"{name} must be a number of at least {minimum:g}{upper}, not {value}.")
    return number


def model_name(value, default: str) -> str:
    """A model picker's value: empty → the default; anything else must be a name of sane length."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if not isinstance(value, str):
        raise InvalidInputError("The model must be a name from the list, a hub id or a folder.")
    if len(value) > MAX_MODEL_NAME:
        raise InvalidInputError(f"A model name has at most {MAX_MODEL_NAME} characters.")
    return value.strip()


PRECISION_CHOICES = {
    "fp32 (exact)": "fp32",
    "bf16 (approximate)": "bf16",
    "int8 (approximate, fastest on CPU)": "int8",
}


def precision_label(precision: str) -> str:
    return next(label for label, key in PRECISION_CHOICES.items() if key == precision)


def precision_choice(value) -> str:
    """The Precision dropdown's value (a label, or fp32 / bf16 / int8) as a precision; empty → FLAGDEMO_PRECISION."""
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


def method_model(value, default: str) -> str:
    """A reranking method's model picker: None → the engine's default; '' or '(none)' leave the method out."""
    if value is None:
        return default
    if isinstance(value, str) and value.strip() in ("", NO_MODEL):
        return NO_MODEL
    return model_name(value, default)


def optional_text(value, what: str) -> str:
    """A single-line text widget (instruction, query): stripped, bounded by FLAGDEMO_MAX_CHARS, '' when empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"The {what} must be text.")
    limits.check_text_lengths([value], what)
    return value.strip()


def read_upload(path: str | None, column: str = "text", *, limit: limits.Setting | None = None) -> list[str]:
    """Texts from an uploaded .txt (one per line) or .csv (the named column, else the first one).

    Files above FLAGDEMO_MAX_UPLOAD_MB are refused before reading; beyond FLAGDEMO_MAX_UPLOAD_ROWS (or ``limit``,
    the calling tab's own limit) only the first texts are kept, with a warning.
    """
    if not path:
        return []
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError("The upload is not a readable file: upload a .txt or .csv file again.")
    limits.check_upload_size(file)
    if file.suffix.lower() == ".csv":
        try:
            frame = pd.read_csv(file, dtype=str, keep_default_na=False)
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"The uploaded CSV could not be read: {str(exc)[:200]}.") from None
        if frame.empty:
            raise InvalidInputError("The uploaded CSV has no rows.")
        name = column if column in frame.columns else frame.columns[0]
        values = frame[name].astype(str).tolist()
    else:
        try:
            values = file.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise InvalidInputError("The uploaded file is not UTF-8 text: upload a .txt or .csv file.") from None
    lines, dropped = limits.split_lines(values)
    if dropped:
        gr.Info(f"Skipped {dropped} empty row{'' if dropped == 1 else 's'} of the upload.")
    settings = [limits.MAX_UPLOAD_ROWS] + ([limit] if limit is not None else [])
    bound, setting = min(((int(setting.value()), setting) for setting in settings), key=lambda pair: pair[0])
    if len(lines) > bound:
        gr.Warning(f"The upload has {len(lines):,} texts; only the first {bound:,} are used ({setting.env}).")
    return lines[:bound]


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


def ranking_metrics(scores: np.ndarray, grades: Sequence[float], k: int) -> dict[str, float]:
    """nDCG@k and MRR@k of one query's ranking (passages sorted by score) against graded labels (flagdemo.metrics)."""
    ids = [f"p{i + 1}" for i in range(len(grades))]
    ranking = metrics.ranking_from_scores(dict(zip(ids, map(float, scores), strict=True)))
    judgements = dict(zip(ids, grades, strict=True))
    return {
        f"nDCG@{k}": metrics.ndcg_at_k(ranking, judgements, k),
        f"MRR@{k}": metrics.reciprocal_rank_at_k(ranking, judgements, k),
    }


def _layer_list(valid: Sequence[int], start: float | None, end: float | None, step: float | None) -> list[int]:
    """Layers from ``start`` to ``end`` every ``step``; start ≤ 0 = the first transformer layer, end ≤ 0 = the last."""
    valid = sorted(int(v) for v in valid)
    low = int(start) if start is not None and int(start) > 0 else min((v for v in valid if v >= 1), default=valid[0])
    high = int(end) if end is not None and int(end) > 0 else valid[-1]
    stride = max(1, int(step or 1))
    if low > high:
        raise InvalidInputError(f"The first layer ({low}) is after the last layer ({high}).")
    outside = [v for v in (low, high) if v not in valid]
    if outside:
        raise InvalidInputError(
            f"Layer {outside[0]} is not available: this model has layers {valid[0]} to {valid[-1]}."
        )
    chosen = [v for v in valid if low <= v <= high and (v - low) % stride == 0]
    return chosen if chosen[-1] == high else [*chosen, high]


class Handlers:
    """What each button does. Inputs are the widgets' values, outputs the components' values."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.results = ResultCache.from_env()

    def _once(self, operation: str, models: Sequence[str], inputs: object, compute: Callable[[], R], **options) -> R:
        """``compute()`` once for identical requests (see flagdemo.result_cache); the devices are part of the key."""
        own = sorted(self.engine.own_models())
        inputs = (self.engine.devices, inputs)
        return self.results.once(operation, models=models, inputs=inputs, compute=compute, own_models=own, **options)

    # ---- Encode -------------------------------------------------------------------------------------------

    def instruction_for(self, model: str, mode: str) -> str:
        if not isinstance(model, str) or not isinstance(mode, str):
            return ""
        return self.engine.default_instruction(model, mode)

    @user_errors("encoding the texts")
    def encode(  # noqa: PLR0917 (gradio passes widget values positionally)
        self,
        texts: str = text.ENCODE_TEXTS,
        upload: str | None = None,
        column: str = "text",
        model: str | None = None,
        mode: str = "passage",
        instruction: str = "",
        max_length: float = 512,
        normalize: bool = True,
        layer: float = -1,
        token_row: float = 1,
        precision: str | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
    ):
        model = model_name(model, self.engine.embedder)
        precision = precision_choice(precision)
        column = column if isinstance(column, str) else "text"
        lines = read_upload(upload, column, limit=limits.MAX_TEXTS) or lines_of(texts, "texts")
        limits.check_texts(lines)
        instruction = optional_text(instruction, "instruction")
        wanted_layer = whole_number(layer, "The layer", default=-1, minimum=-1)
        max_tokens = whole_number(max_length, "The maximum length", default=0) or None
        token_row = whole_number(token_row, "The text number", default=1)
        request_log.note(models=[model], inputs=lines)
        progress(0.1, desc=f"Loading {model} and encoding {len(lines)} texts")
        settings = {
            "mode": mode,
            "instruction": (instruction or None) if mode != "raw" else None,
            "max_length": max_tokens,
            "normalize": bool(normalize),
            "all_layers": wanted_layer >= 0,
            "precision": precision,
        }
        result = self._once(
            "encode", [model], (lines, settings), lambda: self.engine.encode(lines, model=model, **settings)
        )
        vectors = self.engine.pick_layer(result, wanted_layer)
        table = tables.encode_table(lines, vectors, token_counts=result.token_counts, truncated=result.truncated)
        summary = tables.embedding_summary(vectors)
        layer_name = "final layer" if wanted_layer < 0 else f"layer {wanted_layer}"
        figure = figures.vector_heatmap(vectors, lines, title=f"{model}: {layer_name}, first dimensions")
        row = min(max(token_row, 1), len(lines)) - 1
        tokens = " ".join(f"`{token}`" for token in result.tokens[row])
        token_md = (
            f"**Text {row + 1} as the model reads it** (after the instruction, {result.token_counts[row]} tokens"
            f"{', truncated' if result.truncated[row] else ''}):\n\n{tokens}"
        )
        timings = result.timings
        timing_md = (
            f"**{model}** ({mode} mode, {layer_name}, dimension {vectors.shape[1]}): loaded in "
            f"{timings.load_seconds:.2f} s, encoded {timings.n_items} texts / {timings.n_tokens} tokens in "
            f"{timings.run_seconds:.3f} s ({timings.tokens_per_second:.0f} tokens/s)."
        )
        if is_approximate(precision):
            timing_md += " " + precision_note(precision)
        timing_md = " ".join(filter(None, [timing_md, reuse_note()]))
        if any(result.truncated):
            cut = f"at {max_tokens} tokens" if max_tokens else "at the model's maximum length"
            gr.Warning(f"{sum(result.truncated)} text(s) were longer than the model reads and were cut {cut}.")
        folder = _download_dir()
        np.save(folder / "embeddings.npy", vectors)
        table.to_csv(folder / "embeddings.csv", index=False)
        (folder / "embeddings.json").write_text(
            json.dumps({"model": model, "mode": mode, "texts": lines, "embeddings": vectors.tolist()})
        )
        files = [str(folder / name) for name in ("embeddings.npy", "embeddings.csv", "embeddings.json")]
        return shown(table), shown(summary), figure, token_md, timing_md, files

    # ---- Similarity ---------------------------------------------------------------------------------------

    @user_errors("computing similarities")
    def similarity(  # noqa: PLR0917 (gradio passes widget values positionally)
        self,
        queries: str = text.SIMILARITY_QUERIES,
        passages: str = text.SIMILARITY_PASSAGES,
        all_pairs: bool = False,
        model: str | None = None,
        use_instruction: bool = True,
        top_k: float = 3,
        score_mode: str = "combined",
        w_dense: float = 1.0,
        w_sparse: float = 0.3,
        w_colbert: float = 1.0,
        pair_query: float = 1,
        pair_passage: float = 1,
        precision: str | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
    ):
        model = model_name(model, self.engine.embedder)
        precision = precision_choice(precision)
        rows = lines_of(queries, "queries")
        cols = rows if all_pairs else lines_of(passages, "passages")
        limits.check_texts(rows, "query", "queries")
        limits.check_texts(cols, "passage")
        top_k = whole_number(top_k, "Top-k", default=3)
        pair_query = whole_number(pair_query, "The pair's query number", default=1)
        pair_passage = whole_number(pair_passage, "The pair's passage number", default=1)
        w_dense, w_sparse, w_colbert = (
            real_number(w, f"The {name} weight", default=d)
            for w, name, d in ((w_dense, "dense", 1.0), (w_sparse, "sparse", 0.3), (w_colbert, "ColBERT", 1.0))
        )
        request_log.note(models=[model], inputs=rows + ([] if all_pairs else cols))
        progress(0.1, desc=f"Loading {model} and encoding")
        use_instruction = bool(use_instruction) and not all_pairs
        outcome = self._once(
            "similarity",
            [model],
            (rows, cols, use_instruction, precision),
            lambda: self.engine.similarity(
                rows, cols, model=model, use_instruction=use_instruction, precision=precision
            ),
        )
        notes = [precision_note(precision)] if is_approximate(precision) else []
        notes += filter(None, [reuse_note()])
        if outcome.is_m3:
            matrices = {
                "dense": outcome.dense,
                "sparse": outcome.sparse,
                "colbert": outcome.colbert,
                "combined": None,
            }
            scores = matrices.get(score_mode)
            if scores is None:
                scores = outcome.combined((w_dense, w_sparse, w_colbert))
                score_mode = "combined"
                notes.append(
                    f"Combined = ({w_dense:g}·dense + {w_sparse:g}·sparse + {w_colbert:g}·ColBERT) / "
                    f"{w_dense + w_sparse + w_colbert:g}, as FlagEmbedding's compute_score."
                )
        else:
            scores = outcome.dense
            if score_mode != "dense":
                notes.append(f"{model} has only dense vectors: sparse / ColBERT / combined need a BGE-M3 model.")
            score_mode = "dense"
        title = f"{model}: {score_mode} scores" + (" (all pairs)" if all_pairs else "")
        heatmap = figures.similarity_heatmap(scores, rows, cols, title=title)
        top = tables.top_k_table(scores, rows, cols, k=max(1, int(top_k or 1)))
        qi = min(max(int(pair_query or 1), 1), len(rows)) - 1
        pi = min(max(int(pair_passage or 1), 1), len(cols)) - 1
        if outcome.is_m3:
            q_res, p_res = outcome.query_result, outcome.passage_result
            if all_pairs:
                p_res = q_res
            lexical = figures.lexical_weights_bar(
                q_res.lexical_weights[qi], p_res.lexical_weights[pi], title=f"Shared tokens: Q{qi + 1} × P{pi + 1}"
            )
            alignment = figures.token_alignment_heatmap(
                q_res.colbert_vecs[qi] @ p_res.colbert_vecs[pi].T,
                _colbert_tokens(q_res.tokens[qi], len(q_res.colbert_vecs[qi])),
                _colbert_tokens(p_res.tokens[pi], len(p_res.colbert_vecs[pi])),
            )
        else:
            lexical = figures.message_figure("Lexical weights come with BGE-M3 models.")
            alignment = figures.message_figure("The ColBERT token alignment comes with BGE-M3 models.")
        notes.append("Dense scores are inner products of normalised embeddings, i.e. cosine similarities.")
        return heatmap, shown(top), lexical, alignment, " ".join(notes)

    # ---- Rerank -------------------------------------------------------------------------------------------

    @user_errors("reranking")
    def rerank(  # noqa: PLR0917 (gradio passes widget values positionally)
        self,
        query: str = text.RERANK_QUERY,
        passages: str = text.RERANK_PASSAGES,
        bi_encoder: str | None = None,
        cross_encoder: str | None = None,
        llm_reranker: str | None = None,
        layerwise_reranker: str | None = None,
        cutoff_layer: float | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
    ):
        engine = self.engine
        query = optional_text(query, "query")
        lines = lines_of(passages, "passages")
        limits.check_texts(lines, "passage", setting=limits.MAX_PASSAGES)
        chosen = {
            "bi_encoder": method_model(bi_encoder, engine.embedder),
            "cross_encoder": method_model(cross_encoder, engine.cross_encoder),
            "llm_reranker": method_model(llm_reranker, engine.llm_reranker),
            "layerwise_reranker": method_model(layerwise_reranker, engine.layerwise_reranker),
        }
        cutoff = whole_number(cutoff_layer, "The cutoff layer", default=engine.cutoff_layer)
        request_log.note(models=[m for m in chosen.values() if m != NO_MODEL], inputs=[query, *lines])
        outcomes = self._once(
            "rerank",
            list(chosen.values()),
            (query, lines, chosen, cutoff),
            lambda: engine.rerank_methods(
                query,
                lines,
                **chosen,
                cutoff_layer=None if cutoff <= 0 else cutoff,
                progress=lambda fraction, desc: progress(fraction, desc=desc),
            ),
            keep=lambda outcomes: not any(o.error for o in outcomes),  # a failed method is retried next time
        )
        ran = [o for o in outcomes if o.error == ""]
        failed = [o for o in outcomes if o.error]
        raw = {o.method: o.scores for o in ran}
        normalized = {o.method: o.normalized for o in ran}
        table = tables.rerank_table(lines, raw, normalized)
        ranks = {o.method: tables.ranks_from_scores(o.scores) for o in ran}
        chart = (
            figures.rank_change_chart(ranks, lines)
            if ran
            else figures.message_figure("No method could run: see the messages.")
        )
        tau = tables.kendall_tau_table(raw) if ran else pd.DataFrame(columns=["method"])
        timings = tables.timing_table(
            [
                {
                    "method": o.method,
                    "model": o.model,
                    "load s": o.load_seconds,
                    "run s": o.run_seconds,
                    "items": len(lines) if not o.error else 0,
                    "tokens/s": (o.n_tokens / o.run_seconds) if o.run_seconds > 0 and o.n_tokens else None,
                    "note": o.error or "ok",
                }
                for o in outcomes
            ]
        )
        messages = "\n".join(f"- **{o.method}** ({o.model}) could not run: {o.error}" for o in failed)
        for o in failed:
            gr.Warning(f"{o.method} could not run: {o.error}")
        if not ran:
            raise gr.Error("None of the chosen methods could run: " + " ".join(o.error for o in failed))
        summary = messages or "All chosen methods ran."
        return shown(table), chart, shown(tau), shown(timings), " ".join(filter(None, [summary, reuse_note()]))

    # ---- Layer sweep --------------------------------------------------------------------------------------

    @user_errors("sweeping the layers")
    def layer_sweep(  # noqa: PLR0917 (gradio passes widget values positionally)
        self,
        model: str | None = None,
        query: str = text.RERANK_QUERY,
        passages: str = text.RERANK_PASSAGES,
        relevance: str = text.RERANK_RELEVANCE,
        first_layer: float = 0,
        last_layer: float = 0,
        step: float = 1,
        k: float = 5,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
    ):
        engine = self.engine
        model = model_name(model, engine.llm_reranker)
        query = optional_text(query, "query")
        lines = lines_of(passages, "passages")
        limits.check_texts(lines, "passage", setting=limits.MAX_PASSAGES)
        grades = parse_relevance(optional_text(relevance, "relevance labels"), len(lines))
        first_layer = whole_number(first_layer, "The first layer", default=0)
        last_layer = whole_number(last_layer, "The last layer", default=0)
        step = whole_number(step, "The layer step", default=1)
        k = whole_number(k, "k", default=5)
        request_log.note(models=[model], inputs=[query, *lines])
        progress(0.1, desc=f"Loading {model}")
        # layer counts come from the result cache too, so a repeated sweep never waits for a model another job runs
        if engine.model_kind(model) == "embedder":
            valid = list(range(1, self._once("num_layers", [model], None, lambda: engine.num_layers(model)) + 1))
            layers = _layer_list(valid, first_layer, last_layer, step)
            progress(0.4, desc="One pass through every layer")
            sweep = self._once(
                "embedder_layer_sweep",
                [model],
                (query, lines, layers),
                lambda: engine.embedder_layer_sweep(model, query, lines, layers),
            )
            seconds = None
            what = "cosine of query and passage embeddings at each layer"
        else:
            valid = self._once("valid_layers", [model], None, lambda: engine.valid_layers(model))
            layers = _layer_list(valid, first_layer, last_layer, step)
            progress(0.4, desc="One forward pass, reading every chosen layer")
            sweep = self._once(
                "reranker_layer_sweep",
                [model],
                (query, lines, layers),
                lambda: engine.reranker_layer_sweep(model, query, lines, layers),
            )
            seconds = list(sweep.cumulative_seconds) or None
            what = {
                "native-head": "the layer-wise head at each layer",
                "logit-lens": "the 'Yes' logit read at each layer through the final norm and LM head (logit lens)",
            }.get(sweep.method, sweep.method)
        scores = np.asarray(sweep.scores, dtype=float)
        metrics: dict[str, list[float]] = {}
        cutoff = max(1, int(k or 1))
        if grades is not None:
            for row in scores:
                for name, value in ranking_metrics(row, grades, cutoff).items():
                    metrics.setdefault(name, []).append(value)
        figure = figures.layer_sweep_figure(
            sweep.layers, scores, lines, metrics=metrics or None, seconds=seconds, title=f"{model}: {what}"
        )
        ranking = tables.layer_ranking_table(sweep.layers, scores, lines)
        metric_table = tables.layer_metrics_table(sweep.layers, metrics, seconds)
        note = f"{len(sweep.layers)} layers from one pass in {sweep.seconds:.3f} s. Scores are {what}."
        if metrics:
            best = int(np.argmax(metrics[f"nDCG@{cutoff}"]))
            best_value = metrics[f"nDCG@{cutoff}"][best]
            note += f" Best nDCG@{cutoff} {best_value:.3f}, first reached at layer {sweep.layers[best]}."
        else:
            note += " Add relevance labels (one grade per passage) to see nDCG and MRR per layer."
        return figure, ranking, shown(metric_table), " ".join(filter(None, [note, reuse_note()]))

    # ---- Projection ---------------------------------------------------------------------------------------

    @user_errors("projecting the embeddings")
    def project(  # noqa: PLR0917 (gradio passes widget values positionally)
        self,
        corpus: str = text.PROJECTION_CORPUS,
        upload: str | None = None,
        sample: str = TEXT_BOX,
        model: str | None = None,
        layer: float = -1,
        method: str = "umap",
        dims: float = 2,
        n_neighbors: float = 15,
        min_dist: float = 0.1,
        perplexity: float = 30,
        seed: float = 42,
        colour_by: str = "label",
        queries: str = text.PROJECTION_QUERIES,
        k: float = 3,
        model_b: str | None = None,
        layer_b: float = -1,
        relevance_query: str = "",
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
    ):
        from flagdemo import projection

        engine = self.engine
        model = model_name(model, engine.embedder)
        model_b = method_model(model_b, NO_MODEL)
        sample = sample if isinstance(sample, str) else TEXT_BOX
        relevance_query = optional_text(relevance_query, "labelled query")
        colour_by = colour_by if isinstance(colour_by, str) else "label"
        method = method if isinstance(method, str) else "umap"
        uploaded = read_upload(upload, limit=limits.MAX_POINTS)
        if uploaded:
            labels, texts = ["upload"] * len(uploaded), uploaded
        elif sample and sample != TEXT_BOX:
            labels, texts = sample_corpus(sample)
        else:
            labels, texts = parse_labelled_lines(lines_of(corpus, "corpus"))
        query_lines = lines_of(queries, "queries")
        limits.check_text_lengths(texts)
        limits.check_text_lengths(query_lines, "query")
        limits.check_count(len(texts) + len(query_lines), limits.MAX_POINTS, "points (texts and queries)")
        wanted_layer = whole_number(layer, "The layer", default=-1, minimum=-1)
        wanted_b = whole_number(layer_b, "The second map's layer", default=-1, minimum=-1)
        k = whole_number(k, "Neighbours per query", default=3)
        params = {
            "method": method,
            "dims": whole_number(dims, "The number of dimensions", default=2),
            "n_neighbors": whole_number(n_neighbors, "UMAP n_neighbors", default=15, minimum=2, maximum=10_000),
            "min_dist": real_number(min_dist, "UMAP min_dist", default=0.1, maximum=1.0),
            "perplexity": real_number(perplexity, "t-SNE perplexity", default=30.0, maximum=10_000.0) or 30.0,
            "seed": whole_number(seed, "The seed", default=42, minimum=0, maximum=2**32 - 1),
        }
        request_log.note(models=[model, model_b if _chosen_model(model_b) else None], inputs=[*texts, *query_lines])
        if not texts:
            raise InvalidInputError(
                "There is nothing to project: write one text per line (optionally label<TAB>text)."
            )
        if colour_by == "relevance":
            if uploaded or sample != LABELLED_PASSAGES:
                raise InvalidInputError(
                    f"Colouring by relevance needs the bundled sample '{LABELLED_PASSAGES}' and a labelled query."
                )
            query_text, labels = relevance_colours(relevance_query)
            query_lines = [query_text, *query_lines]
            colour_by = "label"

        def embed_and_project():
            progress(0.1, desc=f"Encoding {len(texts)} texts with {model}")
            vectors = engine.embeddings(texts, model=model, mode="passage", layer=wanted_layer)
            query_vectors = None
            if query_lines:
                query_vectors = engine.embeddings(query_lines, model=model, mode="query", layer=wanted_layer)
            progress(0.5, desc=f"Projecting with {method.upper()}")
            return vectors, query_vectors, projection.project(vectors, queries=query_vectors, **params)

        vectors, query_vectors, result = self._once(
            "project", [model], (texts, query_lines, wanted_layer, params), embed_and_project
        )
        groups = _colour_groups(colour_by, labels, vectors)
        ids = [f"p{i + 1}" for i in range(len(texts))]
        neighbours, edges = pd.DataFrame(columns=["query", "rank", "id", "text", "cosine"]), []
        if query_vectors is not None:
            cosines = _cosine(query_vectors, vectors)
            neighbours, edges = tables.neighbours_table(cosines, query_lines, ids, texts, k=max(1, k))
        layer_name = "final layer" if wanted_layer < 0 else f"layer {wanted_layer}"
        title = f"{model} ({layer_name}) · {result.method.upper()} {params['dims']}D"
        main = figures.projection_scatter(
            result.coords,
            texts,
            groups=groups,
            ids=ids,
            query_coords=result.query_coords,
            query_texts=query_lines,
            edges=edges,
            title=title,
        )
        notes = [result.note] if result.note else []
        side = figures.message_figure("Choose a second model or layer to see two maps side by side.")
        if _chosen_model(model_b) or wanted_b >= 0:
            name_b = model_b if _chosen_model(model_b) else model
            progress(0.75, desc=f"Second map: {name_b}")

            def second_map():
                vectors_b = engine.embeddings(texts, model=name_b, mode="passage", layer=wanted_b)
                flat = {**params, "dims": 2}
                return projection.project(vectors_b, **flat), None if params["dims"] == 2 else projection.project(
                    vectors, **flat
                )

            projection_b, flat_a = self._once(
                "project_second_map", [model, name_b], (texts, wanted_layer, wanted_b, params), second_map
            )
            projection_a = flat_a or result
            layer_b_name = "final layer" if wanted_b < 0 else f"layer {wanted_b}"
            side = figures.side_by_side_projection(
                projection_a.coords,
                projection_b.coords,
                texts,
                groups=groups,
                ids=ids,
                titles=(f"A: {model} ({layer_name})", f"B: {name_b} ({layer_b_name})"),
                highlight=neighbours["id"].head(max(1, k)).tolist() if len(neighbours) else (),
            )
            if projection_b.note:
                notes.append(f"Map B: {projection_b.note}")
        coords = tables.projection_table(ids, texts, groups, result.coords)
        if result.query_coords is not None:
            query_table = tables.projection_table(
                [f"Q{i + 1}" for i in range(len(query_lines))],
                query_lines,
                ["query"] * len(query_lines),
                result.query_coords,
                kind="query",
            )
            coords = pd.concat([coords, query_table], ignore_index=True)
        csv_path = _download_dir() / "projection.csv"
        coords.to_csv(csv_path, index=False)
        for note in notes:
            gr.Info(note)
        summary = f"{len(texts)} texts, {len(query_lines)} queries; {result.method.upper()} with {result.params}."
        return main, side, shown(neighbours), str(csv_path), " ".join(filter(None, [summary, *notes, reuse_note()]))

    # ---- Compare ------------------------------------------------------------------------------------------

    @user_errors("comparing the models")
    def compare(  # noqa: PLR0917 (gradio passes widget values positionally)
        self,
        model_a: str | None = None,
        layer_a: float = -1,
        model_b: str | None = None,
        layer_b: float = 3,
        k: float = 10,
        max_queries: float = 0,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's way to ask for a progress bar)
    ):
        engine = self.engine
        model_a, model_b = model_name(model_a, engine.embedder), model_name(model_b, engine.embedder)
        layer_a = whole_number(layer_a, "A's layer", default=-1, minimum=-1)
        layer_b = whole_number(layer_b, "B's layer", default=-1, minimum=-1)
        cutoff = max(1, whole_number(k, "k", default=10))
        max_queries = whole_number(max_queries, "The number of queries", default=0)
        labelled = datasets.load_retrieval_set()
        if max_queries > 0:
            labelled = labelled.subset(max_queries=max_queries)
        request_log.note(models=[model_a, model_b])
        names = (_run_name(model_a, layer_a), _run_name(model_b, layer_b))
        if names[0] == names[1]:
            gr.Warning("A and B are the same model at the same layer: every difference will be 0.")
        progress(0.05, desc=f"Encoding {len(labelled.queries)} queries and {len(labelled.passages)} passages")
        specs = [(model_a, int(layer_a), names[0]), (model_b, int(layer_b), names[1])]
        run_a, run_b = self._once(
            "compare",
            [model_a, model_b],
            (specs, max_queries, cutoff),
            lambda: engine.retrieval_runs(specs, labelled, cutoff),
        )
        comparison = evaluation.compare_runs(run_a, run_b, cutoff, names=names)
        per_query = comparison.per_query
        metric = f"nDCG@{cutoff}"
        figure = figures.paired_scatter(
            per_query[f"{metric} A"],
            per_query[f"{metric} B"],
            per_query["query"].tolist(),
            groups=per_query["topic"].tolist(),
            names=comparison.names,
            metric=metric,
        )
        encode_time = (
            f"{run_a.seconds:.1f} s, once for both layers"
            if model_a == model_b
            else f"{run_a.seconds:.1f} s (A) and {run_b.seconds:.1f} s (B)"
        )
        csv_path = _download_dir() / "comparison.csv"
        per_query.to_csv(csv_path, index=False)
        note = (
            f"{len(per_query)} labelled queries, {len(labelled.passages)} passages. A = {comparison.names[0]}, "
            f"B = {comparison.names[1]}. Encoding took {encode_time} (a repeated comparison reuses the embeddings "
            f"while the model stays loaded). Mean Jaccard overlap of the two top-{cutoff} "
            f"lists: {comparison.mean_jaccard:.3f}."
        )
        note = " ".join(filter(None, [note, reuse_note()]))
        return (
            shown(comparison.summary),
            figure,
            shown(comparison.disagreements),
            shown(per_query),
            str(csv_path),
            note,
        )

    @staticmethod
    @user_errors("filling in a labelled query")
    def sweep_sample(query_id: str):
        """Fill the layer-sweep inputs from one labelled query: its judged passages and their grades."""
        if not query_id:
            return gr.skip(), gr.skip(), gr.skip()
        labelled = datasets.load_retrieval_set()
        if not isinstance(query_id, str) or query_id not in labelled.query_texts:
            raise InvalidInputError(f"Unknown labelled query {str(query_id)[:80]!r}; ids look like 'q-cook-01'.")
        texts = labelled.passage_texts
        judged = labelled.qrels[labelled.qrels["query_id"] == query_id].sort_values("passage_id")
        return (
            labelled.query_texts[query_id],
            "\n".join(texts[pid] for pid in judged["passage_id"]),
            ", ".join(str(int(r)) for r in judged["relevance"]),
        )

    # ---- Models -------------------------------------------------------------------------------------------

    @user_errors("listing the models")
    def models(self):
        return self._models_view()

    def _models_view(self):
        catalog_table = pd.DataFrame(self.engine.catalog_rows())
        cache = pd.DataFrame(self.engine.cache_rows(), columns=["model", "MB", "device", "dtype", "load s", "key"])
        return catalog_table, shown(cache), gr.Dropdown(choices=["all", *cache["key"].tolist()], value="all")

    @user_errors("unloading a model")
    def unload(self, key: str = "all"):
        if limits.public_mode():
            raise InvalidInputError("This public demo manages its loaded models itself: unloading is turned off.")
        key = optional_text(key, "model to unload") or "all"
        dropped = self.engine.unload(key)
        _, cache, dropdown = self._models_view()
        message = f"Unloaded {key}." if dropped else f"Nothing to unload for {key!r}: the cache did not hold it."
        return cache, dropdown, message


def sample_choices() -> list[str]:
    """Corpus sources for the projection tab: the text box, each bundled demo set, the labelled passages."""
    return [TEXT_BOX, *(f"demo: {name}" for name in datasets.demo_sentence_sets()), LABELLED_PASSAGES]


def sample_corpus(choice: str) -> tuple[list[str], list[str]]:
    """(labels, texts) of a bundled sample: demo sentences coloured by label, labelled passages by topic."""
    if choice == LABELLED_PASSAGES:
        passages = datasets.load_retrieval_set().passages
        return passages["topic"].astype(str).tolist(), passages["text"].astype(str).tolist()
    if choice.startswith("demo: "):
        frame = datasets.load_demo_sentences(choice.removeprefix("demo: "))
        return frame["label"].astype(str).tolist(), frame["text"].astype(str).tolist()
    raise InvalidInputError(f"Unknown sample {choice!r}: choose one of {', '.join(sample_choices())}.")


RELEVANCE_NAMES = {2: "relevant (2)", 1: "partly relevant (1)", 0: "hard negative (0)"}


def relevance_colours(query_id: str) -> tuple[str, list[str]]:
    """A labelled query's text and, for every labelled-set passage, its judgement for that query as a colour."""
    labelled = datasets.load_retrieval_set()
    query_id = query_id or labelled.queries["id"].iloc[0]
    if query_id not in labelled.query_texts:
        raise InvalidInputError(f"Unknown labelled query {query_id!r}; ids look like 'q-cook-01'.")
    judged = labelled.judgements[query_id]
    colours = [
        RELEVANCE_NAMES.get(judged[pid], f"relevance {judged[pid]}") if pid in judged else "not judged"
        for pid in labelled.passages["id"]
    ]
    return labelled.query_texts[query_id], colours


def _run_name(model: str, layer: float | None) -> str:
    short = Path(model).name if ("/" in model or "\\" in model) else model
    return f"{short} @ final layer" if layer is None or int(layer) < 0 else f"{short} @ layer {int(layer)}"


def _chosen_model(name: str | None) -> bool:
    return bool(name) and name != NO_MODEL


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)
    b = b / np.clip(np.linalg.norm(b, axis=1, keepdims=True), 1e-12, None)
    return a @ b.T


def _colour_groups(colour_by: str, labels: list[str], vectors: np.ndarray) -> list[str]:
    """Colours: the given labels, k-means clusters (k = number of labels, at least 2), or one colour."""
    if colour_by == "cluster" and len(vectors) >= 2:
        from sklearn.cluster import KMeans

        k = min(len(vectors), max(2, len(set(labels))))
        clusters = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors)
        return [f"cluster {c + 1}" for c in clusters]
    if colour_by == "none":
        return ["text"] * len(labels)
    return labels


def _colbert_tokens(tokens: list[str], n_vectors: int) -> list[str]:
    """ColBERT drops the first (CLS) position: the tokens that match its vectors."""
    kept = tokens[1 : 1 + n_vectors]
    return kept + [f"[{i}]" for i in range(len(kept), n_vectors)]


def _examples_note() -> str:
    return "Prefilled with an offline example: press the button to run it."


def build_demo(engine: Engine | None = None) -> gr.Blocks:
    """The whole app. Pass an ``Engine`` to choose models (tests pass tiny ones); default: the offline defaults."""
    engine = engine or Engine()
    handlers = Handlers(engine)
    embedders = engine.embedder_choices()
    rerankers = engine.reranker_choices()

    with gr.Blocks(title="flagdemo", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(text.TITLE)
        gr.Markdown(text.INTRO)
        with gr.Tabs():
            with gr.Tab("Encode", id="encode"):
                gr.Markdown(text.tab_intro("Encode"))
                with gr.Row():
                    with gr.Column(scale=2):
                        enc_texts = gr.Textbox(text.ENCODE_TEXTS, lines=6, label="Texts (one per line)")
                        with gr.Row():
                            enc_upload = gr.File(label="…or upload .txt / .csv", file_types=[".txt", ".csv"])
                            enc_column = gr.Textbox("text", label="CSV column")
                    with gr.Column(scale=1):
                        enc_model = _model_box(embedders, engine.embedder, "Embedder", "encode-model")
                        enc_mode = gr.Radio(["query", "passage", "raw"], value="passage", label="Mode")
                        enc_instruction = gr.Textbox(
                            engine.default_instruction(engine.embedder, "passage"),
                            label="Instruction (prepended in query/passage mode; editable; empty = the model's own)",
                        )
                        with gr.Row():
                            enc_max_length = gr.Number(512, label="Max length (tokens)", precision=0)
                            enc_layer = gr.Number(-1, label="Layer (-1 = last, 0 = embeddings)", precision=0)
                        with gr.Row():
                            enc_normalize = gr.Checkbox(True, label="Normalise")
                            enc_token_row = gr.Number(1, label="Show tokens of text #", precision=0)
                        enc_precision = _precision_box("encode-precision")
                enc_button = gr.Button("Encode", variant="primary", elem_id="encode-run")
                enc_timing = gr.Markdown(_examples_note(), elem_id="encode-timing")
                enc_table = gr.DataFrame(label="Embeddings", elem_id="encode-table", wrap=True)
                enc_plot = gr.Plot(label="Vectors", elem_id="encode-plot")
                with gr.Row():
                    enc_summary = gr.DataFrame(label="Summary", elem_id="encode-summary")
                    enc_tokens = gr.Markdown(elem_id="encode-tokens")
                enc_files = gr.File(label="Download", file_count="multiple", elem_id="encode-files")
                for trigger in (enc_model.change, enc_mode.change):
                    trigger(
                        handlers.instruction_for,
                        [enc_model, enc_mode],
                        enc_instruction,
                        api_visibility="private",
                        queue=False,
                    )
                encode_event = {
                    "fn": gpu(handlers.encode),
                    "inputs": [
                        enc_texts,
                        enc_upload,
                        enc_column,
                        enc_model,
                        enc_mode,
                        enc_instruction,
                        enc_max_length,
                        enc_normalize,
                        enc_layer,
                        enc_token_row,
                        enc_precision,
                    ],
                    "outputs": [enc_table, enc_summary, enc_plot, enc_tokens, enc_timing, enc_files],
                }
                enc_button.click(**encode_event, api_name="encode", **serving.event_kwargs("encode"))
                demo.load(**encode_event, api_visibility="private", **serving.event_kwargs("encode"))

            with gr.Tab("Similarity", id="similarity"):
                gr.Markdown(text.tab_intro("Similarity"))
                with gr.Row():
                    sim_queries = gr.Textbox(text.SIMILARITY_QUERIES, lines=4, label="Queries (one per line)")
                    sim_passages = gr.Textbox(text.SIMILARITY_PASSAGES, lines=6, label="Passages (one per line)")
                with gr.Row():
                    sim_model = _model_box(embedders, engine.embedder, "Embedder", "similarity-model")
                    sim_all_pairs = gr.Checkbox(False, label="All pairs of the first list")
                    sim_instruction = gr.Checkbox(True, label="Use the query instruction")
                    sim_top_k = gr.Number(3, label="Top-k", precision=0)
                    sim_precision = _precision_box("similarity-precision")
                with gr.Accordion("BGE-M3: dense / sparse / ColBERT", open=False):
                    with gr.Row():
                        sim_mode = gr.Radio(
                            ["dense", "sparse", "colbert", "combined"], value="combined", label="Score"
                        )
                        sim_w_dense = gr.Slider(0, 1, 1.0, step=0.05, label="dense weight")
                        sim_w_sparse = gr.Slider(0, 1, 0.3, step=0.05, label="sparse weight")
                        sim_w_colbert = gr.Slider(0, 1, 1.0, step=0.05, label="ColBERT weight")
                    with gr.Row():
                        sim_pair_q = gr.Number(1, label="Pair: query #", precision=0)
                        sim_pair_p = gr.Number(1, label="Pair: passage #", precision=0)
                sim_button = gr.Button("Compute similarity", variant="primary", elem_id="similarity-run")
                sim_note = gr.Markdown(_examples_note(), elem_id="similarity-note")
                sim_plot = gr.Plot(label="Similarity", elem_id="similarity-plot")
                sim_table = gr.DataFrame(label="Top-k per query", elem_id="similarity-table", wrap=True)
                with gr.Row():
                    sim_lexical = gr.Plot(label="Lexical weights", elem_id="similarity-lexical")
                    sim_colbert = gr.Plot(label="ColBERT alignment", elem_id="similarity-colbert")
                sim_button.click(
                    gpu(handlers.similarity),
                    [
                        sim_queries,
                        sim_passages,
                        sim_all_pairs,
                        sim_model,
                        sim_instruction,
                        sim_top_k,
                        sim_mode,
                        sim_w_dense,
                        sim_w_sparse,
                        sim_w_colbert,
                        sim_pair_q,
                        sim_pair_p,
                        sim_precision,
                    ],
                    [sim_plot, sim_table, sim_lexical, sim_colbert, sim_note],
                    api_name="similarity",
                    **serving.event_kwargs("similarity"),
                )

            with gr.Tab("Rerankers", id="rerank"):
                gr.Markdown(text.tab_intro("Rerankers"))
                with gr.Row():
                    with gr.Column(scale=2):
                        rr_query = gr.Textbox(text.RERANK_QUERY, label="Query")
                        rr_passages = gr.Textbox(text.RERANK_PASSAGES, lines=6, label="Candidate passages")
                    with gr.Column(scale=1):
                        rr_bi = _model_box([NO_MODEL, *embedders], engine.embedder, "Bi-encoder (cosine)", "rerank-bi")
                        rr_cross = _model_box(
                            [NO_MODEL, *rerankers], engine.cross_encoder, "Cross-encoder", "rerank-cross"
                        )
                        rr_llm = _model_box([NO_MODEL, *rerankers], engine.llm_reranker, "LLM reranker", "rerank-llm")
                        rr_layerwise = _model_box(
                            [NO_MODEL, *rerankers], engine.layerwise_reranker, "Layer-cutoff reranker", "rerank-lw"
                        )
                        rr_cutoff = gr.Number(engine.cutoff_layer, label="Cutoff layer", precision=0)
                rr_button = gr.Button("Compare rerankers", variant="primary", elem_id="rerank-run")
                rr_messages = gr.Markdown(_examples_note(), elem_id="rerank-messages")
                rr_table = gr.DataFrame(label="Scores and ranks", elem_id="rerank-table", wrap=True)
                rr_plot = gr.Plot(label="Rank changes", elem_id="rerank-plot")
                with gr.Row():
                    rr_tau = gr.DataFrame(label="Kendall τ between methods", elem_id="rerank-tau")
                    rr_timing = gr.DataFrame(label="Cost per method", elem_id="rerank-timing")
                rr_button.click(
                    gpu(handlers.rerank),
                    [rr_query, rr_passages, rr_bi, rr_cross, rr_llm, rr_layerwise, rr_cutoff],
                    [rr_table, rr_plot, rr_tau, rr_timing, rr_messages],
                    api_name="rerank",
                    **serving.event_kwargs("rerank"),
                )

            with gr.Tab("Layer sweep", id="layer_sweep"):
                gr.Markdown(text.tab_intro("Layer sweep"))
                with gr.Row():
                    with gr.Column(scale=2):
                        ls_query = gr.Textbox(text.RERANK_QUERY, label="Query")
                        ls_passages = gr.Textbox(text.RERANK_PASSAGES, lines=6, label="Passages")
                        ls_relevance = gr.Textbox(
                            text.RERANK_RELEVANCE, label="Relevance per passage (e.g. 2, 0, 1; empty = none)"
                        )
                    with gr.Column(scale=1):
                        ls_model = _model_box(
                            [*rerankers, *embedders],
                            engine.llm_reranker,
                            "LLM / layer-wise reranker or embedder",
                            "sweep-model",
                        )
                        with gr.Row():
                            ls_first = gr.Number(0, label="First layer (0 = the first)", precision=0)
                            ls_last = gr.Number(0, label="Last layer (0 = the model's last)", precision=0)
                        with gr.Row():
                            ls_step = gr.Number(1, label="Every n layers", precision=0)
                            ls_k = gr.Number(5, label="k for nDCG@k / MRR@k", precision=0)
                ls_sample = gr.Dropdown(
                    ["", *datasets.load_retrieval_set().queries["id"].tolist()],
                    value="",
                    label="…or fill in a query of the labelled set (its judged passages and grades)",
                    elem_id="sweep-sample",
                )
                ls_sample.change(
                    handlers.sweep_sample,
                    ls_sample,
                    [ls_query, ls_passages, ls_relevance],
                    api_visibility="private",
                    queue=False,
                )
                ls_button = gr.Button("Sweep layers", variant="primary", elem_id="sweep-run")
                ls_note = gr.Markdown(_examples_note(), elem_id="sweep-note")
                ls_plot = gr.Plot(label="Scores per layer", elem_id="sweep-plot")
                with gr.Row():
                    ls_ranking = gr.DataFrame(label="Rank of each passage per layer", elem_id="sweep-ranking")
                    ls_metrics = gr.DataFrame(label="Quality and time per layer", elem_id="sweep-metrics")
                ls_button.click(
                    gpu(handlers.layer_sweep),
                    [ls_model, ls_query, ls_passages, ls_relevance, ls_first, ls_last, ls_step, ls_k],
                    [ls_plot, ls_ranking, ls_metrics, ls_note],
                    api_name="layer_sweep",
                    **serving.event_kwargs("layer_sweep"),
                )

            with gr.Tab("Projection", id="project"):
                gr.Markdown(text.tab_intro("Projection"))
                with gr.Row():
                    with gr.Column(scale=2):
                        pr_corpus = gr.Textbox(
                            text.PROJECTION_CORPUS,
                            lines=8,
                            label="Corpus: one text per line, optionally label<TAB>text",
                        )
                        with gr.Row():
                            pr_sample = gr.Dropdown(sample_choices(), value=TEXT_BOX, label="…or a bundled sample")
                            pr_upload = gr.File(
                                label="…or upload .txt / .csv (column 'text')", file_types=[".txt", ".csv"]
                            )
                        pr_queries = gr.Textbox(text.PROJECTION_QUERIES, lines=2, label="Queries to place in the map")
                    with gr.Column(scale=1):
                        pr_model = _model_box(embedders, engine.embedder, "Embedder", "project-model")
                        pr_layer = gr.Number(-1, label="Layer (-1 = last)", precision=0)
                        pr_method = gr.Radio(["umap", "pca", "tsne"], value="umap", label="Method")
                        pr_dims = gr.Radio([2, 3], value=2, label="Dimensions")
                        pr_colour = gr.Radio(
                            ["label", "cluster", "relevance", "none"], value="label", label="Colour by"
                        )
                        pr_rel_query = gr.Dropdown(
                            ["", *datasets.load_retrieval_set().queries["id"].tolist()],
                            value="",
                            label="Labelled query for relevance colours (with the labelled set passages)",
                        )
                        pr_k = gr.Number(3, label="Neighbours per query", precision=0)
                with gr.Accordion("Hyperparameters and a second map", open=False):
                    with gr.Row():
                        pr_neighbors = gr.Number(15, label="UMAP n_neighbors", precision=0)
                        pr_min_dist = gr.Number(0.1, label="UMAP min_dist")
                        pr_perplexity = gr.Number(30, label="t-SNE perplexity")
                        pr_seed = gr.Number(42, label="Seed", precision=0)
                    with gr.Row():
                        pr_model_b = _model_box(
                            [NO_MODEL, *embedders], NO_MODEL, "Second map: model", "project-model-b"
                        )
                        pr_layer_b = gr.Number(-1, label="Second map: layer (-1 = last)", precision=0)
                pr_button = gr.Button("Project", variant="primary", elem_id="project-run")
                pr_note = gr.Markdown(_examples_note(), elem_id="project-note")
                pr_plot = gr.Plot(label="Map", elem_id="project-plot")
                pr_side = gr.Plot(label="Two maps, points linked by id", elem_id="project-side")
                pr_table = gr.DataFrame(label="Nearest neighbours of each query", elem_id="project-table", wrap=True)
                pr_file = gr.File(label="Coordinates (CSV)", elem_id="project-file")
                pr_button.click(
                    gpu(handlers.project),
                    [
                        pr_corpus,
                        pr_upload,
                        pr_sample,
                        pr_model,
                        pr_layer,
                        pr_method,
                        pr_dims,
                        pr_neighbors,
                        pr_min_dist,
                        pr_perplexity,
                        pr_seed,
                        pr_colour,
                        pr_queries,
                        pr_k,
                        pr_model_b,
                        pr_layer_b,
                        pr_rel_query,
                    ],
                    [pr_plot, pr_side, pr_table, pr_file, pr_note],
                    api_name="project",
                    **serving.event_kwargs("project"),
                )

            with gr.Tab("Compare", id="compare"):
                gr.Markdown(text.tab_intro("Compare"))
                with gr.Row():
                    cp_model_a = _model_box(embedders, engine.embedder, "A: embedder", "compare-model-a")
                    cp_layer_a = gr.Number(-1, label="A: layer (-1 = last)", precision=0)
                    cp_model_b = _model_box(embedders, engine.embedder, "B: embedder", "compare-model-b")
                    cp_layer_b = gr.Number(3, label="B: layer (-1 = last)", precision=0)
                with gr.Row():
                    cp_k = gr.Number(10, label="k", precision=0)
                    cp_max = gr.Number(0, label="Queries to use (0 = all)", precision=0)
                cp_button = gr.Button("Compare on the labelled set", variant="primary", elem_id="compare-run")
                cp_note = gr.Markdown(_examples_note(), elem_id="compare-note")
                cp_summary = gr.DataFrame(label="Mean metrics", elem_id="compare-summary")
                cp_plot = gr.Plot(label="Per query", elem_id="compare-plot")
                cp_disagree = gr.DataFrame(label="Where they disagree most", elem_id="compare-disagree", wrap=True)
                cp_per_query = gr.DataFrame(label="Every query", elem_id="compare-table", wrap=True)
                cp_file = gr.File(label="Per-query metrics (CSV)", elem_id="compare-file")
                cp_button.click(
                    gpu(handlers.compare),
                    [cp_model_a, cp_layer_a, cp_model_b, cp_layer_b, cp_k, cp_max],
                    [cp_summary, cp_plot, cp_disagree, cp_per_query, cp_file, cp_note],
                    api_name="compare",
                    **serving.event_kwargs("compare"),
                )

            with gr.Tab("Models", id="models"):
                gr.Markdown(text.tab_intro("Models"))
                gr.Markdown(text.MODELS_HELP)
                md_refresh = gr.Button("Refresh", elem_id="models-refresh")
                md_catalog = gr.DataFrame(label="Catalog", elem_id="models-catalog", wrap=True)
                md_cache = gr.DataFrame(label="Loaded models (cache)", elem_id="models-cache")
                with gr.Row():
                    md_key = gr.Dropdown(["all"], value="all", label="Unload", allow_custom_value=True)
                    md_unload = gr.Button("Unload", elem_id="models-unload")
                md_message = gr.Markdown(elem_id="models-message")
                md_refresh.click(
                    handlers.models,
                    None,
                    [md_catalog, md_cache, md_key],
                    api_name="models",
                    **serving.event_kwargs("models"),
                )
                md_unload.click(
                    handlers.unload,
                    md_key,
                    [md_cache, md_key, md_message],
                    api_name="unload",
                    **serving.event_kwargs("unload"),
                )
                demo.load(
                    handlers.models,
                    None,
                    [md_catalog, md_cache, md_key],
                    api_visibility="private",
                )
    demo.queue(**serving.queue_kwargs())
    return demo


def _model_box(choices: Sequence[str], value: str, label: str, elem_id: str) -> gr.Dropdown:
    """A model picker that also accepts a hub id or a local folder typed in."""
    options = list(dict.fromkeys([value, *choices])) if value else list(choices)
    return gr.Dropdown(options, value=value, label=label, allow_custom_value=True, elem_id=elem_id)


def _precision_box(elem_id: str) -> gr.Dropdown:
    """fp32 reproduces FlagEmbedding exactly; the faster CPU modes are opt-in and say they are approximate."""
    return gr.Dropdown(
        list(PRECISION_CHOICES),
        value=precision_label(default_precision()),
        label="Precision",
        info="Only fp32 gives FlagEmbedding's exact numbers.",
        elem_id=elem_id,
    )
