"""LLM-Embedder's Task and Visualized-BGE's images in the Encode, Similarity and Projection handlers.

On seeded random weights served from a models folder (``family_models``): the numbers each tab shows are the ones
LLMEmbedder and Visualized_BGE give when called directly, the task's instruction reaches the model and is shown,
every bad image is a sentence, and nothing of Visualized-BGE loads until it is chosen.
"""

from __future__ import annotations

import io
import re

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from flagdemo import LLMEmbedder, Visualized_BGE
from flagdemo.models.embedders.llm_embedder import task_instruction
from flagdemo.models.visual.drawing import BUNDLED_DIR
from flagdemo.ui import family
from flagdemo.ui.tabs import cocktail, compare, encode, layer_sweep, projection, similarity

VISUAL = "bge-visualized-base-en-v1.5"
TEXTS = ["a red circle", "a blue square"]


@pytest.fixture(scope="module")
def direct_llm(family_models):
    return LLMEmbedder(str(family_models / "llm-embedder"))


@pytest.fixture(scope="module")
def direct_visual(family_models):
    folder = family_models / VISUAL
    return Visualized_BGE("bge-base-en-v1.5", str(folder / "Visualized_base_en_v1.5.pth"), from_pretrained=str(folder))


def heatmap_z(figure) -> np.ndarray:
    return np.asarray(figure.data[0].z, dtype=float)


def encoded_vectors(outputs) -> np.ndarray:
    return np.load(next(path for path in outputs[5] if path.endswith(".npy")))


# ---- LLM-Embedder ----------------------------------------------------------------------------------------------


def test_the_task_reaches_llm_embedder_and_the_note_shows_its_instruction(family_engine, direct_llm):
    runs = {
        task: encode.encode(family_engine, "\n".join(TEXTS), model="llm-embedder", mode="query", instruction="",
                            task=task)
        for task in ("qa", "chat")
    }  # fmt: skip
    for task, outputs in runs.items():
        expected = direct_llm.encode_queries(TEXTS, task=task)
        np.testing.assert_allclose(encoded_vectors(outputs), expected, atol=1e-6)
        assert f"«{task_instruction(task, 'query')}»" in outputs[4]
    assert np.abs(encoded_vectors(runs["qa"]) - encoded_vectors(runs["chat"])).max() > 1e-3
    # The box as a browser sends it back (stripped): still the task's instruction with its closing space.
    boxed = encode.encode(family_engine, "\n".join(TEXTS), model="llm-embedder", mode="query", task="chat",
                          instruction=task_instruction("chat", "query").strip())  # fmt: skip
    np.testing.assert_allclose(encoded_vectors(boxed), direct_llm.encode_queries(TEXTS, task="chat"), atol=1e-6)


def test_similarity_and_projection_use_the_task_for_queries_and_keys(family_engine, direct_llm):
    plot, _, _, _, note = similarity.similarity(
        family_engine, "\n".join(TEXTS), "circles are round\nsquares have corners", model="llm-embedder", top_k=1,
        task="tool",
    )  # fmt: skip
    queries = direct_llm.encode_queries(TEXTS, task="tool")
    keys = direct_llm.encode_keys(["circles are round", "squares have corners"], task="tool")
    np.testing.assert_allclose(heatmap_z(plot), queries @ keys.T, atol=1e-5)
    assert task_instruction("tool", "query") in note and task_instruction("tool", "key") in note
    _, _, table, _, note = projection.project(
        family_engine, "a\tred\nb\tblue\nc\tgreen\nd\tgrey", model="llm-embedder", method="pca", queries="red",
        k=1, task="icl",
    )  # fmt: skip
    corpus = direct_llm.encode_keys(["red", "blue", "green", "grey"], task="icl")
    best = float((direct_llm.encode_queries(["red"], task="icl") @ corpus.T).max())
    assert abs(float(table["cosine"].iloc[0]) - best) < 1e-3 and task_instruction("icl", "key") in note


def test_the_layer_sweep_reads_llm_embedder_behind_its_task(family_engine, direct_llm):
    passages = ["circles are round", "squares have corners"]
    _, _, _, note, sweep = layer_sweep.layer_sweep(
        family_engine, "llm-embedder", "round shapes", "\n".join(passages), "", k=2, task="lrlm"
    )
    last = np.asarray(sweep["scores"], dtype=float)[-1]
    query = direct_llm.encode_queries(["round shapes"], task="lrlm")
    np.testing.assert_allclose(last, (query @ direct_llm.encode_keys(passages, task="lrlm").T)[0], atol=1e-5)
    assert task_instruction("lrlm", "query") in note and task_instruction("lrlm", "key") in note


