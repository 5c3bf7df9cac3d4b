"""Full-size rehearsal hub cache: the BGE repos the Space meets, at their real size, with seeded random weights.

``python -m tools.rehearsal --cache DIR [--repo ID ...] [--seed N] [--no-weights]`` (``make rehearsal-cache``)
writes a Hugging Face hub cache in huggingface_hub's own layout (``models--ORG--NAME/blobs``, ``refs/main``,
``snapshots/<commit>/<file>`` symlinks), so the app, the loaders and the memory and time limits can be rehearsed
offline at full size (issue #26) without the hub. Configs and file names follow the real repos; the weights are
seeded noise, so every score and embedding they give is meaningless: only sizes, shapes, load paths, memory and
timings carry over. Tokenizers of XLM-R and MiniCPM are stand-ins (same vocabulary size and special-token ids, not
the real pieces); the BGE English tokenizer is the real BERT uncased one, from the bundled MiniLM package.
Each snapshot carries REHEARSAL.md and REHEARSAL.json saying all this, and what was skipped or omitted.

Weights are made tensor by tensor from a generator seeded by (seed, repo, tensor name) and streamed into
safetensors files, so peak memory stays near one tensor (bge-m3's pytorch_model.bin, which the real repo ships
instead of safetensors, needs its whole state dict, ~2.3 GB, in memory for ``torch.save``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from flagdemo.models.sources import bundled_minilm_dir

ORG = "BAAI"
NOTICE = (
    "REHEARSAL CACHE: seeded random weights at full size. Scores, embeddings and rankings from these models mean "
    "nothing; only sizes, shapes, load paths, memory and timings carry over."
)
STD = 0.02  # normal(0, 0.02) for every matrix, as a freshly initialised BERT / XLM-R / MiniCPM would be
LFS_SIZE = 10 * 1024 * 1024  # the hub stores files over 10 MB (and every weight file) in LFS, named by sha256
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
SHARD_BYTES = 5 * 10**9  # transformers 4.38's save_pretrained default (max_shard_size="5GB")
CHUNK = 1 << 24  # values generated per step: bounds the fp32 scratch memory to 64 MB

# The default set: the Space's embedders and rerankers.
REPOS = (
    "BAAI/bge-small-en-v1.5",
    "BAAI/bge-base-en-v1.5",
    "BAAI/bge-m3",
    "BAAI/bge-reranker-base",
    "BAAI/bge-reranker-v2-m3",
    "BAAI/bge-reranker-v2-minicpm-layerwise",
)


# --- configs: the facts of the real repos ---------------------------------------------------------------------------
def bert_config(hidden: int, layers: int, heads: int, intermediate: int) -> dict[str, Any]:
    """config.json of bge-{small,base}-en-v1.5 (BertModel, BERT uncased vocabulary)."""
    return {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "id2label": {"0": "LABEL_0"},
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "label2id": {"LABEL_0": 0},
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512,
        "model_type": "bert",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "transformers_version": "4.30.0",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": 30522,
    }


def xlmr_config(architecture: str, sizes: tuple[int, int, int, int, int]) -> dict[str, Any]:
    """config.json of the XLM-R based repos (bge-m3, bge-reranker-base, bge-reranker-v2-m3); ``sizes`` is
    (hidden, layers, heads, intermediate, positions)."""
    hidden, layers, heads, intermediate, positions = sizes
    config = {
        "architectures": [architecture],
        "attention_probs_dropout_prob": 0.1,
        "bos_token_id": 0,
        "classifier_dropout": None,
        "eos_token_id": 2,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": positions,
        "model_type": "xlm-roberta",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "output_past": True,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "transformers_version": "4.33.0",
        "type_vocab_size": 1,
        "use_cache": True,
        "vocab_size": 250002,
    }
    if architecture.endswith("ForSequenceClassification"):
        config.update({"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}})  # num_labels 1
    return config


def minicpm_config() -> dict[str, Any]:
    """config.json of bge-reranker-v2-minicpm-layerwise, without its auto_map: flagdemo never runs repo code."""
    return {
        "architectures": ["LayerWiseMiniCPMForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "dim_model_base": 256,
        "eos_token_id": 2,
        "head_multi": True,
        "head_type": "simple",
        "hidden_act": "silu",
        "hidden_size": 2304,
        "initializer_range": 0.1,
        "intermediate_size": 5760,
        "layer_wise": True,
        "max_position_embeddings": 2048,
        "model_type": "minicpm",
        "num_attention_heads": 36,
        "num_hidden_layers": 40,
        "num_key_value_heads": 36,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "scale_depth": 1.4,
        "scale_emb": 12,
        "start_layer": 8,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.38.1",
        "use_cache": False,
        "vocab_size": 122753,
    }


# --- tensor plans: the checkpoint's own parameter names and shapes --------------------------------------------------
@dataclass(frozen=True)
class Planned:
    """One tensor to write: its init is 'normal' (std 0.02), 'ones' (norm weights) or 'zeros' (biases)."""

    name: str
    shape: tuple[int, ...]
    init: str
    zero_row: int | None = None  # an embedding's padding row, zero in a fresh model


def _linear(prefix: str, out_features: int, in_features: int, bias: bool = True) -> list[Planned]:
    tensors = [Planned(f"{prefix}.weight", (out_features, in_features), "normal")]
    return tensors + ([Planned(f"{prefix}.bias", (out_features,), "zeros")] if bias else [])


def _layer_norm(prefix: str, size: int) -> list[Planned]:
    return [Planned(f"{prefix}.weight", (size,), "ones"), Planned(f"{prefix}.bias", (size,), "zeros")]


def encoder_plan(config: dict[str, Any], prefix: str = "", pooler: bool = True) -> list[Planned]:
    """BertModel / XLMRobertaModel tensors (``prefix`` 'roberta.' inside a sequence classifier, which has no
    pooler)."""
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    tensors = [
        Planned(
            f"{prefix}embeddings.word_embeddings.weight",
            (config["vocab_size"], hidden),
            "normal",
            config["pad_token_id"],
        ),
        Planned(
            f"{prefix}embeddings.position_embeddings.weight",
            (config["max_position_embeddings"], hidden),
            "normal",
            config["pad_token_id"] if config["model_type"] == "xlm-roberta" else None,
        ),
        Planned(f"{prefix}embeddings.token_type_embeddings.weight", (config["type_vocab_size"], hidden), "normal"),
        *_layer_norm(f"{prefix}embeddings.LayerNorm", hidden),
    ]
    for index in range(config["num_hidden_layers"]):
        layer = f"{prefix}encoder.layer.{index}"
        for part in ("query", "key", "value"):
            tensors += _linear(f"{layer}.attention.self.{part}", hidden, hidden)
        tensors += _linear(f"{layer}.attention.output.dense", hidden, hidden)
        tensors += _layer_norm(f"{layer}.attention.output.LayerNorm", hidden)
        tensors += _linear(f"{layer}.intermediate.dense", inner, hidden)
        tensors += _linear(f"{layer}.output.dense", hidden, inner)
        tensors += _layer_norm(f"{layer}.output.LayerNorm", hidden)
    if pooler:
        tensors += _linear(f"{prefix}pooler.dense", hidden, hidden)
    return tensors


def classifier_plan(config: dict[str, Any]) -> list[Planned]:
    """XLMRobertaForSequenceClassification: the encoder under 'roberta.' and its dense → out_proj head."""
    hidden, labels = config["hidden_size"], len(config.get("id2label", {"0": 0}))
    tensors = encoder_plan(config, prefix="roberta.", pooler=False)
    return tensors + _linear("classifier.dense", hidden, hidden) + _linear("classifier.out_proj", labels, hidden)


def minicpm_plan(config: dict[str, Any]) -> list[Planned]:
    """LayerWiseMiniCPMForCausalLM tensors, in the checkpoint's names: no LM head, one score head per layer from
    ``start_layer`` to the last."""
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    head_dim = hidden // config["num_attention_heads"]
    kv = config["num_key_value_heads"] * head_dim
    tensors = [Planned("model.embed_tokens.weight", (config["vocab_size"], hidden), "normal")]
    for index in range(config["num_hidden_layers"]):
        layer = f"model.layers.{index}"
        tensors += _linear(f"{layer}.self_attn.q_proj", hidden, hidden, bias=False)
        tensors += _linear(f"{layer}.self_attn.k_proj", kv, hidden, bias=False)
        tensors += _linear(f"{layer}.self_attn.v_proj", kv, hidden, bias=False)
        tensors += _linear(f"{layer}.self_attn.o_proj", hidden, hidden, bias=False)
        tensors += _linear(f"{layer}.mlp.gate_proj", inner, hidden, bias=False)
        tensors += _linear(f"{layer}.mlp.up_proj", inner, hidden, bias=False)
        tensors += _linear(f"{layer}.mlp.down_proj", hidden, inner, bias=False)
        tensors += [Planned(f"{layer}.input_layernorm.weight", (hidden,), "ones")]
        tensors += [Planned(f"{layer}.post_attention_layernorm.weight", (hidden,), "ones")]
    tensors += [Planned("model.norm.weight", (hidden,), "ones")]
    heads = config["num_hidden_layers"] - config["start_layer"] + 1 if config["head_multi"] else 1
    for index in range(heads):
        tensors += _linear(f"lm_head.{index}.linear_head", 1, hidden, bias=False)
    return tensors


def parameter_count(plan: Iterable[Planned]) -> int:
    return sum(math.prod(tensor.shape) for tensor in plan)


# --- seeded tensors -------------------------------------------------------------------------------------------------
def _tensor_seed(seed: int, repo: str, name: str) -> int:
    digest = hashlib.sha256(f"{seed}\0{repo}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_tensor(planned: Planned, *, seed: int, repo: str, dtype: torch.dtype) -> torch.Tensor:
    """The tensor in ``dtype``, filled chunk by chunk (fp32 scratch of at most CHUNK values), the same on every
    CPU: torch's CPU generator (mt19937) gives the same normals on AMD and Intel."""
    if planned.init == "ones":
        return torch.ones(planned.shape, dtype=dtype)
    if planned.init == "zeros":
        return torch.zeros(planned.shape, dtype=dtype)
    out = torch.empty(planned.shape, dtype=dtype)
    flat = out.view(-1)
    generator = torch.Generator().manual_seed(_tensor_seed(seed, repo, planned.name))
    for start in range(0, flat.numel(), CHUNK):
        stop = min(start + CHUNK, flat.numel())
        flat[start:stop] = torch.randn(stop - start, generator=generator) * STD
    if planned.zero_row is not None:
        out[planned.zero_row].zero_()
    return out


