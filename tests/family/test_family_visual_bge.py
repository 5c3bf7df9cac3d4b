"""Visualized-BGE: FlagEmbedding 1.2.11's Visualized_BGE replayed against flagdemo's native one.

The goldens (tests/family/golden/visual_bge_*.json, `make golden-family`) were computed on seeded random weights
that tests/family/seeded_weights.py rebuilds here from the recorded parameter list; the header's checksum proves
they are the same weights. The base variant (bge-base-en-v1.5 + EVA02-CLIP-B/16, ~200 M parameters) replays in
the normal suite: every recorded item through the batch helper in one pass, and a few through ``encode`` itself.
The bge-m3 variant (~870 M parameters, ~3.5 GB in fp32) and the one-at-a-time replay of every base case run with
the ``full_golden`` marker (``make golden-family-check``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from family_goldens import ASSETS, IMAGES, changed_files, load_golden
from golden_codec import compare
from seeded_weights import checksum, seeded_state_dict, shape_list

from flagdemo.engine.visual import (
    bundled_choices,
    encode_mixed,
    llm_embedder_instruction,
    llm_embedder_tasks,
    make_items,
    mixed_similarity,
    visualized_choices,
)
from flagdemo.errors import (
    EmptyInputError,
    InvalidInputError,
    MissingModelFilesError,
    ModelLoadError,
    ResourceLimitError,
)
from flagdemo.models.visual.eva import rotary_tables
from flagdemo.models.visual.images import ImageInputError, load_image, preprocess
from flagdemo.models.visual.model import Visualized_BGE, checkpoint_shapes, variant_for

BASE = load_golden("visual_bge_base")
# Every base case one at a time through encode(), and the bge-m3 variant (~3.5 GB of weights, minutes on 2 cores):
# are marked ``full_golden``: `make golden-family-check` runs them, and `make test` (which deselects them, so none is
# skipped) replays every base item batched.
FULL = pytest.mark.full_golden
ENCODE_SUBSET = ("base-image-shapes-rgba.png", "base-image-text-noise.jpg", "base-text-1")


def _weights(golden: dict) -> dict[str, torch.Tensor]:
    """The seeded checkpoint, rebuilt from flagdemo's own parameter list and checked against the golden header."""
    header = golden["header"]
    folder = ASSETS / header["variant"]["bge"]
    shapes = checkpoint_shapes(str(folder))
    recorded = header["weights"]["shapes"]
    assert shape_list(shapes) == recorded, (
        "flagdemo's Visualized-BGE parameters differ from the reference's: "
        f"missing {sorted(set(recorded) - set(shapes))[:5]}, extra {sorted(set(shapes) - set(recorded))[:5]}"
    )
    state = seeded_state_dict(shapes, rotary_tables(variant_for(header["variant"]["bge"]).eva))
    assert checksum(state) == header["weights"]["checksum"], "the seeded weights differ from the goldens' weights"
    return state


def _build(golden: dict) -> Visualized_BGE:
    folder = ASSETS / golden["header"]["variant"]["bge"]
    return Visualized_BGE(str(folder), _weights(golden), from_pretrained=str(folder))


@pytest.fixture(scope="module")
def base_model():
    return _build(BASE)


def _image(name: str | None):
    return None if name is None else str(IMAGES / name)


def _items(golden: dict) -> list[tuple[str | None, str | None]]:
    return [(_image(case["kwargs"].get("image")), case["kwargs"].get("text")) for case in golden["cases"]]


def _check_rows(golden: dict, vectors: torch.Tensor) -> None:
    """Every single-item case's recorded (1, D) vector against the matching row of a batch result."""
    tolerance = golden["header"]["tolerance"]
    problems = []
    for case, row in zip(golden["cases"], vectors, strict=True):
        comparison = compare(case["result"], row[None], tolerance)
        if not comparison.ok or comparison.n_numbers == 0:
            problems.append(f"{case['id']}: {comparison.summary()}")
    assert not problems, "flagdemo differs from FlagEmbedding 1.2.11:\n" + "\n".join(problems)


def test_golden_files_match_the_assets():
    header = BASE["header"]
    assert header["versions"]["FlagEmbedding"] == "1.2.11"
    assert header["reference"] == "FlagEmbedding.visual.modeling.Visualized_BGE"
    assert header["weights"]["rotary_max_abs_diff_vs_eva"] <= 1e-6
    assert not changed_files(IMAGES, header["images"]), "tests/family/images changed: rerun make golden-family"
    folder = ASSETS / "bge-base-en-v1.5"
    assert not changed_files(folder, header["models"]["bge-base-en-v1.5"]["files"])
    kinds = {tuple(sorted(case["kwargs"])) for case in BASE["cases"]}
    assert kinds == {("image",), ("image", "text"), ("text",)}