def test_compare_reads_llm_embedder_behind_its_task(family_engine, direct_llm):
    import pandas as pd

    from flagdemo.analysis import evaluation
    from flagdemo.data import datasets

    labelled = datasets.load_retrieval_set().subset(max_queries=6)
    query_ids, passage_ids = labelled.queries["id"].tolist(), labelled.passages["id"].tolist()

    def expected(task: str) -> np.ndarray:
        queries = direct_llm.encode_queries(labelled.queries["text"].tolist(), task=task)
        keys = direct_llm.encode_keys(labelled.passages["text"].tolist(), task=task)
        run = evaluation.run_from_scores(queries @ keys.T, query_ids, passage_ids)
        return evaluation.evaluate_run(run, labelled, 10).per_query["nDCG@10"].to_numpy()

    assert not np.allclose(expected("chat"), expected("qa"))  # the two tasks rank differently here
    outputs = compare.compare(family_engine, "llm-embedder", -1, family_engine.embedder, -1, 10, 6, "chat")
    np.testing.assert_allclose(pd.read_csv(outputs[4])["nDCG@10 A"], expected("chat"), atol=1e-6)
    assert task_instruction("chat", "query") in outputs[5] and task_instruction("chat", "key") in outputs[5]
    assert compare.either_llm_embedder(family_engine)(family_engine.embedder, "llm-embedder")["interactive"] is True
    assert (
        compare.either_llm_embedder(family_engine)(family_engine.embedder, family_engine.embedder)["interactive"]
        is False
    )


def test_cocktail_refuses_llm_embedder_with_a_sentence(family_engine):
    with pytest.raises(gr.Error, match="LLM-Embedder reads every text behind one of six task instructions"):
        cocktail.cocktail(family_engine, "llm-embedder")


def test_other_models_disable_the_task_and_say_why(family_engine):
    update = family.family_options(family_engine, [])
    assert update("llm-embedder")[0]["interactive"] is True
    off = update(family_engine.embedder)[0]
    assert off["interactive"] is False and off["info"] == family.NOT_LLM_EMBEDDER
    outputs = encode.encode(family_engine, "x", mode="query", instruction="", task="chat")
    assert "task" not in outputs[4]  # the tiny BERT read its own instruction, and the note does not claim a task


# ---- Visualized-BGE --------------------------------------------------------------------------------------------


def test_an_image_query_scores_text_passages_as_visualized_bge_does(family_engine, direct_visual):
    plot, table, _, _, note = similarity.similarity(
        family_engine, "", "\n".join(TEXTS), model=VISUAL, top_k=2, query_bundled=["red-circle.png"]
    )
    image = direct_visual.encode(image=str(BUNDLED_DIR / "red-circle.png"))
    texts = torch_cat([direct_visual.encode(text=line) for line in TEXTS])
    np.testing.assert_allclose(heatmap_z(plot), (image @ texts.T).numpy(), rtol=0, atol=1e-6)
    assert list(plot.data[0].y) or plot.layout.yaxis.ticktext  # labelled axes
    assert "image: red-circle.png" in " ".join(map(str, [*plot.layout.yaxis.ticktext, *table["query"]]))
    assert "1 image" in note and "2 text" in note


def test_fused_and_mixed_items_with_thumbnails(family_engine, direct_visual):
    outputs = encode.encode(
        family_engine, "a red shape", model=VISUAL, bundled_images=["red-circle.png", "blue-square.png"], fuse=True
    )
    fused = torch_cat([
        direct_visual.encode(image=str(BUNDLED_DIR / name), text="a red shape")
        for name in ("red-circle.png", "blue-square.png")
    ])  # fmt: skip
    np.testing.assert_allclose(encoded_vectors(outputs), fused.numpy(), rtol=0, atol=1e-6)
    assert list(outputs[0]["kind"]) == ["image + text"] * 2
    with pytest.raises(gr.Error, match="To fuse, give one text line for all 2 images"):
        encode.encode(family_engine, "one\ntwo\nthree", model=VISUAL, bundled_images=["red-circle.png", "house.png"],
                      fuse=True)  # fmt: skip
    figure, _, table, _, note = projection.project(
        family_engine, "shape\ta red circle\nshape\ta blue square", model=VISUAL, method="pca", queries="red",
        k=1, corpus_bundled=["red-circle.png", "sunset.png"],
    )  # fmt: skip
    assert len(figure.layout.images) == 2 and len(table) == 1
    assert "4 points (2 images, 2 texts)" in note