_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def write_safetensors(path: Path, plan: list[Planned], tensors: Iterator[torch.Tensor], dtype: torch.dtype) -> None:
    """A safetensors file written tensor by tensor: the header is known from the plan, the data streams after it."""
    size = torch.tensor([], dtype=dtype).element_size()
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for planned in plan:
        end = offset + math.prod(planned.shape) * size
        header[planned.name] = {
            "dtype": _SAFETENSORS_DTYPES[dtype],
            "shape": list(planned.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(text)))
        handle.write(text)
        for planned, tensor in zip(plan, tensors, strict=True):
            assert tuple(tensor.shape) == planned.shape and tensor.dtype == dtype
            handle.write(memoryview(tensor.contiguous().view(torch.uint8).numpy()))


def shard(plan: list[Planned], dtype: torch.dtype, limit: int = SHARD_BYTES) -> list[list[Planned]]:
    """save_pretrained's greedy split in state-dict order: a new shard when the next tensor would pass ``limit``."""
    size = torch.tensor([], dtype=dtype).element_size()
    shards: list[list[Planned]] = [[]]
    used = 0
    for planned in plan:
        nbytes = math.prod(planned.shape) * size
        if shards[-1] and used + nbytes > limit:
            shards.append([])
            used = 0
        shards[-1].append(planned)
        used += nbytes
    return shards


