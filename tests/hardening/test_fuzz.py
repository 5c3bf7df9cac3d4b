"""Property-based tests: random unicode, empty, huge and malformed input into every engine entry point and every
app endpoint. The only failures allowed are flagdemo's typed errors (engine) and gr.Error sentences (endpoints); an
internal failure (a ``failed:…`` request, a logged crash, the generic fallback sentence) fails the example and names
the exception (internal_failures.py)."""

from __future__ import annotations

import inspect
import warnings

import gradio as gr
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from internal_failures import answer, endpoint

from flagdemo.errors import FlagDemoError
from flagdemo.models import catalog
from flagdemo.models import sources as loading

FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text a visitor might paste: any unicode (control characters, zero-width and RTL marks, emoji, CJK ...).
ODD = st.sampled_from(
    [
        "\u200b",
        "\u200f",
        "\u202e",
        "\ufeff",
        "\x00",
        "\x07",
        "\x1b",
        "🧪",
        "👩🏽‍🔬",
        "中文",
        "مرحبا",
        "\r\n",
        "\t",
        " ",
    ]
)
TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(ODD, st.text(max_size=8)), max_size=12).map("".join),
    st.just(""),
    st.just("   \n\t\n"),
    st.just("word " * 2000),  # far beyond any tiny model's max length (and beyond FLAGDEMO_MAX_CHARS)
)
TEXT_LIST = st.lists(TEXT, max_size=6)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(),  # nan and infinities included
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.tuples(st.text(max_size=5), st.integers()),
)


