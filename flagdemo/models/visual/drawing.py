"""The images flagdemo draws itself: a bundled CC0 set for the app, and the golden test images.

Everything is drawn here with PIL from fixed coordinates, colours and seeds, so the files are the project's own
work (dedicated to the public domain, CC0 1.0) and a rerun writes the same pixels with the same Pillow.

    python -m flagdemo.models.visual.drawing            # rewrites flagdemo/data/images/ and tests/family/images/

The bundled set (flagdemo/data/images/, small PNGs with captions.json) gives the app something to embed offline;
the test set (tests/family/images/) covers what preprocessing must get right: PNG and JPEG; RGB, RGBA, greyscale,
grey + alpha and palette images; sizes below, at and above 224 px; wide and tall.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PACKAGE = Path(__file__).resolve().parents[2]  # flagdemo/
REPO = PACKAGE.parent
BUNDLED_DIR = PACKAGE / "data" / "images"
TEST_DIR = REPO / "tests" / "family" / "images"
SIDE = 160
LICENSE = "CC0-1.0: drawn by flagdemo (python -m flagdemo.models.visual.drawing), dedicated to the public domain."


@dataclass(frozen=True)
class Drawing:
    """One picture: its file name, what it shows (its caption) and how to draw it."""

    name: str
    caption: str
    draw: Callable[[], Image.Image]


def _canvas(color: str = "white", size: tuple[int, int] = (SIDE, SIDE), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, color)


def _shape(kind: str, fill: str, background: str = "white") -> Callable[[], Image.Image]:
    def draw() -> Image.Image:
        image = _canvas(background)
        pen = ImageDraw.Draw(image)
        box = (30, 30, SIDE - 30, SIDE - 30)
        if kind == "circle":
            pen.ellipse(box, fill=fill, outline="black", width=3)
        elif kind == "square":
            pen.rectangle(box, fill=fill, outline="black", width=3)
        elif kind == "triangle":
            pen.polygon([(SIDE // 2, 25), (SIDE - 25, SIDE - 30), (25, SIDE - 30)], fill=fill, outline="black")
        elif kind == "star":
            centre, outer, inner = SIDE / 2, 62, 25
            points = [
                (
                    centre + (outer if i % 2 == 0 else inner) * math.sin(i * math.pi / 5),
                    centre - (outer if i % 2 == 0 else inner) * math.cos(i * math.pi / 5),
                )
                for i in range(10)
            ]
            pen.polygon(points, fill=fill, outline="black")
        return image

    return draw


def _word(text: str, color: str) -> Callable[[], Image.Image]:
    def draw() -> Image.Image:
        image = _canvas("white")
        pen = ImageDraw.Draw(image)
        font = ImageFont.load_default(size=56)
        pen.text((SIDE / 2, SIDE / 2), text, fill=color, font=font, anchor="mm")
        return image

    return draw


def _sunset() -> Image.Image:
    image = _canvas("#87ceeb")
    pen = ImageDraw.Draw(image)
    pen.rectangle((0, 100, SIDE, SIDE), fill="#1e5aa8")
    pen.ellipse((50, 55, 110, 115), fill="orange")
    pen.rectangle((0, 100, SIDE, SIDE), fill="#1e5aa8")  # the sea covers the lower half of the sun
    for y in range(108, SIDE, 12):
        pen.line((20, y, SIDE - 20, y), fill="#6fa8dc", width=2)
    return image


def _house() -> Image.Image:
    image = _canvas("#dff3d8")
    pen = ImageDraw.Draw(image)
    pen.rectangle((40, 75, 120, 135), fill="#f5deb3", outline="black", width=2)
    pen.polygon([(30, 78), (80, 35), (130, 78)], fill="#c0392b", outline="black")
    pen.rectangle((70, 100, 90, 135), fill="#8b4513")
    pen.rectangle((48, 88, 64, 102), fill="#add8e6", outline="black")
    return image


def _stripes() -> Image.Image:
    image = _canvas("white")
    pen = ImageDraw.Draw(image)
    for x in range(0, SIDE, 20):
        pen.rectangle((x, 0, x + 9, SIDE), fill="black")
    return image


def _checkerboard() -> Image.Image:
    cells = (np.indices((8, 8)).sum(axis=0) % 2).astype(np.uint8) * 255
    return Image.fromarray(np.kron(cells, np.ones((20, 20), dtype=np.uint8))).convert("RGB")


def _gradient() -> Image.Image:
    t = np.linspace(0.0, 1.0, SIDE)[None, :, None]
    start, end = np.array([110, 40, 160]), np.array([250, 130, 190])
    row = start + (end - start) * t
    return Image.fromarray(np.repeat(row, SIDE, axis=0).round().astype(np.uint8))


def _noise(seed: int, size: tuple[int, int] = (SIDE, SIDE)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))


BUNDLED: tuple[Drawing, ...] = (
    Drawing("red-circle.png", "a red circle", _shape("circle", "red")),
    Drawing("blue-square.png", "a blue square", _shape("square", "#1f5fd1")),
    Drawing("green-triangle.png", "a green triangle", _shape("triangle", "#2e9e44")),
    Drawing("yellow-star.png", "a yellow star on a dark background", _shape("star", "gold", background="#202040")),
    Drawing("sunset.png", "an orange sun setting over a blue sea", _sunset),
    Drawing("house.png", "a small house with a red roof", _house),
    Drawing("stripes.png", "black and white vertical stripes", _stripes),
    Drawing("checkerboard.png", "a black and white checkerboard", _checkerboard),
    Drawing("word-cat.png", "the word CAT written in black", _word("CAT", "black")),
    Drawing("word-dog.png", "the word DOG written in blue", _word("DOG", "#1f5fd1")),
    Drawing("gradient.png", "a purple to pink gradient", _gradient),
    Drawing("noise.png", "random coloured noise", lambda: _noise(7, (40, 40)).resize((SIDE, SIDE), Image.NEAREST)),
)


def _rgba_shapes() -> Image.Image:
    image = Image.new("RGBA", (200, 300), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.ellipse((20, 40, 180, 200), fill=(220, 30, 30, 255))
    pen.rectangle((60, 150, 190, 280), fill=(30, 90, 220, 128))
    return image


def _grey_text() -> Image.Image:
    image = Image.new("L", (224, 300), 235)
    pen = ImageDraw.Draw(image)
    pen.text((112, 150), "BGE", fill=20, font=ImageFont.load_default(size=64), anchor="mm")
    return image


def _grey_gradient() -> Image.Image:
    ramp = np.linspace(0, 255, 97)[None, :].repeat(61, axis=0)
    return Image.fromarray(ramp.round().astype(np.uint8), mode="L")


def _palette() -> Image.Image:
    return _shape("triangle", "purple")().resize((150, 150)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)


def _wide() -> Image.Image:
    image = _canvas("white", (640, 200))
    pen = ImageDraw.Draw(image)
    for i, color in enumerate(("red", "orange", "gold", "green", "blue", "purple")):
        pen.ellipse((20 + i * 100, 50, 110 + i * 100, 140), fill=color)
    return image


def _grey_alpha_tall() -> Image.Image:
    image = Image.new("LA", (90, 400), (255, 0))
    pen = ImageDraw.Draw(image)
    pen.rectangle((10, 40, 80, 360), fill=(60, 255))
    pen.ellipse((15, 150, 75, 210), fill=(200, 128))
    return image


def _large_scene() -> Image.Image:
    return _house().resize((1200, 900), Image.Resampling.BICUBIC)


TEST_SET: tuple[tuple[Drawing, dict], ...] = (
    (Drawing("shapes-rgb.png", "red circle, RGB, 160 x 160", _shape("circle", "red")), {}),
    (Drawing("shapes-rgba.png", "RGBA with transparency, 200 x 300", _rgba_shapes), {}),
    (Drawing("text-grey.png", "greyscale text, 224 x 300 (short side already 224)", _grey_text), {}),
    (Drawing("noise.jpg", "RGB noise, JPEG, 333 x 250", lambda: _noise(11, (333, 250))), {"quality": 90}),
    (Drawing("gradient-grey.jpg", "greyscale JPEG, 97 x 61 (upsampled)", _grey_gradient), {"quality": 95}),
    (Drawing("palette.png", "palette (P) PNG, 150 x 150", _palette), {}),
    (Drawing("wide.png", "wide RGB, 640 x 200", _wide), {}),
    (Drawing("tall-grey-alpha.png", "grey + alpha (LA), 90 x 400", _grey_alpha_tall), {}),
    (Drawing("large-scene.jpg", "large RGB JPEG, 1200 x 900", _large_scene), {"quality": 85}),
)


def write_bundled(folder: Path = BUNDLED_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for drawing in BUNDLED:
        path = folder / drawing.name
        drawing.draw().save(path, optimize=True)
        paths.append(path)
    captions = {"license": LICENSE, "images": {drawing.name: drawing.caption for drawing in BUNDLED}}
    (folder / "captions.json").write_text(json.dumps(captions, indent=1) + "\n", encoding="utf-8")
    return paths


def write_test_set(folder: Path = TEST_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for drawing, options in TEST_SET:
        path = folder / drawing.name
        drawing.draw().save(path, **options)
        paths.append(path)
    return paths


def bundled_images(folder: Path = BUNDLED_DIR) -> dict[str, str]:
    """The bundled images, file name → caption (what the app offers when no image is uploaded)."""
    return json.loads((folder / "captions.json").read_text(encoding="utf-8"))["images"]


if __name__ == "__main__":
    written = write_bundled() + write_test_set()
    for path in written:
        print(path.relative_to(REPO), path.stat().st_size, "bytes")
    sys.exit(0)