# --- stand-in tokenizers --------------------------------------------------------------------------------------------
def bert_vocab() -> list[str]:
    """The BERT uncased vocabulary of the bundled all-MiniLM-L6-v2 package (bge-*-en-v1.5 use the same one)."""
    return (bundled_minilm_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()


def _stand_in_pieces() -> list[str]:
    """Word pieces for the stand-ins, from the BERT vocabulary: each word as a word start ('▁w', '▁W') and as a
    continuation, each '##' piece as a continuation, and every character the vocabulary has."""
    pieces: dict[str, None] = {}
    for token in bert_vocab():
        if token.startswith("[") and token.endswith("]"):
            continue
        if token.startswith("##"):
            pieces[token[2:]] = None
            continue
        for word in dict.fromkeys((token, token.capitalize())):
            pieces["▁" + word] = None
            pieces[word] = None
    for char in {char for piece in list(pieces) for char in piece} | {"▁"}:
        pieces[char] = None
    return sorted(pieces, key=lambda piece: (len(piece), piece))


def xlmr_tokenizer_json(vocab_size: int = 250002) -> str:
    """A Unigram tokenizer.json with XLM-R's size and special ids (<s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=last);
    the pieces between are BERT-derived, then fillers: a STAND-IN, not XLM-R's vocabulary."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    pieces = [piece for piece in _stand_in_pieces() if piece not in specials]
    fillers = vocab_size - len(specials) - len(pieces) - 1
    vocab = [(token, 0.0) for token in specials]
    vocab += [(piece, -float(max(1, 12 - len(piece)))) for piece in pieces]  # longer pieces win
    vocab += [(f"<standin_{index}>", -100.0) for index in range(fillers)]
    vocab += [("<mask>", 0.0)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer.add_special_tokens([*specials, "<mask>"])
    return tokenizer.to_str(pretty=True)


def minicpm_tokenizer_json(vocab_size: int = 122753) -> str:
    """A Llama-style BPE tokenizer.json with MiniCPM's size and special ids (<unk>=0 <s>=1 </s>=2, byte fallback
    <0x00>..<0xFF> from 3, so "\\n" is <0x0A>=13); BERT-derived pieces and fillers: a STAND-IN, not MiniCPM's."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors

    specials = ["<unk>", "<s>", "</s>"]
    vocab: dict[str, int] = {token: index for index, token in enumerate(specials)}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    merges: list[tuple[str, str]] = []
    for piece in _stand_in_pieces():  # shortest first: every character comes before any merge that needs it
        for cut in range(1, len(piece) + 1):  # every prefix of a piece is a piece, made by one merge
            prefix = piece[:cut]
            if prefix in vocab or len(vocab) >= vocab_size:
                continue
            if cut > 1:
                merges.append((piece[: cut - 1], prefix[-1]))
            vocab[prefix] = len(vocab)
    for index in range(vocab_size - len(vocab)):
        vocab[f"<standin_{index}>"] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tokenizer.add_special_tokens(specials)
    return tokenizer.to_str(pretty=True)


