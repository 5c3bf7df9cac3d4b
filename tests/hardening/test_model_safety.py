"""Safe model loading: remote code only for catalog models that need it on hosts that allow it; public mode loads
only the app's own and catalog models; corrupt or missing model files give a sentence and the app keeps serving."""

from __future__ import annotations

import os
import shutil

import gradio as gr
import numpy as np
import pytest

from flagdemo.engine import Engine
from flagdemo.errors import RemoteCodeNotAllowedError, UnknownModelError
from flagdemo.models import catalog
from flagdemo.models.cache import MODEL_CACHE
from flagdemo.models.resolve import remote_code_wanted

REMOTE_CODE_RERANKER = "jina-reranker-v2-base-multilingual"  # catalog: needs_remote_code=True
REMOTE_CODE_EMBEDDER = "gte-base-en-v1.5"  # catalog: trust_remote_code=True (FlagEmbedding's registry)


# ---- trust_remote_code -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "trust", "allow", "refused"),
    [
        (REMOTE_CODE_RERANKER, True, "1", False),  # catalog needs it + opted in + host allows: the one way through
        (REMOTE_CODE_RERANKER, True, "", True),  # host does not allow
        (REMOTE_CODE_RERANKER, True, "true", True),  # only the exact value 1 allows
        (REMOTE_CODE_RERANKER, False, "1", True),  # needs it but not opted in: a sentence, not a silent failure
        ("bge-reranker-base", True, "1", True),  # catalog model without custom code: never run code from it
        ("someone/random-model", True, "1", True),  # not in the catalog: never
        ("bge-reranker-base", False, "", False),  # the ordinary case
    ],
)
def test_remote_code_needs_catalog_opt_in_and_host(monkeypatch, name, trust, allow, refused):
    monkeypatch.setenv("FLAGDEMO_ALLOW_REMOTE_CODE", allow)
    entry = catalog.lookup(name)
    if refused:
        with pytest.raises(RemoteCodeNotAllowedError) as caught:
            catalog.ensure_remote_code_allowed(name, entry, trust)
        assert repr(name) in str(caught.value) and str(caught.value).endswith(".")
    else:
        catalog.ensure_remote_code_allowed(name, entry, trust)


def test_the_app_asks_for_remote_code_only_for_exact_catalog_names(monkeypatch, tiny_dir):
    monkeypatch.setenv("FLAGDEMO_ALLOW_REMOTE_CODE", "1")
    assert remote_code_wanted(REMOTE_CODE_RERANKER, "reranker") is True
    assert remote_code_wanted("jinaai/" + REMOTE_CODE_RERANKER, "reranker") is True
    assert remote_code_wanted("bge-reranker-base", "reranker") is None  # catalog default (False)
    assert remote_code_wanted(f"/somewhere/{REMOTE_CODE_RERANKER}", "reranker") is False  # a folder, not the entry
    assert remote_code_wanted(str(tiny_dir / "bert-cross-encoder"), "reranker") is False
    monkeypatch.setenv("FLAGDEMO_ALLOW_REMOTE_CODE", "true")  # only the exact value 1, as the catalog checks
    assert remote_code_wanted(REMOTE_CODE_RERANKER, "reranker") is None
    monkeypatch.delenv("FLAGDEMO_ALLOW_REMOTE_CODE")
    assert remote_code_wanted(REMOTE_CODE_RERANKER, "reranker") is None


@pytest.fixture
def models_dir(tmp_path, tiny_dir, monkeypatch):
    """FLAGDEMO_MODELS_DIR holding the tiny BERT embedder under a remote-code catalog name (no auto_map inside, so
    even with trust_remote_code transformers loads its ordinary BERT class and no code runs)."""
    shutil.copytree(tiny_dir / "bert-embedder", tmp_path / REMOTE_CODE_EMBEDDER)
    monkeypatch.setenv("FLAGDEMO_MODELS_DIR", str(tmp_path))
    return tmp_path


def test_a_remote_code_catalog_model_is_refused_unless_the_host_allows_it(models_dir, tiny_engine, monkeypatch):
    monkeypatch.delenv("FLAGDEMO_ALLOW_REMOTE_CODE", raising=False)
    with pytest.raises(RemoteCodeNotAllowedError, match="FLAGDEMO_ALLOW_REMOTE_CODE=1"):
        tiny_engine.load_embedder(REMOTE_CODE_EMBEDDER)
    monkeypatch.setenv("FLAGDEMO_ALLOW_REMOTE_CODE", "1")
    embedder = tiny_engine.load_embedder(REMOTE_CODE_EMBEDDER)
    assert embedder.trust_remote_code is True
    texts = ["what is a cat?", "a cat is a small feline"]
    expected = tiny_engine.encode(texts, model=tiny_engine.embedder).embeddings  # same weights, CLS pooling
    np.testing.assert_allclose(tiny_engine.encode(texts, model=REMOTE_CODE_EMBEDDER).embeddings, expected, atol=1e-6)


