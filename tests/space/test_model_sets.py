"""The model set the app opens on: BGE wherever its models load, the offline stand-ins elsewhere, said on the page."""

from __future__ import annotations

import dataclasses
import inspect
import json

import gradio as gr
import pytest

from flagdemo.engine import Engine
from flagdemo.errors import InvalidInputError
from flagdemo.models import catalog, model_sets
from flagdemo.models.resolve import NO_MODEL
from flagdemo.ui import build_demo, common, zerogpu

BGE_MODELS = [
    "bge-base-en-v1.5",
    "bge-m3",
    "bge-reranker-base",
    "bge-reranker-v2-minicpm-layerwise",
    "bge-small-en-v1.5",
]


@pytest.fixture
def offline_machine(monkeypatch, tmp_path):
    """No hub, an empty models folder and an empty hub cache: only the bundled models load."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FLAGDEMO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("FLAGDEMO_MODEL_SET", raising=False)
    monkeypatch.setattr(catalog, "in_hub_cache", lambda *args, **kwargs: False)
    model_sets.hub_reachable.cache_clear()
    yield tmp_path / "models"
    model_sets.hub_reachable.cache_clear()


def _store(models_dir, names):
    for name in names:
        folder = models_dir / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))


def test_the_bge_set_needs_five_models_and_names_each_role():
    assert model_sets.BGE.models() == BGE_MODELS
    assert model_sets.BGE.hub_ids() == [f"BAAI/{name}" for name in BGE_MODELS]
    precision = model_sets.PRECISION_PHRASES[model_sets.BGE.llm_precision]
    assert model_sets.BGE.described() == (
        "bge-base-en-v1.5 (embedder), bge-m3 (dense, sparse and ColBERT scores), bge-reranker-base (cross-encoder), "
        f"bge-reranker-v2-minicpm-layerwise (LLM reranker and layer-cutoff reranker, {precision}) and "
        "bge-small-en-v1.5 (Cocktail's base)"
    )
    assert model_sets.OFFLINE.models() == [catalog.MINILM_KEY, catalog.SMOLLM2_KEY]
    for name in BGE_MODELS:  # each plays its role: supported classes, the right kind
        assert catalog.get(name).supported


def test_minicpm_computes_in_bf16_only_where_bf16_is_multiplied_natively(monkeypatch):
    """On an AVX2-only CPU torch emulates bf16 products (five times slower than fp32): there the bf16 weights are
    computed in fp32; a CPU with bf16 instructions, a GPU or a ZeroGPU Space computes in bf16."""
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.setattr(model_sets.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(model_sets, "has_bf16_arithmetic", lambda: False)
    assert model_sets.decoder_precision() == "bf16-weights"
    monkeypatch.setattr(model_sets, "has_bf16_arithmetic", lambda: True)
    assert model_sets.decoder_precision() == "bf16"
    monkeypatch.setattr(model_sets, "has_bf16_arithmetic", lambda: False)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert model_sets.decoder_precision() == "bf16"
    assert model_sets.BGE.llm_precision in ("bf16", "bf16-weights")
    described = dataclasses.replace(model_sets.BGE, llm_precision="bf16-weights").described()
    assert "(LLM reranker and layer-cutoff reranker, bf16 weights computed in fp32)" in described


def test_the_cpus_bf16_instructions_are_read_from_its_flags(monkeypatch):
    from flagdemo.models.backends import cpu

    for flags, native in ((set(), False), ({"avx2", "fma"}, False), ({"avx512_bf16"}, True), ({"amx_bf16"}, True)):
        monkeypatch.setattr(cpu, "cpu_features", lambda flags=flags: flags)
        assert cpu.has_bf16_arithmetic() is native, flags


def test_offline_the_app_opens_on_the_stand_ins_and_says_why(offline_machine):
    chosen = model_sets.choose()
    assert chosen.model_set is model_sets.OFFLINE
    assert chosen.sentence.startswith(
        "This app runs the offline models, all-MiniLM-L6-v2 (embedder and Cocktail's base) and "
    )
    assert "not BGE models" in chosen.sentence
    assert (
        "bge-base-en-v1.5, bge-m3, bge-reranker-base, bge-reranker-v2-minicpm-layerwise and bge-small-en-v1.5 are "
        "not stored"
    ) in chosen.sentence
    assert chosen.sentence.endswith("this app runs offline.")


def test_with_every_bge_model_stored_the_app_opens_on_them(offline_machine):
    _store(offline_machine, BGE_MODELS)
    chosen = model_sets.choose()
    assert chosen.model_set is model_sets.BGE
    assert chosen.sentence == f"This app runs BGE models: {model_sets.BGE.described()}."
    engine = Engine.for_this_machine()
    assert (engine.embedder, engine.similarity_embedder, engine.cross_encoder) == tuple(BGE_MODELS[:3])
    assert engine.llm_reranker == engine.layerwise_reranker == BGE_MODELS[3]
    assert engine.fine_tuning_base == BGE_MODELS[4] and engine.llm_precision == model_sets.decoder_precision()
    assert engine.cutoff_layer == 28 and engine.model_set_note == chosen.sentence
    assert set(BGE_MODELS) <= engine.own_models()


def test_one_missing_model_keeps_the_offline_set_and_is_named(offline_machine):
    _store(offline_machine, [*BGE_MODELS[:3], BGE_MODELS[4]])
    chosen = model_sets.choose()
    assert chosen.model_set is model_sets.OFFLINE
    assert "because bge-reranker-v2-minicpm-layerwise is not stored on this machine" in chosen.sentence


def test_a_reachable_hub_is_enough_and_is_asked_once(offline_machine, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    asked = []
    monkeypatch.setattr(huggingface_hub, "model_info", lambda repo, timeout: asked.append((repo, timeout)))
    assert model_sets.choose().model_set is model_sets.BGE
    assert model_sets.choose().model_set is model_sets.BGE
    assert asked == [("BAAI/bge-m3", model_sets.HUB_PROBE_SECONDS)]


def test_an_unreachable_hub_is_not_counted_on(offline_machine, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def refuse(repo, timeout):
        raise OSError("no route to host")

    monkeypatch.setattr(huggingface_hub, "model_info", refuse)
    chosen = model_sets.choose()
    assert chosen.model_set is model_sets.OFFLINE
    assert chosen.sentence.endswith("the Hugging Face hub cannot be reached.")


def test_an_operator_pins_the_set(offline_machine, monkeypatch):
    _store(offline_machine, BGE_MODELS)
    monkeypatch.setenv("FLAGDEMO_MODEL_SET", "offline")
    chosen = model_sets.choose()
    assert chosen.model_set is model_sets.OFFLINE and chosen.sentence.endswith("as its operator chose.")
    monkeypatch.setenv("FLAGDEMO_MODEL_SET", "BGE")
    for name in BGE_MODELS[2:4]:
        (offline_machine / name / "config.json").unlink()
    chosen = model_sets.choose()
    assert chosen.model_set is model_sets.BGE
    assert chosen.sentence.endswith(
        "as its operator chose. bge-reranker-base and bge-reranker-v2-minicpm-layerwise cannot load on this "
        "machine, so the tabs that use them will say so."
    )
    monkeypatch.setenv("FLAGDEMO_MODEL_SET", "large")
    with pytest.raises(InvalidInputError, match="FLAGDEMO_MODEL_SET must be one of auto, bge, offline, not 'large'"):
        model_sets.choose()


def test_the_page_says_which_set_runs(tiny_engine):
    demo = build_demo(
        dataclasses.replace(tiny_engine, model_set_note="This app runs the test models."), only="similarity"
    )
    notes = [block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "model-set-note"]
    assert [note.value for note in notes] == ["This app runs the test models."]
    assert isinstance(notes[0], gr.Markdown)


def test_similarity_opens_on_the_multi_vector_model_when_the_set_has_one():
    assert Engine().similarity_embedder == catalog.MINILM_KEY
    engine = Engine(multi_vector_embedder="bge-m3")
    assert engine.similarity_embedder == "bge-m3" and "bge-m3" in engine.embedder_choices()
    assert Engine(multi_vector_embedder=NO_MODEL).similarity_embedder == Engine().embedder


def test_handlers_run_inside_the_gpu_decorator_on_zero_gpu_only(monkeypatch):
    def handler(engine, text: str = "x"):
        return engine, text

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    plain = common.bind(handler, "engine")
    assert plain("y") == ("engine", "y") and not hasattr(plain, "__wrapped__")
    decorated = []

    def gpu(duration):
        def wrap(fn):
            decorated.append((fn.__name__, duration))
            return fn

        return wrap

    monkeypatch.setattr(zerogpu.spaces, "GPU", gpu)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    on_gpu = common.bind(handler, "engine")
    assert decorated == [("handler", zerogpu.GPU_SECONDS)] and on_gpu("z") == ("engine", "z")
    assert list(inspect.signature(on_gpu).parameters) == ["text"]


def test_on_zero_gpu_the_models_go_to_cuda(offline_machine, monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    assert Engine.for_this_machine().devices == "cuda"
    monkeypatch.delenv("SPACES_ZERO_GPU")
    assert Engine.for_this_machine().devices is None