def _allowed(call, allowed: type[BaseException] = FlagDemoError):
    """The call's result, or None when it refused with ``allowed``; an internal failure fails the example."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = answer(call, allowed)
    return None if isinstance(result, allowed) else result


# ---- engine: embedders -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedders(tiny_dir):
    from flagdemo.models.embedders import BGEM3FlagModel, FlagLLMModel, FlagModel

    return [
        FlagModel(str(tiny_dir / "bert-embedder"), query_instruction_for_retrieval="q: "),
        BGEM3FlagModel(str(tiny_dir / "xlmr-m3")),
        FlagLLMModel(str(tiny_dir / "llama-decoder")),
    ]


EMBED_KWARGS = st.fixed_dictionaries(
    {},
    optional={
        "batch_size": st.one_of(st.integers(min_value=-2, max_value=70), JUNK),
        "max_length": st.one_of(st.integers(min_value=-2, max_value=64), st.none()),
    },
)


@FUZZ
@given(sentences=st.one_of(TEXT, TEXT_LIST, JUNK), kwargs=EMBED_KWARGS, which=st.integers(0, 2))
def test_embedder_entry_points(embedders, sentences, kwargs, which):
    model = embedders[which]
    for method in (model.encode, model.encode_queries, model.encode_corpus):
        output = _allowed(lambda method=method: method(sentences, **kwargs))
        if output is not None and isinstance(sentences, list) and sentences:
            dense = output["dense_vecs"] if isinstance(output, dict) else output
            assert len(dense) == len(sentences)
            assert np.isfinite(np.asarray(dense, dtype=np.float64)).all()
    mode = "query" if isinstance(sentences, str) else "passage"
    result = _allowed(lambda: model.encode_detailed(sentences, mode=mode, max_length=kwargs.get("max_length")))
    if result is not None:
        assert len(result.tokens) == len(result.token_counts) == len(result.embeddings)


@FUZZ
@given(mode=st.one_of(st.sampled_from(["query", "passage", "raw"]), TEXT, JUNK), instruction=st.one_of(TEXT, JUNK))
def test_encode_detailed_modes_and_instructions(embedders, mode, instruction):
    _allowed(lambda: embedders[0].encode_detailed(["a text"], mode=mode, instruction=instruction, all_layers=True))


# ---- engine: rerankers -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rerankers(tiny_dir):
    from flagdemo.models.rerankers import FlagLLMReranker, FlagReranker, LayerWiseFlagLLMReranker

    return [
        FlagReranker(str(tiny_dir / "bert-cross-encoder")),
        FlagLLMReranker(str(tiny_dir / "llama-decoder")),
        LayerWiseFlagLLMReranker(str(tiny_dir / "minicpm-layerwise")),
    ]


PAIRS = st.one_of(
    st.lists(st.tuples(TEXT, TEXT), max_size=5),
    st.lists(st.lists(TEXT, min_size=2, max_size=2), max_size=4),
    st.tuples(TEXT, TEXT),
    st.lists(st.one_of(TEXT, st.tuples(TEXT), st.tuples(TEXT, TEXT, TEXT), JUNK), max_size=4),
    JUNK,
    TEXT,
)
RERANK_KWARGS = st.fixed_dictionaries(
    {},
    optional={
        "batch_size": st.one_of(st.integers(min_value=-2, max_value=40), JUNK),
        "max_length": st.integers(min_value=-2, max_value=64),
        "normalize": st.booleans(),
    },
)


@FUZZ
@given(pairs=PAIRS, kwargs=RERANK_KWARGS, which=st.integers(0, 2))
def test_reranker_compute_score(rerankers, pairs, kwargs, which):
    model = rerankers[which]
    scores = _allowed(lambda: model.compute_score(pairs, **kwargs))
    if scores is not None:
        values = np.atleast_1d(np.asarray(scores, dtype=np.float64))
        assert np.isfinite(values).all()
        if isinstance(pairs, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
            assert len(values) == len(pairs)  # (a list of two strings is one pair, as in FlagEmbedding)
    _allowed(lambda: model.compute_score_detailed(pairs))


# ---- engine: catalog and loading -------------------------------------------------------------------------------


@FUZZ
@given(name=st.one_of(TEXT, st.sampled_from(["../../etc", "/etc/passwd", "~", "file:///etc", "a/b/c", "BAAI/bge-m3"])))
def test_catalog_lookup_and_resolve_source(name):
    entry = catalog.lookup(name)
    assert entry is None or entry.key == catalog.lookup_key(name)
    assert isinstance(catalog.suggest(name), list)
    _allowed(lambda: catalog.get(name, "embedder"))
    source = _allowed(lambda: loading.resolve_source(name))
    assert source is None or source.origin in ("local", "bundled", "hub")


@FUZZ
@given(name=JUNK)
def test_resolve_source_with_junk(name):
    _allowed(lambda: loading.resolve_source(name))


# ---- engine facade -----------------------------------------------------------------------------------------------


@FUZZ
@given(texts=st.one_of(TEXT, TEXT_LIST), passages=st.one_of(TEXT, TEXT_LIST), model=st.sampled_from([0, 1]))
def test_engine_facade(tiny_engine, texts, passages, model):
    name = [tiny_engine.embedder, tiny_engine.extra_embedders[0]][model]
    _allowed(lambda: tiny_engine.encode(texts, model=name))
    _allowed(lambda: tiny_engine.similarity(texts, passages, model=name))
    query = texts if isinstance(texts, str) else " ".join(texts)
    _allowed(lambda: tiny_engine.embedder_layer_sweep(name, query, passages, None))
    _allowed(lambda: tiny_engine.reranker_layer_sweep(tiny_engine.llm_reranker, query, passages, [1, 2]))
    outcomes = _allowed(
        lambda: tiny_engine.rerank_methods(
            query,
            passages,
            bi_encoder=name,
            cross_encoder=tiny_engine.cross_encoder,
            llm_reranker=None,
            layerwise_reranker=tiny_engine.layerwise_reranker,
            cutoff_layer=3,
        )
    )
    assert all(outcome.scores is not None or outcome.error for outcome in outcomes or [])


# ---- app endpoints ------------------------------------------------------------------------------------------------

WIDGET = st.one_of(
    TEXT,
    JUNK,
    st.sampled_from(
        ["", "(none)", "query", "raw", "pca", "tsne", "label", "cluster", "relevance", "none", "all", "beir"]
    ),
    st.just("a\n" * 600),  # more lines than FLAGDEMO_MAX_TEXTS
)
# Projection by UMAP compiles numba code (seconds): the app tests cover it; fuzzing uses PCA / t-SNE / junk.
HANDLER_NAMES = ["encode", "similarity", "rerank", "layer_sweep", "project", "compare", "unload", "sweep_sample",
                 "project_stored", "compare_beir"]  # fmt: skip


def _parameters(fn) -> list[str]:
    return [name for name in inspect.signature(fn).parameters if name not in ("self", "progress")]


@pytest.mark.parametrize("handler_name", HANDLER_NAMES)
def test_every_handler_answers_random_input_with_a_result_or_a_sentence(tiny_app, handler_name, monkeypatch, tmp_path):
    monkeypatch.delenv("FLAGDEMO_PUBLIC", raising=False)
    (tmp_path / "beir" / "qrels").mkdir(parents=True)  # a data folder whose one entry is named only by "beir"
    (tmp_path / "beir" / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n')
    monkeypatch.setenv("FLAGDEMO_DATA_DIR", str(tmp_path))
    fn = endpoint(tiny_app, handler_name)
    strategies = {name: WIDGET for name in _parameters(fn) if name != "upload"}  # uploads: see below
    if "method" in strategies:
        strategies["method"] = st.one_of(st.sampled_from(["pca", "tsne"]), JUNK, st.text(max_size=4))
    if handler_name == "unload":
        strategies["key"] = st.one_of(TEXT, JUNK)  # never "all": other tests share the loaded models
    if handler_name == "compare":
        strategies["max_queries"] = st.one_of(st.integers(1, 3), JUNK)  # keep each example short

    # gradio always passes every input: only the ones with a default may be left out here
    required = {
        name for name, parameter in inspect.signature(fn).parameters.items() if parameter.default is parameter.empty
    }
    always = {name: strategy for name, strategy in strategies.items() if name in required}
    optional = {name: strategy for name, strategy in strategies.items() if name not in required}

    @FUZZ
    @given(kwargs=st.fixed_dictionaries(always, optional=optional))
    def run(kwargs):
        _allowed(lambda: fn(**kwargs), gr.Error)

    run()


@FUZZ
@given(content=st.one_of(TEXT.map(str.encode), st.binary(max_size=200)), csv=st.booleans())
def test_uploads_with_random_content(tiny_app, tmp_path_factory, content, csv):
    path = tmp_path_factory.mktemp("upload") / ("upload.csv" if csv else "upload.txt")
    path.write_bytes(content)
    _allowed(lambda: endpoint(tiny_app, "encode")(upload=str(path)), gr.Error)
    _allowed(lambda: endpoint(tiny_app, "project")(upload=str(path), method="pca"), gr.Error)


@FUZZ
@given(path=st.sampled_from(["/", ".", "/etc", "/dev/null", "does-not-exist.txt", ""]))
def test_upload_paths_that_are_not_files(tiny_app, path):
    _allowed(lambda: endpoint(tiny_app, "encode")(upload=path), gr.Error)