def test_a_local_folder_never_runs_remote_code(tiny_dir, monkeypatch):
    from flagdemo.models.embedders import FlagAutoModel

    monkeypatch.setenv("FLAGDEMO_ALLOW_REMOTE_CODE", "1")
    with pytest.raises(RemoteCodeNotAllowedError, match="not a catalog model that needs remote code"):
        FlagAutoModel.from_finetuned(
            str(tiny_dir / "bert-embedder"), model_class="encoder-only-base", trust_remote_code=True
        )


# ---- public mode ------------------------------------------------------------------------------------------------


@pytest.fixture
def stray_model(tmp_path, tiny_dir):
    """A real model folder the app was not configured with, and a symlink to it."""
    folder = tmp_path / "stray"
    shutil.copytree(tiny_dir / "bert-embedder", folder)
    link = tmp_path / "link-to-stray"
    os.symlink(folder, link)
    return folder, link


def _refused_names(stray_model) -> list[str]:
    folder, link = stray_model
    return [
        "../../etc",
        "/etc/passwd",
        "/etc",
        "~",
        "~/.ssh",
        "file:///etc/passwd",
        str(folder),
        str(link),
        "someone/some-model",
        "../../x/bge-m3",  # the catalog's basename lookup would say "bge-m3"
        "BAAI/bge-m3/../../../../etc",
        "C:\\Windows\\system32",
        "bge-m3\x00",
    ]


def test_public_mode_refuses_paths_and_unknown_hub_ids_before_loading(tiny_engine, handlers, stray_model, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    loads = MODEL_CACHE.load_count
    for name in _refused_names(stray_model):
        with pytest.raises(UnknownModelError, match="This public demo loads only the embedders in its list"):
            tiny_engine.load_embedder(name)
        with pytest.raises(gr.Error) as caught:
            handlers.encode(texts="hello", model=name)
        assert caught.value.message.startswith("This public demo loads only the embedders in its list, chosen by name")
        with pytest.raises(UnknownModelError, match="only the rerankers in its list"):
            tiny_engine.load_reranker(name)
    assert MODEL_CACHE.load_count == loads


def test_public_mode_still_serves_the_apps_own_and_catalog_models(tiny_engine, handlers, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    table, *_ = handlers.encode(texts="hello")  # the operator's configured (tiny, local) model
    assert len(table) == 1
    table, *_, files = handlers.encode(texts="hello", model=catalog.MINILM_KEY)  # bundled catalog model
    assert np.load(files[0]).shape == (1, 384)
    # a catalog name passes the public check, then says it is not downloaded
    with pytest.raises(
        UnknownModelError, match="not downloaded on this machine"
    ):  # a catalog name passes, then loads as usual
        tiny_engine.load_embedder("bge-m3")


def test_public_mode_never_opens_a_visitors_path(handlers, tiny_dir, monkeypatch):
    import flagdemo.models.resolve

    def no_reading(name):
        raise AssertionError(f"public mode read {name}/config.json")

    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    monkeypatch.setattr(flagdemo.models.resolve, "config_architectures", no_reading)
    with pytest.raises(gr.Error, match="This public demo loads only the models in its list"):
        handlers.layer_sweep(model=str(tiny_dir / "llama-decoder-left"), relevance="")


def test_public_mode_reports_a_refused_method_and_runs_the_others(handlers, stray_model, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    with pytest.warns(UserWarning, match="cross-encoder could not run: This public demo"):
        *_, messages = handlers.rerank(passages="one\ntwo", cross_encoder=str(stray_model[0]))
    assert "This public demo loads only the rerankers in its list" in messages


def test_public_mode_turns_off_unloading(handlers, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    with pytest.raises(gr.Error, match="unloading is turned off"):
        handlers.unload("all")


def test_without_public_mode_local_folders_and_links_load(tiny_engine, stray_model, monkeypatch):
    monkeypatch.delenv("FLAGDEMO_PUBLIC", raising=False)
    folder, link = stray_model
    expected = tiny_engine.encode(["hello there"], model=tiny_engine.embedder).embeddings
    for name in (str(folder), str(link)):
        np.testing.assert_allclose(tiny_engine.encode(["hello there"], model=name).embeddings, expected, atol=1e-6)


# ---- corrupt or missing files -----------------------------------------------------------------------------------

BROKEN_MESSAGES = {
    "truncated-weights": "Loading the model of",
    "missing-config": "has no config.json",
    "garbage-tokenizer": "Loading the tokenizer of",
    "missing-weights": "files are missing",
}


def test_corrupt_models_are_sentences_and_the_handlers_keep_working(handlers, broken_models):
    for name, folder in broken_models.items():
        with pytest.raises(gr.Error) as caught:
            handlers.encode(texts="hello", model=str(folder))
        assert BROKEN_MESSAGES[name] in caught.value.message
        assert "Traceback" not in caught.value.message
        table, *_ = handlers.encode(texts="hello")
        assert table["text"].tolist() == ["hello"]


def test_engine_raises_typed_errors_for_corrupt_models(broken_models):
    from flagdemo.errors import FlagDemoError

    engine = Engine(embedder=str(broken_models["missing-config"]))
    for folder in broken_models.values():
        with pytest.raises(FlagDemoError):
            engine.encode(["hello"], model=str(folder))
