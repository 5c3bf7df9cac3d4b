"""Visualized_BGE: FlagEmbedding 1.2's image + text embedder (research/visual_bge), natively on current torch.

Early fusion inside the text encoder, not two towers: the EVA02-CLIP vision tower turns a 224 x 224 image into
patch tokens; their CLS is dropped, the rest go through ``visual_proj`` (a hidden x hidden Linear), get the BGE
position embeddings of positions 1..N and the BGE embedding LayerNorm. The text goes through BGE's own embeddings
with position ids [0, N+1, N+2, ...]; the encoder reads [text CLS] + N image tokens + the text tokens after its CLS
(mask ones for the image tokens), and the CLS state, L2-normalised, is the embedding. An image alone is fused with
an empty prompt; a text alone is plain BGE. Two variants, chosen by the BGE name as in the reference:
``bge-base-en-v1.5`` with EVA02-CLIP-B/16 (196 image tokens) and ``bge-m3`` with EVA02-CLIP-L/14 (256).

Every weight, BGE's included, comes from the one ``.pth`` (``BAAI/bge-visualized``); the BGE checkpoint supplies
only its config and tokenizer. Runs in fp32 on every device, as the reference does. Numbers match FlagEmbedding
1.2.11's ``FlagEmbedding.visual.modeling.Visualized_BGE`` (golden parity in tests/family).

Deliberate differences: input errors are sentences (the reference asserts or crashes, e.g. on a text longer than
the position table, which it never truncates); ``encode()`` with neither image nor text refuses instead of
returning None; batch helpers (``encode_items`` ...) for the explorer; inference only (no training forward).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from flagdemo.errors import EmptyInputError, InvalidInputError, MissingModelFilesError, ModelLoadError
from flagdemo.models import catalog
from flagdemo.models.devices import resolve_device
from flagdemo.models.sources import ModelSource, load_tokenizer, resolve_source
from flagdemo.models.visual.eva import EVA02_B16, EVA02_L14, EvaConfig, EvaVisionTower
from flagdemo.models.visual.images import ImageInput, LoadedImage, load_image, preprocess

# The reference masks with float16's lowest value, whatever the compute dtype.
MASK_VALUE = torch.finfo(torch.float16).min
# Buffers older transformers saved with BERT's embeddings; the reference's strict load would refuse them, flagdemo
# drops them (they hold nothing the model learns).
IGNORED_CHECKPOINT_KEYS = ("bge_embeddings.position_ids", "bge_embeddings.token_type_ids")


@dataclass(frozen=True)
class Variant:
    """One of the two published pairings of a BGE text model with an EVA02-CLIP image tower."""

    bge_name: str
    eva: EvaConfig
    weight_file: str
    catalog_key: str

    @property
    def description(self) -> str:
        return f"{self.bge_name} + {self.eva.name}"


VARIANTS = (
    Variant("bge-base-en-v1.5", EVA02_B16, "Visualized_base_en_v1.5.pth", "bge-visualized-base-en-v1.5"),
    Variant("bge-m3", EVA02_L14, "Visualized_m3.pth", "bge-visualized-m3"),
)


def variant_for(model_name_bge: str) -> Variant:
    """The variant a BGE name selects (by substring, as the reference does); a sentence for anything else."""
    if isinstance(model_name_bge, str):
        for variant in VARIANTS:
            if variant.bge_name in model_name_bge:
                return variant
    names = " or ".join(repr(variant.bge_name) for variant in VARIANTS)
    raise InvalidInputError(
        f"Visualized-BGE exists for two text models only: model_name_bge must contain {names}, not {model_name_bge!r}."
    )


def _load_state_dict(model_weight: Any, variant: Variant) -> Mapping[str, torch.Tensor]:
    """The checkpoint as a state dict: a .pth path, a state dict, or None for the variant's file on the hub."""
    if isinstance(model_weight, Mapping):
        return model_weight
    if model_weight is None:
        model_weight = _download_weight(variant)
    if not isinstance(model_weight, str | os.PathLike):
        raise InvalidInputError(
            f"model_weight must be the path of a Visualized-BGE .pth file, not {type(model_weight).__name__}."
        )
    if not os.path.isfile(model_weight):
        raise MissingModelFilesError(
            f"The weight file {os.fspath(model_weight)!r} does not exist. Download {variant.weight_file} from "
            f"{catalog.VISUALIZED_HUB_ID} on the Hugging Face hub."
        )
    try:
        loaded = torch.load(model_weight, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        raise ModelLoadError(f"{os.fspath(model_weight)!r} is not a readable PyTorch weight file ({error}).") from None
    if not isinstance(loaded, Mapping):
        raise ModelLoadError(f"{os.fspath(model_weight)!r} holds a {type(loaded).__name__}, not a state dict.")
    return loaded


def _download_weight(variant: Variant) -> str:
    if catalog.hub_offline() and not catalog.in_hub_cache(catalog.VISUALIZED_HUB_ID, filename=variant.weight_file):
        raise MissingModelFilesError(
            f"Visualized-BGE ({variant.description}) needs {variant.weight_file} from {catalog.VISUALIZED_HUB_ID}; "
            "the hub is offline and it is not in the hub cache. Download it, then pass its path as model_weight."
        )
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(catalog.VISUALIZED_HUB_ID, variant.weight_file)
    except Exception as error:
        raise MissingModelFilesError(
            f"Downloading {variant.weight_file} from {catalog.VISUALIZED_HUB_ID} failed ({error})."
        ) from None


def _attach_modules(holder: nn.Module, variant: Variant, source: ModelSource) -> Any:
    """Give ``holder`` the checkpoint's five parts (BGE encoder, embeddings, pooler; EVA tower; visual_proj), with
    the BGE part built from its config alone; returns that config."""
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(source.path)
    except Exception as error:
        raise MissingModelFilesError(
            f"The BGE config of {source.name!r} could not be read ({error}); Visualized-BGE needs its config.json "
            "and tokenizer (from_pretrained= a local folder, or the hub)."
        ) from None
    width = variant.eva.width
    if int(config.hidden_size) != width:
        raise InvalidInputError(
            f"{source.name!r} has hidden size {config.hidden_size}, but {variant.description} fuses {width}-wide "
            f"image tokens; give the config of {variant.bge_name}."
        )
    from transformers.initialization import no_init_weights

    with no_init_weights():  # every weight comes from the checkpoint: skip seconds of random initialisation
        bge = AutoModel.from_config(config, attn_implementation="eager")
        holder.bge_encoder = bge.encoder
        holder.bge_embeddings = bge.embeddings
        holder.bge_pooler = bge.pooler
        holder.model_visual = EvaVisionTower(variant.eva)
        holder.visual_proj = nn.Linear(width, width)
    return config


def checkpoint_shapes(model_name_bge: str, from_pretrained: str | None = None) -> dict[str, torch.Size]:
    """Every tensor a checkpoint for this variant must hold, name → shape (built on the meta device: no memory)."""
    variant = variant_for(model_name_bge)
    holder = nn.Module()
    with torch.device("meta"):
        _attach_modules(holder, variant, resolve_source(from_pretrained or model_name_bge))
    return {name: tensor.shape for name, tensor in holder.state_dict().items()}


class Visualized_BGE(nn.Module):  # noqa: N801 - FlagEmbedding's public name
    """Images, texts, or both fused, embedded into a BGE model's space.

    ``model_name_bge`` picks the variant and (unless ``from_pretrained`` names a local folder) where the BGE config
    and tokenizer come from. ``model_weight``: a ``.pth`` path, an already loaded state dict, or None for the
    variant's file from the hub. ``devices`` (flagdemo's addition) as for the embedders; None picks CUDA when there.
    """

    def __init__(  # noqa: PLR0917 - FlagEmbedding's signature
        self,
        model_name_bge: str | None = None,
        model_weight: Any = None,
        normlized: bool = True,
        sentence_pooling_method: str = "cls",
        negatives_cross_device: bool = False,
        temperature: float = 0.02,
        from_pretrained: str | None = None,
        devices: str | int | None = None,
    ) -> None:
        super().__init__()
        started = time.perf_counter()
        self.variant = variant_for(model_name_bge)
        if sentence_pooling_method not in ("cls", "mean"):
            raise InvalidInputError(
                f"sentence_pooling_method must be 'cls' or 'mean', not {sentence_pooling_method!r}."
            )
        if negatives_cross_device:
            raise InvalidInputError(
                "negatives_cross_device gathers training negatives across processes; flagdemo runs Visualized-BGE "
                "for inference only, so leave it False."
            )
        self.model_name_bge = model_name_bge
        self.hidden_dim = self.variant.eva.width
        self.depth = self.variant.eva.depth
        self.normlized = bool(normlized)
        self.sentence_pooling_method = sentence_pooling_method
        self.negatives_cross_device = False
        self.temperature = float(temperature) if self.normlized else 1.0
        self.device = resolve_device(devices)
        self.source: ModelSource = resolve_source(from_pretrained or model_name_bge)
        weights = _load_state_dict(model_weight, self.variant)  # before building: a missing file costs nothing

        config = _attach_modules(self, self.variant, self.source)
        self.max_positions = int(config.max_position_embeddings)
        self.padding_idx = config.pad_token_id if config.model_type == "xlm-roberta" else None
        self.load_model(weights)

        self.tokenizer = load_tokenizer(self.source)
        self._tokenizer_lock = threading.Lock()
        self.to(self.device)
        self.eval()
        self.load_seconds = time.perf_counter() - started

    # --- construction -------------------------------------------------------------------------------------------
    def load_model(self, model_weight: Any) -> None:
        """Load every weight (BGE and EVA) from the checkpoint, strictly: a wrong file is a sentence."""
        state = dict(_load_state_dict(model_weight, self.variant))
        for key in IGNORED_CHECKPOINT_KEYS:
            state.pop(key, None)
        expected = self.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong_shape = sorted(
            key for key in set(expected) & set(state) if tuple(state[key].shape) != tuple(expected[key].shape)
        )
        if missing or unexpected or wrong_shape:
            details = []
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong_shape)):
                if keys:
                    details.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
            raise ModelLoadError(
                f"These weights do not fit Visualized-BGE {self.variant.description}: keys "
                + "; ".join(details)
                + f". Use {self.variant.weight_file} from {catalog.VISUALIZED_HUB_ID} for this model_name_bge."
            )
        # assign: the checkpoint's tensors become the parameters (no second copy in memory); then fp32, as the
        # reference's copy into its fp32 parameters would make them.
        self.load_state_dict(state, strict=True, assign=True)
        self.float()

    # --- FlagEmbedding's API ------------------------------------------------------------------------------------
    def encode(self, image: ImageInput | None = None, text: str | None = None) -> torch.Tensor:
        """One item: image and text fused, an image alone (empty prompt) or a text alone → (1, D), normalised.

        ``image``: a file path, bytes, a binary file or a PIL image. ``text`` alone may also be a list of texts
        (→ (N, D)).
        """
        if image is not None:
            pixels = preprocess(load_image(image).image).unsqueeze(0)
            if text is not None and not isinstance(text, str):
                raise InvalidInputError("With an image, text must be one string (the image's caption or query).")
            prompts = [text if text is not None else ""]
            return self.encode_mm(pixels.to(self.device), self._tokenize(prompts, image_tokens=self.image_tokens))
        if text is None:
            raise InvalidInputError("Give an image, a text, or both to encode.")
        texts = [text] if isinstance(text, str) else _text_list(text)
        return self.encode_text(self._tokenize(texts, image_tokens=0))

    @property
    def image_tokens(self) -> int:
        """How many image tokens the fusion inserts (the EVA patch count)."""
        return self.variant.eva.patches

    def encode_text(self, texts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Plain BGE on tokenized texts (``input_ids``, ``attention_mask``) → (B, D)."""
        input_ids, attention_mask = texts["input_ids"], texts["attention_mask"]
        with torch.inference_mode():
            embedded = self.bge_embeddings(
                input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids), position_ids=None
            )
            hidden = self.bge_encoder(embedded, attention_mask=_additive_mask(attention_mask, embedded.dtype))
            return self._pool(hidden.last_hidden_state, attention_mask)

    def encode_mm(self, images: torch.Tensor, texts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Preprocessed images (B, 3, 224, 224) fused with tokenized prompts (one per image) → (B, D)."""
        input_ids, prompt_mask = texts["input_ids"], texts["attention_mask"]
        device = input_ids.device
        with torch.inference_mode():
            image_states = self.img_token_embedding(images)[:, 1:]  # the EVA CLS is not used
            image_states = self.visual_proj(image_states)
            count = image_states.shape[1]
            image_positions = torch.arange(1, 1 + count, device=device)
            image_states = self.bge_embeddings.LayerNorm(
                image_states + self.bge_embeddings.position_embeddings(image_positions)
            )
            prompt_positions = torch.cat(
                [
                    torch.zeros(1, dtype=torch.long, device=device),
                    torch.arange(count + 1, count + input_ids.shape[1], device=device),
                ]
            )
            prompt_states = self.bge_embeddings(
                input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids), position_ids=prompt_positions
            )
            sequence = torch.cat([prompt_states[:, :1], image_states, prompt_states[:, 1:]], dim=1)
            mask = torch.cat(
                [torch.ones(input_ids.shape[0], count, device=device, dtype=prompt_mask.dtype), prompt_mask], dim=1
            )
            hidden = self.bge_encoder(sequence, attention_mask=_additive_mask(mask, sequence.dtype))
            return self._pool(hidden.last_hidden_state, mask)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images fused with an empty prompt each → (B, D)."""
        prompts = self._tokenize([""] * images.shape[0], image_tokens=self.image_tokens)
        return self.encode_mm(images, prompts)

    def img_token_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """EVA's last-block states for every token, CLS first: (B, 1 + patches, hidden)."""
        return self.model_visual(images).contiguous()

    def sentence_embedding(self, hidden_state: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.sentence_pooling_method == "mean":
            summed = torch.sum(hidden_state * mask.unsqueeze(-1).float(), dim=1)
            return summed / mask.sum(dim=1, keepdim=True).float()
        return hidden_state[:, 0]

    def compute_similarity(self, q_reps: torch.Tensor, p_reps: torch.Tensor) -> torch.Tensor:
        """Dot products (cosine when normalised): (Q, D) x (P, D) → (Q, P)."""
        if p_reps.dim() == 2:
            return q_reps @ p_reps.transpose(0, 1)
        return q_reps @ p_reps.transpose(-2, -1)

    # --- batch helpers for the explorer --------------------------------------------------------------------------
    def encode_items(
        self, items: Sequence[tuple[LoadedImage | ImageInput | None, str | None]], *, batch_size: int = 8
    ) -> torch.Tensor:
        """Many (image, text) items, each as ``encode(image, text)`` would embed it, in batches → (N, D) on CPU.

        Items with an image are fused (an image without text gets the empty prompt); text-only items are plain BGE.
        """
        if not items:
            raise EmptyInputError("There is nothing to encode: give at least one image or text.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive whole number, not {batch_size!r}.")
        with_image, text_only = [], []
        for index, item in enumerate(items):
            image, text = item
            if text is not None and not isinstance(text, str):
                raise InvalidInputError(f"Item {index + 1}: the text must be a string, not {type(text).__name__}.")
            if image is None and text is None:
                raise InvalidInputError(f"Item {index + 1} has neither an image nor a text.")
            (with_image if image is not None else text_only).append(index)
        results: dict[int, torch.Tensor] = {}
        for start in range(0, len(with_image), batch_size):
            chunk = with_image[start : start + batch_size]
            pixels = torch.stack([self._pixels(items[i][0], i) for i in chunk]).to(self.device)
            prompts = self._tokenize([items[i][1] or "" for i in chunk], image_tokens=self.image_tokens, first=chunk)
            results.update(zip(chunk, self.encode_mm(pixels, prompts).cpu(), strict=True))
        for start in range(0, len(text_only), batch_size):
            chunk = text_only[start : start + batch_size]
            tokens = self._tokenize([items[i][1] for i in chunk], image_tokens=0, first=chunk)
            results.update(zip(chunk, self.encode_text(tokens).cpu(), strict=True))
        return torch.stack([results[i] for i in range(len(items))])

    def encode_images(self, images: Sequence[LoadedImage | ImageInput], *, batch_size: int = 8) -> torch.Tensor:
        """Images alone (each fused with the empty prompt) → (N, D) on CPU."""
        return self.encode_items([(image, None) for image in images], batch_size=batch_size)

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 32) -> torch.Tensor:
        """Texts alone (plain BGE) → (N, D) on CPU."""
        return self.encode_items([(None, text) for text in _text_list(texts)], batch_size=batch_size)

    # --- internals ----------------------------------------------------------------------------------------------
    def _pixels(self, image: LoadedImage | ImageInput, index: int) -> torch.Tensor:
        loaded = image if isinstance(image, LoadedImage) else load_image(image, f"Image {index + 1}")
        return preprocess(loaded.image)

    def _tokenize(self, texts: list[str], *, image_tokens: int, first: Sequence[int] | None = None) -> dict:
        """Tokenize without truncation, as the reference does, but refuse a text the position table cannot hold."""
        with self._tokenizer_lock:
            batch = self.tokenizer(texts, return_tensors="pt", padding=True)
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        limit = self.text_token_limit(with_image=image_tokens > 0)
        for position, length in enumerate(lengths):
            if length > limit:
                number = (first[position] if first is not None else position) + 1
                what = f"Text {number}" if first is not None or len(texts) > 1 else "The text"
                alongside = f" next to the image's {image_tokens} tokens" if image_tokens else ""
                raise InvalidInputError(
                    f"{what} has {length} tokens; {self.variant.bge_name} has room for at most {limit}{alongside}. "
                    "Shorten it."
                )
        return {key: value.to(self.device) for key, value in batch.items() if key in ("input_ids", "attention_mask")}

    def text_token_limit(self, *, with_image: bool) -> int:
        """The most tokens (specials included) one text may have so that every position id fits the table.

        Fused, the positions are 0 and N+1 .. N+len-1; alone, 0 .. len-1 (BERT) or pad+1 .. pad+len (XLM-R).
        """
        if with_image:
            return self.max_positions - self.image_tokens
        return self.max_positions - (0 if self.padding_idx is None else self.padding_idx + 1)

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        reps = self.sentence_embedding(hidden, mask)
        return F.normalize(reps, dim=-1).contiguous() if self.normlized else reps.contiguous()

    def __repr__(self) -> str:
        return f"Visualized_BGE({self.variant.description}, device={self.device})"


def _additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) ones and zeros → (B, 1, 1, L): 0 where attended, float16's lowest value where masked."""
    return ((1.0 - mask[:, None, None, :].to(dtype)) * MASK_VALUE).to(dtype)


def _text_list(texts: Any) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, list | tuple) or not texts:
        raise InvalidInputError("Texts must be a string or a non-empty list of strings.")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"Text {index + 1} is a {type(text).__name__}, not a string.")
    return list(texts)