def bert_tokenizer_json() -> str:
    """The bundled MiniLM's tokenizer.json (BERT uncased) without its 128-token truncation and fixed padding."""
    data = json.loads((bundled_minilm_dir() / "tokenizer.json").read_text(encoding="utf-8"))
    data["truncation"] = None
    data["padding"] = None
    return json.dumps(data, ensure_ascii=False, indent=2)


# --- the repos ------------------------------------------------------------------------------------------------------
@dataclass
class RepoSpec:
    """What one repo holds: text files, weight files (by plan), and what the real repo has that this does not."""

    repo: str
    config: dict[str, Any]
    plan: list[Planned]
    dtype: torch.dtype
    weights: str  # 'safetensors' | 'sharded-safetensors' | 'bin'
    texts: dict[str, str] = field(default_factory=dict)
    heads: dict[str, list[Planned]] = field(default_factory=dict)  # BGE-M3's colbert/sparse .pt state dicts
    tokenizer: str = ""
    skipped: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _sentence_transformers_files(hidden: int, max_seq_length: int, lower: bool) -> dict[str, str]:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": True,
        "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    return {
        "modules.json": _json(modules),
        "sentence_bert_config.json": _json({"max_seq_length": max_seq_length, "do_lower_case": lower}),
        "config_sentence_transformers.json": _json(
            {"__version__": {"sentence_transformers": "2.2.2", "transformers": "4.28.1", "pytorch": "1.13.0+cu117"}}
        ),
        "1_Pooling/config.json": _json(pooling),
    }


