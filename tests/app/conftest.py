"""App fixtures (the tiny-model Engine is in tests/conftest.py): the Blocks built from it, and a launched server."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="flagdemo-gradio-"))


@pytest.fixture(scope="session")
def tiny_m3(tiny_dir) -> str:
    return str(tiny_dir / "xlmr-m3")


@pytest.fixture(scope="session")
def tiny_demo(tiny_engine):
    from flagdemo.ui import build_demo

    return build_demo(tiny_engine)


@pytest.fixture(scope="session")
def app_url(tiny_engine):
    """A real server on 127.0.0.1 serving the tiny-model app (its own Blocks, closed at the end)."""
    from flagdemo.ui import build_demo

    demo = build_demo(tiny_engine)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield url
    demo.close()


@pytest.fixture(scope="session")
def family_models(tmp_path_factory):
    """A models folder serving the rest of the family on seeded random weights: Visualized-BGE's base variant (the
    goldens' checkpoint, ~800 MB, written once) and the tiny BERT as llm-embedder (see tests/family/demo_models.py)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "family"))
    from demo_models import write_llm_embedder, write_visualized_base

    folder = tmp_path_factory.mktemp("family-models")
    write_visualized_base(folder)
    write_llm_embedder(folder)
    return folder


@pytest.fixture(scope="module")
def family_engine(family_models, tiny_engine, engine_copy):
    """The tiny-model engine with FLAGDEMO_MODELS_DIR pointing at ``family_models`` for this module: the app then
    offers llm-embedder and bge-visualized-base-en-v1.5 by their catalog names."""
    from flagdemo.models.cache import MODEL_CACHE

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLAGDEMO_MODELS_DIR", str(family_models))
        yield engine_copy(tiny_engine)
    for entry in MODEL_CACHE.entries():  # later modules start from the shared cache as they would without these
        if str(family_models) in " ".join(map(str, entry.key)):
            MODEL_CACHE.unload(entry.key)
