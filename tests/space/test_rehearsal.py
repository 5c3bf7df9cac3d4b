"""The rehearsal hub cache (tools/rehearsal.py) is what the hub would hand flagdemo: a full-size bge-small-en-v1.5
in huggingface_hub's layout loads offline through the catalog and FlagAutoModel, with the real model's shape and
parameter count and the real BERT tokenizer; the stand-in XLM-R tokenizer has XLM-R's size and special ids.

huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE when it is imported, so the loading checks run in a fresh
interpreter pointed at the cache."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("rehearsal", ROOT / "tools" / "rehearsal.py")
rehearsal = importlib.util.module_from_spec(spec)
sys.modules["rehearsal"] = rehearsal  # dataclasses look their module up by name
spec.loader.exec_module(rehearsal)

SMALL = "BAAI/bge-small-en-v1.5"
SENTENCES = ["What is a panda?", "The giant panda is a bear species endemic to China.", "Schrödinger's cat, 42 times!"]

# bge-small-en-v1.5 from its config: embeddings (30522 + 512 + 2 rows of 384, LayerNorm), 12 layers of
# (4 × 384² attention + 2 × 384·1536 MLP, their biases, 2 LayerNorms), and the pooler.
HIDDEN, INNER, LAYERS = 384, 1536, 12
EMBEDDINGS = (30522 + 512 + 2) * HIDDEN + 2 * HIDDEN
LAYER = 4 * (HIDDEN * HIDDEN + HIDDEN) + (HIDDEN * INNER + INNER) + (INNER * HIDDEN + HIDDEN) + 4 * HIDDEN
SMALL_PARAMETERS = EMBEDDINGS + LAYERS * LAYER + HIDDEN * HIDDEN + HIDDEN

CHECK = """
import json, sys, time
import numpy as np
from flagdemo import FlagAutoModel
from flagdemo.models import catalog
from flagdemo.models.sources import bundled_minilm_dir
from transformers import AutoTokenizer

sentences = json.loads(sys.argv[1])
model = FlagAutoModel.from_finetuned("BAAI/bge-small-en-v1.5", use_fp16=False, devices="cpu")
vectors = model.encode(sentences)
bundled = AutoTokenizer.from_pretrained(str(bundled_minilm_dir()))
backbone = model.model
print(json.dumps({
    "location": catalog.location(catalog.get("bge-small-en-v1.5")),
    "class": type(model).__name__,
    "layers": backbone.config.num_hidden_layers,
    "parameters": sum(p.numel() for p in backbone.parameters()),
    "shape": list(vectors.shape),
    "norms": np.linalg.norm(vectors, axis=1).tolist(),
    "same_ids": [model.tokenizer(s)["input_ids"] == bundled(s)["input_ids"] for s in sentences],
    "path": str(model.source.path),
}))
"""


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hub")
    (written,) = rehearsal.write_cache(cache, repos=[SMALL], seed=0)
    return cache, written


def _blobs(written) -> set[str]:
    return {path.name for path in (written.folder / "blobs").iterdir()}


def test_the_cache_has_huggingface_hubs_layout(small_cache):
    cache, written = small_cache
    folder = cache / "models--BAAI--bge-small-en-v1.5"
    commit = (folder / "refs" / "main").read_text()
    assert len(commit) == 40 and int(commit, 16) >= 0
    snapshot = folder / "snapshots" / commit
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
        "1_Pooling/config.json",
        "modules.json",
        "sentence_bert_config.json",
        "REHEARSAL.md",
        "REHEARSAL.json",
    ):
        link = snapshot / name
        assert link.is_symlink() and link.resolve().parent == (folder / "blobs").resolve(), name
    weights = (snapshot / "model.safetensors").resolve()
    assert len(weights.name) == 64  # LFS files are named by their sha256
    assert rehearsal.sha256_of(weights) == weights.name
    config = snapshot / "config.json"
    assert config.resolve().name == rehearsal.git_blob_sha1(config)  # plain git files by their git blob id
    pooling = json.loads((snapshot / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_cls_token"] and not pooling["pooling_mode_mean_tokens"]
    assert "mean nothing" in (snapshot / "REHEARSAL.md").read_text()
    assert written.parameters == SMALL_PARAMETERS == 33_360_000


@pytest.mark.slow
def test_flagdemo_loads_the_full_size_bge_small_offline_from_the_cache(small_cache):
    cache, _ = small_cache
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(cache),
        "HF_HOME": str(cache.parent / "hf-home"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "FLAGDEMO_MODELS_DIR": "",
        "FLAGDEMO_CACHE": str(cache.parent / "flagdemo-cache"),  # its ONNX export of random weights stays here
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(SENTENCES)],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["location"] == "hub-cache"
    assert found["path"] == SMALL  # loaded through the hub cache, not a local folder
    assert found["class"] == "FlagModel"
    assert found["layers"] == 12
    assert found["parameters"] == SMALL_PARAMETERS
    assert found["shape"] == [len(SENTENCES), 384]
    assert found["norms"] == pytest.approx([1.0] * len(SENTENCES), abs=1e-5)
    assert all(found["same_ids"])


def test_the_same_seed_writes_the_same_blobs_and_another_seed_other_weights(small_cache, tmp_path):
    _, first = small_cache
    (again,) = rehearsal.write_cache(tmp_path / "again", repos=[SMALL], seed=0)
    (other,) = rehearsal.write_cache(tmp_path / "other", repos=[SMALL], seed=1)
    assert _blobs(again) == _blobs(first)
    assert again.commit == first.commit
    snapshot = other.folder / "snapshots" / other.commit
    assert (snapshot / "model.safetensors").resolve().name not in _blobs(first)
    assert (snapshot / "vocab.txt").resolve().name in _blobs(first)  # only the weights and manifest differ


def test_the_stand_in_xlmr_tokenizer_has_xlmrs_size_and_special_ids(tmp_path):
    from transformers import AutoTokenizer

    (written,) = rehearsal.write_cache(tmp_path, repos=["BAAI/bge-m3"], weights=False)
    snapshot = written.folder / "snapshots" / written.commit
    assert not (snapshot / "pytorch_model.bin").exists()
    tokenizer = AutoTokenizer.from_pretrained(str(snapshot))
    assert len(tokenizer) == tokenizer.vocab_size == 250002
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")}
    assert ids == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 250001}
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert (tokenizer.unk_token_id, tokenizer.mask_token_id) == (3, 250001)
    encoded = tokenizer("What is a panda?")["input_ids"]
    assert encoded[0] == 0 and encoded[-1] == 2 and 3 not in encoded
    manifest = json.loads((snapshot / "REHEARSAL.json").read_text())
    assert manifest["tokenizer"] == "stand-in" and "STAND-IN" in " ".join(manifest["notes"])
    assert json.loads((snapshot / "config.json").read_text())["vocab_size"] == 250002