def _bert_tokenizer_files(with_json: bool) -> dict[str, str]:
    special = {
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "pad_token": "[PAD]",
        "sep_token": "[SEP]",
        "unk_token": "[UNK]",
    }
    config = {
        "clean_up_tokenization_spaces": True,
        **special,
        "do_basic_tokenize": True,
        "do_lower_case": True,
        "model_max_length": 512,
        "never_split": None,
        "strip_accents": None,
        "tokenize_chinese_chars": True,
        "tokenizer_class": "BertTokenizer",
    }
    files = {
        "vocab.txt": (bundled_minilm_dir() / "vocab.txt").read_text(encoding="utf-8"),
        "tokenizer_config.json": _json(config),
        "special_tokens_map.json": _json(special),
    }
    if with_json:
        files["tokenizer.json"] = bert_tokenizer_json()
    return files


def _xlmr_tokenizer_files(max_length: int, with_json: bool) -> dict[str, str]:
    special = {
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": "<mask>",
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
    }
    config = {
        **special,
        "clean_up_tokenization_spaces": True,
        "model_max_length": max_length,
        "tokenizer_class": "XLMRobertaTokenizer",
    }
    files = {"tokenizer_config.json": _json(config), "special_tokens_map.json": _json(special)}
    if with_json:
        files["tokenizer.json"] = xlmr_tokenizer_json()
    return files


def _minicpm_tokenizer_files(with_json: bool) -> dict[str, str]:
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<unk>", "unk_token": "<unk>"}
    config = {
        **special,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": 1000000000000000019884624838656,
        "tokenizer_class": "LlamaTokenizer",
    }
    files = {"tokenizer_config.json": _json(config), "special_tokens_map.json": _json(special)}
    if with_json:
        files["tokenizer.json"] = minicpm_tokenizer_json()
    return files


_XLMR_STAND_IN = (
    "tokenizer.json is a STAND-IN: XLM-R's size (250002) and special ids (<s>=0 <pad>=1 </s>=2 <unk>=3 "
    "<mask>=250001), BERT-derived Unigram pieces and filler tokens; token ids do not match the real tokenizer."
)