def test_tokenizer_gives_the_reference_ids(base_model):
    for sample in BASE["tokenization"]:
        assert base_model.tokenizer(sample["text"])["input_ids"] == sample["input_ids"], sample["text"]


@pytest.mark.parametrize("name", sorted(BASE["preprocessing"]))
def test_preprocessing_matches_eva_clips_transform(name):
    recorded = BASE["preprocessing"][name]
    pixels = preprocess(load_image(IMAGES / name).image)
    assert list(pixels.shape) == recorded["shape"]
    flat = pixels.reshape(-1)
    torch.testing.assert_close(flat[recorded["positions"]], torch.tensor(recorded["values"]), atol=1e-6, rtol=0)
    sums = pixels.double().sum(dim=(1, 2))
    torch.testing.assert_close(sums, torch.tensor(recorded["channel_sums"], dtype=torch.float64), atol=1e-3, rtol=0)


def test_every_recorded_item_matches_through_the_batch_helper(base_model):
    items = [item for item in _items(BASE) if not isinstance(item[1], list)]
    cases = [case for case in BASE["cases"] if not isinstance(case["kwargs"].get("text"), list)]
    vectors = base_model.encode_items(items, batch_size=8)
    _check_rows({**BASE, "cases": cases}, vectors)


@pytest.mark.parametrize("case_id", ENCODE_SUBSET)
def test_encode_matches_one_item_at_a_time(base_model, case_id):
    case = next(case for case in BASE["cases"] if case["id"] == case_id)
    kwargs = {**case["kwargs"], "image": _image(case["kwargs"].get("image"))}
    result = base_model.encode(**{key: value for key, value in kwargs.items() if value is not None})
    comparison = compare(case["result"], result, BASE["header"]["tolerance"])
    assert comparison.ok and comparison.n_numbers == 768, comparison.summary()


def test_padded_text_batch_matches(base_model):
    case = next(case for case in BASE["cases"] if case["id"] == "base-text-batch-padded")
    comparison = compare(case["result"], base_model.encode(text=case["kwargs"]["text"]), 1e-5)
    assert comparison.ok, comparison.summary()


@pytest.mark.slow
@FULL
@pytest.mark.parametrize("case", BASE["cases"], ids=[case["id"] for case in BASE["cases"]])
def test_every_case_through_encode(base_model, case):
    kwargs = {**case["kwargs"], "image": _image(case["kwargs"].get("image"))}
    result = base_model.encode(**{key: value for key, value in kwargs.items() if value is not None})
    assert compare(case["result"], result, BASE["header"]["tolerance"]).ok


def test_too_many_tokens_is_a_sentence(base_model):
    assert base_model.text_token_limit(with_image=True) == 512 - 196
    assert base_model.text_token_limit(with_image=False) == 512
    long_text = "word " * 400  # 402 tokens with [CLS] and [SEP]
    with pytest.raises(
        InvalidInputError,
        match=r"^The text has 402 tokens; bge-base-en-v1.5 has room for at most 316 "
        r"next to the image's 196 tokens",
    ):
        base_model.encode(image=str(IMAGES / "shapes-rgb.png"), text=long_text)
    assert base_model.encode(text=long_text).shape == (1, 768)
    with pytest.raises(InvalidInputError, match=r"Text 2 has 802 tokens; .* at most 512\. Shorten it\."):
        base_model.encode_items([(None, "short"), (None, long_text * 2)])


def test_bad_calls_are_sentences(base_model, tmp_path):
    with pytest.raises(InvalidInputError, match="Give an image, a text, or both"):
        base_model.encode()
    with pytest.raises(InvalidInputError, match="Item 2 has neither an image nor a text"):
        base_model.encode_items([(None, "a"), (None, None)])
    with pytest.raises(ImageInputError, match=r"Image 1 is not an image"):
        base_model.encode_items([(b"not an image", None)])
    with pytest.raises(InvalidInputError, match=r"must contain 'bge-base-en-v1\.5' or 'bge-m3'"):
        Visualized_BGE("BAAI/bge-large-en-v1.5", {})
    with pytest.raises(InvalidInputError, match="inference only"):
        Visualized_BGE(str(ASSETS / "bge-base-en-v1.5"), {}, negatives_cross_device=True)


