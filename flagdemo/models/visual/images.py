"""Opening, checking and preprocessing images for Visualized-BGE, and thumbnails for tables and hovers.

Preprocessing is EVA-CLIP's validation transform, step for step on PIL as torchvision does it: bicubic resize of the
short side to 224 (the long side to ``int(224 x long / short)``; no resize when the short side is already 224),
a centre crop of 224 x 224, conversion to RGB *after* the crop (PIL resizes RGBA premultiplied, so transparent
pixels turn dark, and the alpha channel is then dropped, not composited on white; a palette image is resized with
nearest neighbours, as PIL does), scaling to [0, 1] and normalisation with OpenAI CLIP's mean and std. EXIF
orientation is not applied, as in the reference.

Every image is checked against the limits in flagdemo/limits.py before its pixels are decoded; every refusal is a
sentence (ImageInputError).
"""

from __future__ import annotations

import base64
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from flagdemo import limits
from flagdemo.errors import InvalidInputError, ResourceLimitError
from flagdemo.models.visual.eva import OPENAI_MEAN, OPENAI_STD

IMAGE_SIZE = 224
THUMBNAIL_SIDE = 96
ImageInput = str | os.PathLike | bytes | IO[bytes] | Image.Image


class ImageInputError(InvalidInputError):
    """An image that cannot or may not be used; the message says which and why."""


@dataclass(frozen=True)
class LoadedImage:
    """A checked, decoded image and a short description of it for people (``PNG, 640 x 480, RGBA``)."""

    image: Image.Image
    label: str

    @property
    def description(self) -> str:
        image = self.image
        kind = image.format or "image"
        return f"{kind}, {image.width} x {image.height}, {image.mode}"


def _read_bytes(source: Any, label: str) -> bytes:
    limit_mb = limits.MAX_IMAGE_MB.value()
    limit = int(limit_mb * 2**20)
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > limit:
                raise ResourceLimitError(
                    f"{label} has {size / 2**20:.1f} MB; one image may have at most {limit_mb:g} MB "
                    f"({limits.MAX_IMAGE_MB.env})."
                )
            data = path.read_bytes()
        except ResourceLimitError:
            raise
        except OSError:
            raise ImageInputError(f"{label} could not be read: no such file, or it is not readable.") from None
    elif hasattr(source, "read"):
        data = source.read(limit + 1)
        if not isinstance(data, bytes):
            raise ImageInputError(f"{label} must be opened in binary mode.")
    else:
        raise ImageInputError(
            f"{label} must be a file path, bytes, a binary file or a PIL image, not {type(source).__name__}."
        )
    if len(data) > limit:
        raise ResourceLimitError(
            f"{label} has more than {limit_mb:g} MB; one image may have at most {limit_mb:g} MB "
            f"({limits.MAX_IMAGE_MB.env})."
        )
    if not data:
        raise ImageInputError(f"{label} is an empty file, not an image.")
    return data


def check_dimensions(width: int, height: int, label: str) -> None:
    """Refuse images too small to show anything, too large to decode safely, or too elongated to centre-crop."""
    shortest, longest = min(width, height), max(width, height)
    min_side = int(limits.MIN_IMAGE_SIDE.value())
    if shortest < min_side:
        raise ImageInputError(
            f"{label} is {width} x {height} pixels; an image needs at least {min_side} pixels on each side "
            f"({limits.MIN_IMAGE_SIDE.env}) to show anything once scaled to {IMAGE_SIZE} x {IMAGE_SIZE}."
        )
    megapixels = width * height / 1e6
    max_megapixels = limits.MAX_IMAGE_MEGAPIXELS.value()
    if megapixels > max_megapixels:
        raise ResourceLimitError(
            f"{label} is {width} x {height} pixels ({megapixels:.1f} megapixels); the limit is {max_megapixels:g} "
            f"megapixels ({limits.MAX_IMAGE_MEGAPIXELS.env}). The model sees it at {IMAGE_SIZE} x {IMAGE_SIZE} "
            "anyway: scale it down."
        )
    max_aspect = limits.MAX_IMAGE_ASPECT.value()
    if longest / shortest > max_aspect:
        raise ImageInputError(
            f"{label} is {width} x {height} pixels, {longest / shortest:.0f} times longer than wide; the model sees "
            f"only its centre square, so at most {max_aspect:g}:1 is accepted ({limits.MAX_IMAGE_ASPECT.env})."
        )


def load_image(source: ImageInput, label: str = "The image") -> LoadedImage:
    """Read and fully decode one image, or refuse it with a sentence (not an image, truncated, animated, too big,
    too small, too elongated). A PIL image is checked the same way and used as it is."""
    if isinstance(source, Image.Image):
        check_dimensions(source.width, source.height, label)
        return LoadedImage(source, label)
    data = _read_bytes(source, label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, ValueError):
        raise ImageInputError(f"{label} is not an image PIL can read (PNG, JPEG, GIF, WebP, BMP, TIFF ...).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ResourceLimitError(
            f"{label} declares so many pixels that decoding it is refused ({limits.MAX_IMAGE_MEGAPIXELS.env} "
            "bounds the size of an image)."
        ) from None
    if getattr(image, "n_frames", 1) > 1:
        raise ImageInputError(
            f"{label} is animated ({image.n_frames} frames); use a still image (for example one frame saved as PNG)."
        )
    check_dimensions(image.width, image.height, label)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageInputError(f"{label} is damaged or truncated and cannot be decoded ({error}).") from None
    return LoadedImage(image, label)


def resized_size(width: int, height: int, size: int = IMAGE_SIZE) -> tuple[int, int]:
    """torchvision's ``Resize(size)`` for one int: the short side becomes ``size``, the long side is truncated."""
    short, long = (width, height) if width <= height else (height, width)
    if short == size:
        return width, height
    new_long = int(size * long / short)
    return (size, new_long) if width <= height else (new_long, size)


def preprocess(image: Image.Image, size: int = IMAGE_SIZE) -> torch.Tensor:
    """EVA-CLIP's validation transform: (3, size, size) float32, normalised with OpenAI CLIP's mean and std."""
    width, height = resized_size(image.width, image.height, size)
    if (width, height) != image.size:
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    top = round((height - size) / 2.0)  # torchvision's centre crop: Python's round, half to even
    left = round((width - size) / 2.0)
    image = image.crop((left, top, left + size, top + size)).convert("RGB")
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()
    pixels = pixels.to(torch.float32).div(255)
    mean = torch.tensor(OPENAI_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(OPENAI_STD, dtype=torch.float32)[:, None, None]
    return pixels.sub(mean).div(std)


def thumbnail_data_uri(image: Image.Image, side: int = THUMBNAIL_SIDE) -> str:
    """A small PNG of the image as a ``data:`` URI, for tables and plot hovers (transparency kept)."""
    thumb = image.copy()
    if thumb.mode not in ("RGB", "RGBA", "L", "LA"):
        thumb = thumb.convert("RGBA")
    thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
