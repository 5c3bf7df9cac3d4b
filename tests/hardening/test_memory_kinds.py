"""The memory account's kinds: a model file mapped from the hub cache counts as a model file, though its blob has no
suffix (the hub names every blob by its hash)."""

from __future__ import annotations

from flagdemo.serving.memory import _kind


def test_model_files_are_known_by_suffix_or_as_hub_cache_blobs():
    blob = "/data/hub/models--BAAI--bge-m3/blobs/5c2f1b6e0a1d9e7c3f00aa11bb22cc33dd44ee55ff66aa77bb88cc99dd00ee11"
    assert _kind(blob) == "memory-mapped model files"
    assert _kind("/models/bge-m3/model.safetensors") == "memory-mapped model files"
    assert _kind("/usr/share/fonts/dejavu/DejaVuSans.ttf") == "other mapped files (python, fonts, data)"
    assert _kind("/data/hub/blobs/notes.txt") == "other mapped files (python, fonts, data)"  # not a hub model folder
    assert _kind("[heap]").startswith("anonymous")