def test_the_pictures_view_shows_each_embedded_image(family_engine, tiny_engine):
    with gr.Blocks():
        pickers = [
            family.image_picker(family_engine, "q", "Q", fuse="fuse"),
            family.image_picker(family_engine, "p", "P"),
        ]
    show = family.pictures(family_engine, pickers, ["Query images", "Passage images"])
    shown = show(VISUAL, "a red shape", None, ["red-circle.png", "house.png"], True, "text", None, ["sunset.png"])
    assert shown.count('<img src="data:image/png;base64,') == 3 and shown.count("<td>image + text</td>") == 2
    assert "Query images" in shown and "image: sunset.png" in shown and str(BUNDLED_DIR) not in shown
    assert show(tiny_engine.embedder, "x", None, ["house.png"], False, "y", None, []) == ""


def _png(size=(32, 32), **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


def _gif_animated() -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "blue")]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


BAD_IMAGES = {
    "notes.png": (b"just some text, not pixels", "is not an image PIL can read"),
    "dot.png": (_png((1, 1)), "is 1 x 1 pixels; an image needs at least 8 pixels"),
    "cut.png": (_png((64, 64))[:80], "damaged or truncated"),
    "moving.gif": (_gif_animated(), r"is animated \(2 frames\)"),
    "huge.png": (_png((400, 300)), r"0.1 megapixels\); the limit is 0.05 megapixels"),
}


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_a_bad_image_gets_its_sentence(family_engine, tmp_path, monkeypatch, name):
    data, sentence = BAD_IMAGES[name]
    (tmp_path / name).write_bytes(data)
    monkeypatch.setenv("FLAGDEMO_MAX_IMAGE_MEGAPIXELS", "0.05")
    with pytest.raises(gr.Error) as refused:
        encode.encode(family_engine, "", model=VISUAL, images=[str(tmp_path / name)])
    assert re.search(sentence, refused.value.message) and f"Image 1 ({name})" in refused.value.message
    assert "FLAGDEMO_" not in refused.value.message and str(tmp_path) not in refused.value.message


def test_public_mode_takes_catalog_names_and_bundled_pictures_only(family_engine, family_models, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    with pytest.raises(gr.Error, match="loads only the embedders in its list"):
        encode.encode(family_engine, "x", model=str(family_models / VISUAL), bundled_images=["red-circle.png"])
    with pytest.raises(gr.Error, match=re.escape("There is no bundled picture called '../../etc/passwd'")):
        encode.encode(family_engine, "x", model=VISUAL, bundled_images=["../../etc/passwd"])
    assert encode.encode(family_engine, "x", model=VISUAL, bundled_images=["house.png"])[0].shape[0] == 2


def test_the_menus_and_the_models_tab_say_what_loads_here(family_engine):
    menu = dict((name, label) for label, name in family_engine.model_menu("embedder"))
    assert menu[VISUAL] == VISUAL and menu["bge-visualized-m3"] == "bge-visualized-m3 (needs download)"
    assert menu["llm-embedder"] == "llm-embedder"
    here = {row["model"]: row["here"] for row in family_engine.catalog_rows()}
    assert here[VISUAL] == "yes (models folder)" and here["bge-visualized-m3"] == "needs download"
    assert "Visualized_m3.pth" in family_engine.unavailable("bge-visualized-m3")
    with pytest.raises(gr.Error, match="choose it by that name in the Encode, Similarity or Projection tab"):
        layer_sweep.layer_sweep(family_engine, VISUAL, "q", "p", "", k=1)


def test_the_default_tabs_load_no_visualized_bge(family_engine, engine_copy, monkeypatch):
    from flagdemo.engine import visual as explore
    from flagdemo.ui import build_demo

    def refuse(entry):
        raise AssertionError(f"{entry.key} was loaded without being chosen")

    monkeypatch.setattr(explore, "load_catalog_model", refuse)
    engine = engine_copy(family_engine)  # its weights are there to load: the app must still wait to be asked
    build_demo(engine)
    assert encode.encode(engine)[0].shape[0] == 4 and similarity.similarity(engine)[4]
    assert projection.project(engine, method="pca")[4]


def torch_cat(rows):
    import torch

    return torch.cat(rows)
