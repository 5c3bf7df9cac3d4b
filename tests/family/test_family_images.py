"""Images for Visualized-BGE: every bad input is a sentence, limits come from the environment, and the bundled CC0
set is what its drawing script makes."""

from __future__ import annotations

import base64
import io
import json

import pytest
from family_goldens import IMAGES
from PIL import Image

from flagdemo.errors import InvalidInputError, ResourceLimitError
from flagdemo.models.visual import drawing
from flagdemo.models.visual.images import (
    IMAGE_SIZE,
    ImageInputError,
    load_image,
    preprocess,
    resized_size,
    thumbnail_data_uri,
)


def _png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=options.pop("format", "PNG"), **options)
    return buffer.getvalue()


def test_not_an_image_is_a_sentence():
    with pytest.raises(ImageInputError, match=r"^The image is not an image PIL can read"):
        load_image(b"just some text, certainly not a PNG")


def test_truncated_image_is_a_sentence():
    data = (IMAGES / "noise.jpg").read_bytes()
    with pytest.raises(ImageInputError, match="damaged or truncated"):
        load_image(data[: len(data) // 2], "photo.jpg")


def test_animated_image_is_refused():
    frames = [Image.new("RGB", (32, 32), color) for color in ("red", "blue", "green")]
    data = _png(frames[0], format="GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ImageInputError, match=r"animated \(3 frames\)"):
        load_image(data)
    with pytest.raises(ImageInputError, match="animated"):
        load_image(_png(frames[0], format="PNG", save_all=True, append_images=frames[1:]))


@pytest.mark.parametrize("size", [(1, 1), (7, 300)])
def test_tiny_image_is_refused(size):
    with pytest.raises(ImageInputError, match=r"at least 8 pixels on each side \(FLAGDEMO_MIN_IMAGE_SIDE\)"):
        load_image(_png(Image.new("RGB", size)))


def test_too_many_pixels_is_refused_before_decoding():
    with pytest.raises(ResourceLimitError, match=r"30\.0 megapixels\); the limit is 25 megapixels"):
        load_image(_png(Image.new("1", (6000, 5000))))


def test_a_decompression_bomb_is_refused():
    with pytest.raises(ResourceLimitError, match="declares so many pixels"):
        load_image(_png(Image.new("1", (20000, 20000))))


def test_elongated_image_is_refused():
    with pytest.raises(ImageInputError, match=r"100 times longer than wide.*FLAGDEMO_MAX_IMAGE_ASPECT"):
        load_image(_png(Image.new("RGB", (1000, 10))))


def test_limits_are_environment_settings(monkeypatch, tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(_png(Image.new("RGB", (100, 100))))
    monkeypatch.setenv("FLAGDEMO_MAX_IMAGE_MB", "0.0001")
    with pytest.raises(ResourceLimitError, match=r"at most 0\.0001 MB \(FLAGDEMO_MAX_IMAGE_MB\)"):
        load_image(path)
    monkeypatch.setenv("FLAGDEMO_MAX_IMAGE_MB", "10")
    monkeypatch.setenv("FLAGDEMO_MIN_IMAGE_SIDE", "200")
    with pytest.raises(ImageInputError, match="at least 200 pixels"):
        load_image(path)
    monkeypatch.setenv("FLAGDEMO_MIN_IMAGE_SIDE", "none")
    with pytest.raises(InvalidInputError, match="FLAGDEMO_MIN_IMAGE_SIDE must be a whole number"):
        load_image(path)


def test_missing_and_empty_files_are_sentences(tmp_path):
    with pytest.raises(ImageInputError, match="could not be read"):
        load_image(tmp_path / "nowhere.png")
    with pytest.raises(ImageInputError, match="empty file"):
        load_image(b"")
    with pytest.raises(ImageInputError, match="not int"):
        load_image(12)


def test_resize_follows_torchvisions_rule():
    assert resized_size(160, 160) == (224, 224)
    assert resized_size(224, 300) == (224, 300)  # short side already 224: untouched
    assert resized_size(333, 250) == (298, 224)  # int(224 * 333 / 250) = 298
    assert resized_size(90, 400) == (224, 995)
    assert preprocess(load_image(IMAGES / "wide.png").image).shape == (3, IMAGE_SIZE, IMAGE_SIZE)


def test_alpha_as_the_reference_treats_it():
    """PIL resizes RGBA premultiplied (a transparent pixel turns black), then the alpha channel is dropped."""
    transparent_red = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    assert preprocess(transparent_red).equal(preprocess(Image.new("RGB", (64, 64), "black")))
    unresized = Image.new("RGBA", (224, 224), (255, 0, 0, 0))
    assert preprocess(unresized).equal(preprocess(Image.new("RGB", (224, 224), (255, 0, 0))))


def test_thumbnail_is_a_small_png_data_uri():
    uri = thumbnail_data_uri(load_image(IMAGES / "large-scene.jpg").image)
    assert uri.startswith("data:image/png;base64,")
    thumb = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert thumb.format == "PNG" and max(thumb.size) == 96 and thumb.size == (96, 72)


def test_bundled_set_is_what_the_script_draws(tmp_path):
    captions = json.loads((drawing.BUNDLED_DIR / "captions.json").read_text())
    assert captions["license"].startswith("CC0-1.0")
    names = sorted(path.name for path in drawing.BUNDLED_DIR.glob("*.png"))
    assert names == sorted(captions["images"]) and len(names) == 12
    redrawn = drawing.write_bundled(tmp_path)
    for path in redrawn:
        original = drawing.BUNDLED_DIR / path.name
        assert Image.open(path).tobytes() == Image.open(original).tobytes(), path.name
        assert load_image(original).image.size == (drawing.SIDE, drawing.SIDE)