def spec_for(repo: str, *, with_tokenizer_json: bool = True) -> RepoSpec:
    """The files of ``repo`` (text files built here; weights planned, written by write_cache)."""
    name = repo.split("/", 1)[-1]
    if name in ("bge-small-en-v1.5", "bge-base-en-v1.5"):
        size = {"bge-small-en-v1.5": (384, 12, 12, 1536), "bge-base-en-v1.5": (768, 12, 12, 3072)}[name]
        config = bert_config(*size)
        spec = RepoSpec(repo, config, encoder_plan(config), torch.float32, "safetensors", tokenizer="real")
        spec.texts = {**_bert_tokenizer_files(with_tokenizer_json), **_sentence_transformers_files(size[0], 512, True)}
        spec.skipped = [
            "pytorch_model.bin (the same weights; transformers loads model.safetensors first)",
            "onnx/model.onnx",
            "README.md",
            ".gitattributes",
        ]
        spec.notes = [
            "tokenizer.json and vocab.txt are the real BERT uncased tokenizer (from the bundled "
            "all-MiniLM-L6-v2 package; its 128-token truncation and fixed padding removed)."
        ]
        return spec
    if name == "bge-m3":
        config = xlmr_config("XLMRobertaModel", (1024, 24, 16, 4096, 8194))
        spec = RepoSpec(repo, config, encoder_plan(config), torch.float32, "bin", tokenizer="stand-in")
        spec.heads = {
            "colbert_linear.pt": _linear("", 1024, 1024),
            "sparse_linear.pt": _linear("", 1, 1024),
        }
        spec.texts = {
            **_xlmr_tokenizer_files(8192, with_tokenizer_json),
            **_sentence_transformers_files(1024, 8192, False),
        }
        spec.skipped = [
            "onnx/ (model.onnx, model.onnx_data, its tokenizer copies)",
            "imgs/",
            "long.jpg",
            "README.md",
            ".gitattributes",
        ]
        spec.omitted = [
            "sentencepiece.bpe.model (no real SentencePiece model can be made here; transformers reads tokenizer.json)"
        ]
        spec.notes = [
            _XLMR_STAND_IN,
            "The real repo ships pytorch_model.bin and no model.safetensors, so the "
            "weights are pytorch_model.bin (loaded with torch.load, weights_only).",
        ]
        return spec
    if name in ("bge-reranker-base", "bge-reranker-v2-m3"):
        sizes = {"bge-reranker-base": (768, 12, 12, 3072, 514), "bge-reranker-v2-m3": (1024, 24, 16, 4096, 8194)}
        config = xlmr_config("XLMRobertaForSequenceClassification", sizes[name])
        spec = RepoSpec(repo, config, classifier_plan(config), torch.float32, "safetensors", tokenizer="stand-in")
        spec.texts = _xlmr_tokenizer_files(512 if name == "bge-reranker-base" else 8192, with_tokenizer_json)
        spec.skipped = ["README.md", ".gitattributes"]
        if name == "bge-reranker-base":
            spec.skipped = ["pytorch_model.bin (the same weights)", "onnx/model.onnx", *spec.skipped]
        spec.omitted = ["sentencepiece.bpe.model (no real SentencePiece model can be made here)"]
        spec.notes = [_XLMR_STAND_IN]
        return spec
    if name == "bge-reranker-v2-minicpm-layerwise":
        config = minicpm_config()
        spec = RepoSpec(
            repo, config, minicpm_plan(config), torch.bfloat16, "sharded-safetensors", tokenizer="stand-in"
        )
        spec.texts = _minicpm_tokenizer_files(with_tokenizer_json)
        spec.skipped = ["README.md", ".gitattributes"]
        spec.omitted = [
            "configuration_minicpm_reranker.py, modeling_minicpm_reranker.py (the repo's own modelling code: "
            "flagdemo never runs repo code, it implements the architecture itself)",
            "config.json's auto_map (it names that code)",
            "tokenizer.model (no real SentencePiece model can be made here)",
        ]
        spec.notes = [
            "tokenizer.json is a STAND-IN: MiniCPM's size (122753) and special ids (<unk>=0 <s>=1 </s>=2), byte "
            "fallback tokens <0x00>..<0xFF> at 3..258 ('\\n' is <0x0A>=13), BERT-derived BPE pieces and fillers; "
            "token ids do not match the real tokenizer. pad_token '<unk>' and legacy=true are unverified guesses.",
            "bf16 weights in two safetensors shards split at save_pretrained's 5 GB default; the real shard "
            "boundary is not verified. Matrices are normal(0, 0.02) (the config's initializer_range is 0.1).",
        ]
        return spec
    raise SystemExit(f"Unknown rehearsal repo {repo!r}; known: {', '.join(REPOS)}")


# --- the hub cache layout -------------------------------------------------------------------------------------------
def git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def blob_id(filename: str, path: Path) -> str:
    """The blob's name as huggingface_hub stores it: the sha256 of an LFS file (weights, and any file over 10 MB),
    the git blob sha1 of a plain git file."""
    if filename.endswith(WEIGHT_SUFFIXES) or path.stat().st_size > LFS_SIZE:
        return sha256_of(path)
    return git_blob_sha1(path)


