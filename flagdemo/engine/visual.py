"""Engine-level helpers the app's tabs call for the rest of the family (no gradio here).

Visualized-BGE: ``load_visualized`` (one model per variant and weight file, shared through MODEL_CACHE),
``make_items`` (uploads, bundled pictures and text lines → checked items, each image, text or both),
``encode_mixed`` (vectors + labels + thumbnails for tables and hovers) and ``mixed_similarity`` (a heatmap
matrix over image and text items together). ``visual_entry`` / ``visual_unavailable`` / ``load_catalog_model``
serve the two catalog entries to the app: from a folder named as the entry under the models folder
(FLAGDEMO_MODELS_DIR: the variant's .pth, plus the BGE config and tokenizer), else from the hub. LLM-Embedder:
``llm_embedder_tasks`` and ``llm_embedder_instruction`` for a Task choice.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flagdemo import limits
from flagdemo.errors import EmptyInputError, InvalidInputError
from flagdemo.models import catalog
from flagdemo.models.cache import MODEL_CACHE
from flagdemo.models.embedders.llm_embedder import TASKS, task_instruction
from flagdemo.models.resolve import ModelNotDownloadedError
from flagdemo.models.visual.drawing import BUNDLED_DIR, bundled_images
from flagdemo.models.visual.images import ImageInput, LoadedImage, load_image, thumbnail_data_uri
from flagdemo.models.visual.model import VARIANTS, Visualized_BGE, variant_for

KINDS = ("image", "text", "image + text")


@dataclass(frozen=True)
class MixedItem:
    """One thing to embed: an image, a text, or an image with its text (fused)."""

    label: str
    image: LoadedImage | None = None
    text: str | None = None

    @property
    def kind(self) -> str:
        if self.image is None:
            return "text"
        return "image" if self.text is None else "image + text"


@dataclass(frozen=True)
class MixedEncoding:
    """Vectors (N, D) float32 in item order, with what a table or hover shows for each item."""

    vectors: np.ndarray
    labels: list[str]
    kinds: list[str]
    texts: list[str | None]
    thumbnails: list[str | None]  # data:image/png;base64,... or None for text items
    descriptions: list[str]  # "PNG, 640 x 480, RGBA" or "text, 12 characters"
    seconds: float

    def rows(self) -> list[dict[str, object]]:
        """One dict per item for a results table (the thumbnail as a data URI, the vector's first values)."""
        return [
            {
                "item": label,
                "kind": kind,
                "thumbnail": thumbnail,
                "text": text,
                "input": description,
                "dims": int(self.vectors.shape[1]),
                "first values": ", ".join(f"{value:+.4f}" for value in self.vectors[index, :4]),
            }
            for index, (label, kind, thumbnail, text, description) in enumerate(
                zip(self.labels, self.kinds, self.thumbnails, self.texts, self.descriptions, strict=True)
            )
        ]


def visualized_choices() -> list[tuple[str, str]]:
    """(label, catalog key) for the two Visualized-BGE variants."""
    return [(f"Visualized-BGE ({variant.description})", variant.catalog_key) for variant in VARIANTS]


def load_visualized(
    model_name_bge: str, model_weight: str | os.PathLike | None = None, *, from_pretrained: str | None = None
) -> Visualized_BGE:
    """One shared Visualized_BGE per (BGE name, weight file, config folder); ``model_weight`` None = the hub's file."""
    variant = variant_for(model_name_bge)
    weight = None if model_weight is None else str(Path(model_weight).expanduser().resolve())
    key = ("visualized-bge", model_name_bge, weight, from_pretrained)

    def load() -> Visualized_BGE:
        return Visualized_BGE(model_name_bge, weight, from_pretrained=from_pretrained)

    return MODEL_CACHE.get_or_load(key, load, describe=f"Visualized-BGE ({variant.description})")


def visual_entry(name: object) -> catalog.CatalogEntry | None:
    """The Visualized-BGE catalog entry chosen by its exact key (both share one hub id), else None."""
    entry = catalog.lookup(name, "embedder") if isinstance(name, str) else None
    return entry if entry is not None and entry.model_class == "visualized-bge" and name == entry.key else None


def _variant(entry: catalog.CatalogEntry):
    return next(variant for variant in VARIANTS if variant.catalog_key == entry.key)


def visual_unavailable(entry: catalog.CatalogEntry) -> str:
    """Why a Visualized-BGE entry cannot load here ('' when it can)."""
    if catalog.location(entry) is not None:
        return ""
    variant = _variant(entry)
    return (
        f"{entry.key} needs {entry.weight_file} from {entry.hub_id} and {variant.bge_name}'s config and tokenizer, "
        "and the Hugging Face hub cannot be reached from here. Download them on a machine with internet access and "
        f"put them in a folder named {entry.key} in the models folder, as docs/models.md's section on Visualized-BGE "
        "explains."
    )


def load_catalog_model(entry: catalog.CatalogEntry) -> Visualized_BGE:
    """The entry's model: from its local folder (the .pth, with the BGE config and tokenizer beside it, else the
    BGE model's own hub files), or the hub's .pth and BGE files."""
    variant = _variant(entry)
    where = catalog.location(entry)
    if where is None:
        raise ModelNotDownloadedError(visual_unavailable(entry))
    folder = catalog.local_dir(entry) if where == "local" else None
    if folder is None:
        return load_visualized(f"BAAI/{variant.bge_name}")
    if (folder / "config.json").is_file():
        return load_visualized(variant.bge_name, folder / variant.weight_file, from_pretrained=str(folder))
    return load_visualized(f"BAAI/{variant.bge_name}", folder / variant.weight_file)


def bundled_choices() -> list[tuple[str, str]]:
    """(caption, path) of the bundled CC0 pictures, for a picker when nothing is uploaded."""
    return [(caption, str(BUNDLED_DIR / name)) for name, caption in bundled_images().items()]


def bundled_picture(name: object) -> tuple[str, Path]:
    """(label, file) of a bundled picture chosen by its file name; any other name (a path above all) is refused."""
    pictures = bundled_images()
    if not isinstance(name, str) or name not in pictures:
        raise InvalidInputError(
            f"There is no bundled picture called {str(name)[:60]!r}; choose among: {', '.join(sorted(pictures))}."
        )
    return name, BUNDLED_DIR / name


def make_items(
    images: Sequence[ImageInput | tuple[str, ImageInput]] = (),
    texts: Sequence[str] = (),
    *,
    image_texts: Sequence[str | None] | None = None,
) -> list[MixedItem]:
    """Checked items: every image (a path, bytes, PIL image, or (label, image)), fused with ``image_texts[i]`` when
    given and not blank, then every text line. Refuses too many images or texts, and any bad image, with a
    sentence naming it."""
    images, texts = list(images), list(texts)
    if image_texts is not None and len(image_texts) != len(images):
        raise InvalidInputError(f"There are {len(images)} images but {len(image_texts)} image texts; give one each.")
    if not images and not texts:
        raise EmptyInputError("Give at least one image or one text.")
    limits.check_count(len(images), limits.MAX_IMAGES, "images")
    limits.check_texts(texts)
    if image_texts is not None:
        limits.check_text_lengths([text for text in image_texts if text], "image text")
    items = []
    for index, entry in enumerate(images):
        label, source = entry if isinstance(entry, tuple) else (_image_label(entry, index), entry)
        text = image_texts[index] if image_texts is not None else None
        text = text if text and text.strip() else None
        items.append(MixedItem(label, load_image(source, f"Image {index + 1} ({label})"), text))
    items += [MixedItem(_text_label(text), None, text) for text in texts]
    return items


def encode_mixed(model: Visualized_BGE, items: Sequence[MixedItem], *, batch_size: int = 8) -> MixedEncoding:
    """Embed image, text and fused items with one Visualized-BGE model; vectors are L2-normalised float32."""
    import time

    if not items:
        raise EmptyInputError("Give at least one image or one text.")
    started = time.perf_counter()
    vectors = model.encode_items([(item.image, item.text) for item in items], batch_size=batch_size)
    return MixedEncoding(
        vectors=vectors.float().numpy(),
        labels=[item.label for item in items],
        kinds=[item.kind for item in items],
        texts=[item.text for item in items],
        thumbnails=[None if item.image is None else thumbnail_data_uri(item.image.image) for item in items],
        descriptions=[
            item.image.description if item.image is not None else f"text, {len(item.text or '')} characters"
            for item in items
        ],
        seconds=time.perf_counter() - started,
    )


def mixed_similarity(queries: MixedEncoding, candidates: MixedEncoding | None = None) -> np.ndarray:
    """Cosine similarities (dot products of the normalised vectors): queries x candidates, or all x all."""
    other = queries if candidates is None else candidates
    return queries.vectors @ other.vectors.T


def llm_embedder_tasks() -> list[tuple[str, str]]:
    """(label, task) for a Task dropdown: ``("qa: question answering", "qa")`` ..."""
    return [(f"{item.task}: {item.label}", item.task) for item in TASKS.values()]


def llm_embedder_instruction(task: str, role: str) -> str:
    """The instruction LLM-Embedder puts before a query (role 'query') or a key ('key') for ``task``."""
    return task_instruction(task, role)


def _image_label(source: object, index: int) -> str:
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    return f"image {index + 1}"


def _text_label(text: str, width: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