def test_wrong_weights_are_refused_with_what_is_wrong(tmp_path):
    folder = str(ASSETS / "bge-base-en-v1.5")
    bogus = tmp_path / "bogus.pth"
    torch.save({"visual_proj.weight": torch.zeros(768, 768), "something.else": torch.zeros(2)}, bogus)
    with pytest.raises(
        ModelLoadError,
        match=r"do not fit Visualized-BGE bge-base-en-v1\.5 \+ EVA02-CLIP-B-16: keys "
        r"\d+ missing .*; 1 unexpected \(e\.g\. something\.else\)",
    ):
        Visualized_BGE(folder, str(bogus))
    with pytest.raises(MissingModelFilesError, match="does not exist"):
        Visualized_BGE(folder, str(tmp_path / "absent.pth"))
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a readable PyTorch weight file"):
        Visualized_BGE(folder, str(tmp_path / "text.pth"))


def test_offline_without_weights_says_what_to_download(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(
        MissingModelFilesError,
        match=r"needs Visualized_m3\.pth from BAAI/bge-visualized; the hub is "
        "offline",
    ):
        Visualized_BGE(str(ASSETS / "bge-m3"), None)


def test_mixed_items_give_vectors_and_thumbnails(base_model):
    images = [str(IMAGES / "shapes-rgb.png"), ("the house", str(IMAGES / "large-scene.jpg"))]
    items = make_items(images, ["a red circle", "Find a picture of a house."], image_texts=[None, "a small house"])
    assert [item.kind for item in items] == ["image", "image + text", "text", "text"]
    encoded = encode_mixed(base_model, items)
    assert encoded.vectors.shape == (4, 768) and encoded.vectors.dtype == np.float32
    golden = {case["id"]: case for case in BASE["cases"]}
    expected = [golden["base-image-shapes-rgb.png"], None, golden["base-text-0"], golden["base-text-1"]]
    for row, case in zip(encoded.vectors, expected, strict=True):
        if case is not None:
            assert compare(case["result"], torch.from_numpy(row)[None], 1e-5).ok, case["id"]
    assert encoded.thumbnails[0].startswith("data:image/png;base64,") and encoded.thumbnails[2] is None
    assert encoded.labels[:2] == ["shapes-rgb.png", "the house"]
    assert encoded.descriptions[1] == "JPEG, 1200 x 900, RGB"
    similarity = mixed_similarity(encoded)
    np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-5)
    assert encoded.rows()[3]["kind"] == "text" and encoded.rows()[0]["dims"] == 768


def test_mixed_item_limits(monkeypatch):
    monkeypatch.setenv("FLAGDEMO_MAX_IMAGES", "1")
    picture = str(IMAGES / "shapes-rgb.png")
    with pytest.raises(
        ResourceLimitError,
        match=r"There are 2 images; one request takes at most 1 "
        r"\(FLAGDEMO_MAX_IMAGES\)",
    ):
        make_items([picture, picture])
    with pytest.raises(EmptyInputError, match="at least one image or one text"):
        make_items([], [])
    with pytest.raises(InvalidInputError, match="1 images but 2 image texts"):
        make_items([picture], image_texts=["a", "b"])


def test_bundled_choices_and_llm_tasks():
    choices = bundled_choices()
    assert len(choices) == 12 and all(Path(path).is_file() for _, path in choices)
    assert ("a red circle", str(Path(choices[0][1]).parent / "red-circle.png")) in choices
    assert llm_embedder_tasks()[0] == ("qa: question answering", "qa") and len(llm_embedder_tasks()) == 6
    assert llm_embedder_instruction("tool", "key") == "Transform this tool description for retrieval: "
    assert [key for _, key in visualized_choices()] == ["bge-visualized-base-en-v1.5", "bge-visualized-m3"]


@pytest.mark.slow
@FULL
def test_m3_variant_matches_flagembedding():
    """bge-m3 + EVA02-CLIP-L/14 on ~870 M seeded parameters (~3.5 GB): every recorded item, through the batch helper
    and, for one fused item and one text batch, through ``encode``."""
    golden = load_golden("visual_bge_m3")
    header = golden["header"]
    assert header["variant"] == {"bge": "bge-m3", "eva": "EVA02-CLIP-L-14", "image_tokens": 256}
    assert not changed_files(ASSETS / "bge-m3", header["models"]["bge-m3"]["files"])
    model = _build(golden)
    for sample in golden["tokenization"]:
        assert model.tokenizer(sample["text"])["input_ids"] == sample["input_ids"], sample["text"]
    single = [case for case in golden["cases"] if not isinstance(case["kwargs"].get("text"), list)]
    _check_rows({**golden, "cases": single}, model.encode_items(_items({"cases": single}), batch_size=4))
    for case in golden["cases"]:
        if case["id"] in ("m3-image-text-shapes-rgba.png", "m3-text-batch-padded"):
            kwargs = {**case["kwargs"], "image": _image(case["kwargs"].get("image"))}
            result = model.encode(**{key: value for key, value in kwargs.items() if value is not None})
            assert compare(case["result"], result, header["tolerance"]).ok, case["id"]