class RepoWriter:
    """Files staged into ``blobs/`` by content hash, then linked from ``snapshots/<commit>/`` once all are known."""

    def __init__(self, cache_dir: Path, repo: str):
        self.folder = cache_dir / ("models--" + repo.replace("/", "--"))
        if self.folder.exists():
            snapshots = list(self.folder.glob("snapshots/*"))
            if any(not (snapshot / "REHEARSAL.json").exists() for snapshot in snapshots):
                raise SystemExit(f"{self.folder} holds a cache this tool did not write; it is left alone.")
            shutil.rmtree(self.folder)
        (self.folder / "blobs").mkdir(parents=True)
        self.files: dict[str, str] = {}
        self.bytes = 0

    def staging(self, filename: str) -> Path:
        """A fresh path for ``filename`` inside blobs/ (same file system, so the move into place is a rename); it
        keeps the file's own name, which torch.save writes into the archive as the real files have it."""
        return Path(tempfile.mkdtemp(dir=self.folder / "blobs", prefix=".staging-")) / Path(filename).name

    def add_path(self, filename: str, staged: Path) -> None:
        blob = blob_id(filename, staged)
        self.bytes += staged.stat().st_size
        staged.replace(self.folder / "blobs" / blob)
        staged.parent.rmdir()
        self.files[filename] = blob

    def add_text(self, filename: str, text: str) -> None:
        staged = self.staging(filename)
        staged.write_text(text, encoding="utf-8")
        self.add_path(filename, staged)

    def commit(self, seed: int) -> str:
        """A 40-hex commit id from the file list and seed (deterministic; not the real repo's commit)."""
        listing = "".join(f"{name} {blob}\n" for name, blob in sorted(self.files.items()))
        commit = hashlib.sha1(f"rehearsal seed {seed}\n{listing}".encode()).hexdigest()
        snapshot = self.folder / "snapshots" / commit
        for name, blob in sorted(self.files.items()):
            link = snapshot / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(self.folder / "blobs" / blob, link.parent))
        (self.folder / "refs").mkdir(exist_ok=True)
        (self.folder / "refs" / "main").write_text(commit)  # no newline, as huggingface_hub writes it
        return commit


@dataclass
class Written:
    repo: str
    folder: Path
    commit: str
    files: list[str]
    parameters: int
    bytes: int
    seconds: float
    tokenizer: str


def _tensors(plan: list[Planned], *, seed: int, repo: str, dtype: torch.dtype) -> Iterator[torch.Tensor]:
    for planned in plan:
        yield make_tensor(planned, seed=seed, repo=repo, dtype=dtype)


def _write_weights(writer: RepoWriter, spec: RepoSpec, seed: int) -> dict[str, Any]:
    if spec.weights == "bin":
        state = {p.name: make_tensor(p, seed=seed, repo=spec.repo, dtype=spec.dtype) for p in spec.plan}
        staged = writer.staging("pytorch_model.bin")
        torch.save(state, staged)
        del state
        writer.add_path("pytorch_model.bin", staged)
        return {"format": "pytorch_model.bin (single file, torch.save of the state dict)"}
    shards = [spec.plan] if spec.weights == "safetensors" else shard(spec.plan, spec.dtype)
    if len(shards) == 1:
        staged = writer.staging("model.safetensors")
        write_safetensors(
            staged, spec.plan, _tensors(spec.plan, seed=seed, repo=spec.repo, dtype=spec.dtype), spec.dtype
        )
        writer.add_path("model.safetensors", staged)
        return {"format": "model.safetensors (single file)"}
    weight_map = {}
    for index, part in enumerate(shards, start=1):
        filename = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        staged = writer.staging(filename)
        write_safetensors(staged, part, _tensors(part, seed=seed, repo=spec.repo, dtype=spec.dtype), spec.dtype)
        writer.add_path(filename, staged)
        weight_map.update(dict.fromkeys((p.name for p in part), filename))
    size = torch.tensor([], dtype=spec.dtype).element_size()
    index_data = {"metadata": {"total_size": parameter_count(spec.plan) * size}, "weight_map": weight_map}
    writer.add_text("model.safetensors.index.json", _json(index_data))
    return {"format": f"{len(shards)} safetensors shards + model.safetensors.index.json", "shards": len(shards)}


def _weight_facts(spec: RepoSpec) -> dict[str, Any]:
    return {
        "dtype": str(spec.dtype).removeprefix("torch."),
        "parameters": parameter_count(spec.plan),
        "init": "normal(0, 0.02) matrices, ones for norms, zeros for biases and embedding padding rows",
    }


def _manifest(spec: RepoSpec, seed: int, weights: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "notice": NOTICE,
        "repo": spec.repo,
        "seed": seed,
        "generator": "tools/rehearsal.py (flagdemo)",
        "weights": None if weights is None else {**weights, **_weight_facts(spec)},
        "tokenizer": spec.tokenizer,
        "colbert/sparse heads": sorted(spec.heads) or None,
        "skipped (the real repo has them; duplicates or not needed)": spec.skipped,
        "omitted (cannot or must not be written)": spec.omitted,
        "notes": spec.notes,
    }


def _readme(spec: RepoSpec, manifest: dict[str, Any]) -> str:
    lines = [
        f"# {spec.repo}: rehearsal copy",
        "",
        f"**{NOTICE}**",
        "",
        f"- Tokenizer: **{spec.tokenizer}**"
        + (" (not the real one: token ids differ)" if spec.tokenizer == "stand-in" else ""),
        f"- Seed: {manifest['seed']}",
    ]
    if manifest["weights"]:
        lines.append(
            f"- Weights: {manifest['weights']['format']}, {manifest['weights']['dtype']}, "
            f"{manifest['weights']['parameters']:,} parameters"
        )
    lines += [
        "",
        "Skipped:",
        *[f"- {item}" for item in spec.skipped],
        "",
        "Omitted:",
        *[f"- {item}" for item in spec.omitted or ["nothing"]],
        "",
        "Notes:",
        *[f"- {n}" for n in spec.notes],
        "",
        "Written by flagdemo's tools/rehearsal.py; see REHEARSAL.json.",
        "",
    ]
    return "\n".join(lines)


def write_repo(cache_dir: Path, repo: str, *, seed: int = 0, weights: bool = True) -> Written:
    """One repo into ``cache_dir`` (replacing an earlier rehearsal copy, never a real cached repo)."""
    started = time.perf_counter()
    spec = spec_for(repo)
    writer = RepoWriter(Path(cache_dir), repo)
    writer.add_text("config.json", _json(spec.config))
    for filename, text in spec.texts.items():
        writer.add_text(filename, text)
    written_weights = None
    if weights:
        written_weights = _write_weights(writer, spec, seed)
        for filename, plan in spec.heads.items():
            state = {
                p.name.lstrip("."): make_tensor(p, seed=seed, repo=f"{repo}/{filename}", dtype=spec.dtype)
                for p in plan
            }
            staged = writer.staging(filename)
            torch.save(state, staged)
            writer.add_path(filename, staged)
    manifest = _manifest(spec, seed, written_weights)
    writer.add_text("REHEARSAL.json", _json(manifest))
    writer.add_text("REHEARSAL.md", _readme(spec, manifest))
    commit = writer.commit(seed)
    heads = sum(parameter_count(plan) for plan in spec.heads.values())
    return Written(
        repo,
        writer.folder,
        commit,
        sorted(writer.files),
        parameter_count(spec.plan) + heads if weights else 0,
        writer.bytes,
        time.perf_counter() - started,
        spec.tokenizer,
    )


def write_cache(
    cache_dir: str | os.PathLike, repos: Iterable[str] = REPOS, seed: int = 0, *, weights: bool = True
) -> list[Written]:
    """Write each repo into the hub cache at ``cache_dir``; ``weights=False`` writes configs and tokenizers only."""
    return [write_repo(Path(cache_dir), repo, seed=seed, weights=weights) for repo in repos]


def describe(written: Written) -> str:
    return (
        f"{written.repo}: {len(written.files)} files, {written.parameters:,} parameters, "
        f"{written.bytes / 1e9:.2f} GB, {written.seconds:.1f} s, tokenizer {written.tokenizer}"
        + (" (STAND-IN)" if written.tokenizer == "stand-in" else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rehearsal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, help="the hub cache folder to write (HF_HUB_CACHE to read it)")
    parser.add_argument("--repo", action="append", help=f"a repo id (repeatable); default: all of {', '.join(REPOS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-weights", action="store_true", help="configs and tokenizers only")
    args = parser.parse_args(argv)
    print(NOTICE, flush=True)
    for repo in args.repo or REPOS:
        written = write_repo(Path(args.cache), repo, seed=args.seed, weights=not args.no_weights)
        print(describe(written), flush=True)
        for filename in written.files:
            print(f"    {filename}")
    print(f"Read it with HF_HUB_CACHE={Path(args.cache).resolve()} HF_HUB_OFFLINE=1, and a FLAGDEMO_CACHE of its own:")
    print("flagdemo's CPU default (ONNX) exports each model there on first load, GBs of random-weight graphs.")
    print(NOTICE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
