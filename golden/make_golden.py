"""Run FlagEmbedding 1.4.2 on the tiny models and write replayable golden cases to tests/golden/*.json.

Runs in the golden env (transformers 4.x: FlagEmbedding 1.4.2 does not import on 5.x). Every case records the public
class name, how it was built (constructor or from_finetuned), the constructor kwargs, the method, its arguments and
the encoded result, so tests/golden/test_golden_parity.py can replay it against flagdemo in the normal suite.
Everything runs on CPU in fp32 (devices="cpu", use_fp16=False).
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers

os.environ.setdefault("TQDM_DISABLE", "1")
transformers.logging.set_verbosity_error()

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "assets" / "tiny"
GOLDEN = REPO / "tests" / "golden"
sys.path.insert(0, str(GOLDEN))

import FlagEmbedding  # noqa: E402
from golden_codec import decode, encode  # noqa: E402  (shared with the replay test, lives next to the JSON)

CPU_FP32 = {"devices": "cpu", "use_fp16": False}
TOKENIZATION_SAMPLES = 5

QUERIES = [
    "What is the capital of France?",
    "how do cats sleep",
    "Wie schnell läuft der Hund?",
    "我们喜欢学习什么？",
]
PASSAGES = [
    "Paris is the capital and largest city of France, on the river Seine.",
    "Cats sleep for twelve to sixteen hours a day, mostly in short naps.",
    "Der Hund läuft schnell über die große Straße und die Kinder spielen im Garten.",
    "我们喜欢学习机器语言模型。",
]
LONG_TEXT = (
    "Dense retrieval encodes queries and passages into vectors, and a reranker then reads each query with each "
    "candidate passage to score how well the passage answers the query, which is slower but more accurate."
)
MIXED = [
    "The cat sat on the mat.",
    LONG_TEXT,
    "Le chat est sur la table très belle, et les enfants jouent dans le jardin.",
    "Der Hund läuft über die Straße.",
    "北京今天天气很好。",
    "Rocket launch 🚀 tonight 🎉 with a fox 🦊",
    "",
    "ok",
]
PAIRS = [
    [QUERIES[0], PASSAGES[0]],
    [QUERIES[0], PASSAGES[1]],
    [QUERIES[1], PASSAGES[1]],
    [QUERIES[2], PASSAGES[2]],
    [QUERIES[3], PASSAGES[3]],
    ["emoji 🚀 🦊?", "Rocket launch 🚀 tonight 🎉"],
    [QUERIES[1], LONG_TEXT],
]
LONG_PAIRS = [
    [LONG_TEXT, LONG_TEXT],
    [QUERIES[0] + " " + LONG_TEXT, PASSAGES[0] + " " + LONG_TEXT],
    ["short", LONG_TEXT],
    [LONG_TEXT, "short"],
]
RETRIEVAL_INSTRUCTION = "Represent this sentence for searching relevant passages: "
LLM_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


class Recorder:
    """Builds (and reuses) FlagEmbedding objects, calls them, and collects the encoded cases."""

    def __init__(self) -> None:
        self.instances: dict[str, Any] = {}
        self.cases: list[dict[str, Any]] = []
        self.models_used: set[str] = set()

    def instance(self, class_name: str, factory: str | None, model: str, init: dict[str, Any]) -> Any:
        key = json.dumps([class_name, factory, model, init], sort_keys=True)
        if key not in self.instances:
            cls = getattr(FlagEmbedding, class_name)
            path = str(TINY / model)
            self.instances[key] = getattr(cls, factory)(path, **init) if factory else cls(path, **init)
        return self.instances[key]

    def case(
        self,
        case_id: str,
        class_name: str,
        model: str,
        init: dict[str, Any],
        method: str,
        *args: Any,
        factory: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Record one call. Arguments are stored encoded and replayed decoded, so the replay sees equal values."""
        if any(existing["id"] == case_id for existing in self.cases):
            raise ValueError(f"duplicate case id {case_id}")
        init = {**CPU_FP32, **init}
        instance = self.instance(class_name, factory, model, init)
        encoded_args, encoded_kwargs = encode(list(args)), encode(kwargs)
        result = getattr(instance, method)(*decode(copy.deepcopy(encoded_args)), **decode(encoded_kwargs))
        encoded_result = encode(result)
        if "NaN" in json.dumps(encoded_result) or "Infinity" in json.dumps(encoded_result):
            raise ValueError(f"{case_id}: FlagEmbedding returned a non-finite number; the case would prove nothing")
        self.models_used.add(model)
        self.cases.append(
            {
                "id": case_id,
                "class": class_name,
                "factory": factory,
                "model": model,
                "init": init,
                "method": method,
                "args": encoded_args,
                "kwargs": encoded_kwargs,
                "result": encoded_result,
            }
        )
        return result


def record_dense_embedders(rec: Recorder) -> None:
    for pooling in ("cls", "mean"):
        init = {"pooling_method": pooling}
        p = f"dense-{pooling}"
        rec.case(f"{p}-encode-mixed", "FlagModel", "bert-embedder", init, "encode", MIXED)
        rec.case(f"{p}-encode-single-string", "FlagModel", "bert-embedder", init, "encode", PASSAGES[0])
        rec.case(f"{p}-encode-empty-string", "FlagModel", "bert-embedder", init, "encode", [""])
        rec.case(f"{p}-encode-truncated-12", "FlagModel", "bert-embedder", init, "encode", MIXED, max_length=12)
        rec.case(f"{p}-encode-batch-3", "FlagModel", "bert-embedder", init, "encode", MIXED, batch_size=3)
        rec.case(f"{p}-encode-tensor", "FlagModel", "bert-embedder", init, "encode", MIXED, convert_to_numpy=False)
        rec.case(f"{p}-encode-corpus", "FlagModel", "bert-embedder", init, "encode_corpus", PASSAGES)
        rec.case(f"{p}-encode-queries-no-instruction", "FlagModel", "bert-embedder", init, "encode_queries", QUERIES)

    instructed = {"query_instruction_for_retrieval": RETRIEVAL_INSTRUCTION}
    rec.case("dense-cls-queries-instruction", "FlagModel", "bert-embedder", instructed, "encode_queries", QUERIES)
    rec.case(
        "dense-cls-queries-instruction-single", "FlagModel", "bert-embedder", instructed, "encode_queries", QUERIES[0]
    )
    rec.case(
        "dense-cls-corpus-ignores-query-instruction",
        "FlagModel",
        "bert-embedder",
        instructed,
        "encode_corpus",
        PASSAGES,
    )
    rec.case("dense-cls-encode-ignores-query-instruction", "FlagModel", "bert-embedder", instructed, "encode", QUERIES)
    rec.case(
        "dense-cls-queries-instruction-batch-2-truncated",
        "FlagModel",
        "bert-embedder",
        instructed,
        "encode_queries",
        [*QUERIES, LONG_TEXT],
        batch_size=2,
        max_length=14,
    )
    for label, fmt in (("literal-backslash-n", "{}\\n{}"), ("instruct-query", "Instruct: {}\nQuery: {}")):
        init = {"query_instruction_for_retrieval": "Find the answer", "query_instruction_format": fmt}
        rec.case(f"dense-cls-queries-format-{label}", "FlagModel", "bert-embedder", init, "encode_queries", QUERIES)
    rec.case(
        "dense-mean-encode-explicit-instruction",
        "FlagModel",
        "bert-embedder",
        {"pooling_method": "mean"},
        "encode",
        QUERIES,
        instruction="query: ",
        instruction_format="{}{}",
    )
    passage_instructed = {
        "passage_instruction_for_retrieval": "passage: ",
        "query_instruction_for_retrieval": "query: ",
    }
    rec.case(
        "dense-mean-corpus-passage-instruction",
        "FlagModel",
        "bert-embedder",
        {"pooling_method": "mean", **passage_instructed},
        "encode_corpus",
        PASSAGES,
    )
    lengths = {"query_max_length": 8, "passage_max_length": 16}
    for method in ("encode_queries", "encode_corpus", "encode"):
        rec.case(f"dense-cls-lengths-{method}", "FlagModel", "bert-embedder", lengths, method, MIXED)
    rec.case("dense-cls-unnormalized", "FlagModel", "bert-embedder", {"normalize_embeddings": False}, "encode", MIXED)
    rec.case(
        "dense-mean-unnormalized-single",
        "FlagModel",
        "bert-embedder",
        {"pooling_method": "mean", "normalize_embeddings": False},
        "encode",
        LONG_TEXT,
    )
    rec.case("dense-cls-truncate-dim-8", "FlagModel", "bert-embedder", {"truncate_dim": 8}, "encode", MIXED)
    rec.case(
        "dense-mean-truncate-dim-8-unnormalized",
        "FlagModel",
        "bert-embedder",
        {"pooling_method": "mean", "truncate_dim": 8, "normalize_embeddings": False},
        "encode_queries",
        QUERIES,
    )
    rec.case(
        "dense-cls-init-tensor-output",
        "FlagModel",
        "bert-embedder",
        {"convert_to_numpy": False},
        "encode_corpus",
        PASSAGES,
    )
    rec.case(
        "dense-auto-default-pooling",
        "FlagAutoModel",
        "bert-embedder",
        {"model_class": "encoder-only-base", "query_instruction_for_retrieval": RETRIEVAL_INSTRUCTION},
        "encode_queries",
        QUERIES,
        factory="from_finetuned",
    )
    rec.case(
        "dense-auto-mean-pooling",
        "FlagAutoModel",
        "bert-embedder",
        {"model_class": "encoder-only-base", "pooling_method": "mean"},
        "encode",
        MIXED,
        factory="from_finetuned",
    )


def record_m3(rec: Recorder) -> None:
    all_outputs = {"return_dense": True, "return_sparse": True, "return_colbert_vecs": True}
    m3 = ("BGEM3FlagModel", "xlmr-m3")
    rec.case("m3-encode-default-dense-only", *m3, {}, "encode", MIXED)
    mixed = rec.case("m3-encode-all-outputs", *m3, {}, "encode", MIXED, **all_outputs)
    rec.case("m3-encode-single-string", *m3, {}, "encode", PASSAGES[0], **all_outputs)
    rec.case("m3-encode-empty-string", *m3, {}, "encode", [""], **all_outputs)
    rec.case("m3-encode-truncated-10-batch-2", *m3, {}, "encode", MIXED, max_length=10, batch_size=2, **all_outputs)
    rec.case("m3-encode-sparse-only", *m3, {}, "encode", PASSAGES, return_dense=False, return_sparse=True)
    rec.case("m3-init-all-outputs", *m3, {**all_outputs, "query_max_length": 9}, "encode_queries", QUERIES)
    queries = rec.case("m3-encode-queries", *m3, {}, "encode_queries", QUERIES, **all_outputs)
    passages = rec.case("m3-encode-corpus", *m3, {}, "encode_corpus", PASSAGES, **all_outputs)
    rec.case("m3-unnormalized", *m3, {"normalize_embeddings": False}, "encode", MIXED, **all_outputs)
    rec.case("m3-truncate-dim-8", *m3, {"truncate_dim": 8}, "encode", MIXED, **all_outputs)
    rec.case("m3-mean-pooling", *m3, {"pooling_method": "mean"}, "encode", MIXED, **all_outputs)
    rec.case(
        "m3-auto-from-finetuned",
        "FlagAutoModel",
        "xlmr-m3",
        {"model_class": "encoder-only-m3"},
        "encode",
        MIXED,
        factory="from_finetuned",
        **all_outputs,
    )

    lexical = mixed["lexical_weights"]
    rec.case("m3-lexical-score-dict-dict", *m3, {}, "compute_lexical_matching_score", lexical[0], lexical[2])
    rec.case("m3-lexical-score-self", *m3, {}, "compute_lexical_matching_score", lexical[1], lexical[1])
    rec.case(
        "m3-lexical-score-list-list",
        *m3,
        {},
        "compute_lexical_matching_score",
        queries["lexical_weights"],
        passages["lexical_weights"],
    )
    rec.case("m3-convert-id-to-token", *m3, {}, "convert_id_to_token", lexical)
    for i, j in ((0, 0), (1, 1), (0, 3)):
        rec.case(
            f"m3-colbert-score-q{i}-p{j}",
            *m3,
            {},
            "colbert_score",
            queries["colbert_vecs"][i],
            passages["colbert_vecs"][j],
        )

    rec.case("m3-compute-score-many", *m3, {}, "compute_score", PAIRS)
    rec.case("m3-compute-score-one-pair", *m3, {}, "compute_score", PAIRS[0])
    rec.case("m3-compute-score-weights", *m3, {}, "compute_score", PAIRS, weights_for_different_modes=[0.4, 0.2, 0.4])
    rec.case(
        "m3-compute-score-one-pair-weights",
        *m3,
        {},
        "compute_score",
        PAIRS[3],
        weights_for_different_modes=[1.0, 0.3, 1.0],
    )
    rec.case(
        "m3-compute-score-truncated-batch-2",
        *m3,
        {},
        "compute_score",
        PAIRS + LONG_PAIRS,
        batch_size=2,
        max_query_length=8,
        max_passage_length=12,
    )
    rec.case("m3-compute-score-unnormalized", *m3, {"normalize_embeddings": False}, "compute_score", PAIRS)
    rec.case("m3-compute-score-ignores-truncate-dim", *m3, {"truncate_dim": 8}, "compute_score", PAIRS)


def record_llm_embedders(rec: Recorder) -> None:
    for model in ("llama-decoder", "llama-decoder-left"):
        side = "right" if model == "llama-decoder" else "left"
        llm = ("FlagLLMModel", model)
        instructed = {"query_instruction_for_retrieval": LLM_INSTRUCTION}
        rec.case(f"llm-{side}-encode-mixed", *llm, {}, "encode", MIXED)
        rec.case(f"llm-{side}-encode-single-string", *llm, {}, "encode", PASSAGES[1])
        rec.case(f"llm-{side}-encode-truncated-10", *llm, {}, "encode", MIXED, max_length=10)
        rec.case(f"llm-{side}-encode-batch-3", *llm, {}, "encode", MIXED, batch_size=3)
        rec.case(f"llm-{side}-encode-equal-lengths", *llm, {}, "encode", ["one two", "three four"])
        rec.case(f"llm-{side}-queries-instruct-format", *llm, instructed, "encode_queries", QUERIES)
        rec.case(f"llm-{side}-corpus", *llm, instructed, "encode_corpus", PASSAGES)
        rec.case(
            f"llm-{side}-unnormalized-truncate-dim",
            *llm,
            {"normalize_embeddings": False, "truncate_dim": 8},
            "encode",
            MIXED,
        )
        rec.case(f"llm-{side}-tensor-output", *llm, {}, "encode", QUERIES, convert_to_numpy=False)
    rec.case(
        "llm-auto-from-finetuned-format-reset",
        "FlagAutoModel",
        "llama-decoder",
        {"model_class": "decoder-only-base", "query_instruction_for_retrieval": LLM_INSTRUCTION},
        "encode_queries",
        QUERIES,
        factory="from_finetuned",
    )
    rec.case(
        "llm-auto-from-finetuned-explicit-format",
        "FlagAutoModel",
        "llama-decoder-left",
        {
            "model_class": "decoder-only-base",
            "query_instruction_for_retrieval": LLM_INSTRUCTION,
            "query_instruction_format": "Instruct: {}\\nQuery:{}",
        },
        "encode_queries",
        QUERIES,
        factory="from_finetuned",
    )


def record_cross_rerankers(rec: Recorder) -> None:
    for model in ("bert-cross-encoder", "xlmr-cross-encoder"):
        short = model.split("-")[0]
        ce = ("FlagReranker", model)
        rec.case(f"cross-{short}-raw", *ce, {}, "compute_score", PAIRS)
        rec.case(f"cross-{short}-normalize-kwarg", *ce, {}, "compute_score", PAIRS, normalize=True)
        rec.case(f"cross-{short}-normalize-init", *ce, {"normalize": True}, "compute_score", PAIRS)
        rec.case(f"cross-{short}-one-pair", *ce, {}, "compute_score", PAIRS[0])
        rec.case(f"cross-{short}-one-pair-normalized", *ce, {}, "compute_score", PAIRS[2], normalize=True)
        rec.case(f"cross-{short}-batch-2", *ce, {}, "compute_score", PAIRS + LONG_PAIRS, batch_size=2)
        rec.case(
            f"cross-{short}-truncated-kwargs",
            *ce,
            {},
            "compute_score",
            PAIRS + LONG_PAIRS,
            max_length=16,
            query_max_length=6,
        )
        rec.case(
            f"cross-{short}-truncated-init",
            *ce,
            {"max_length": 20, "query_max_length": 7},
            "compute_score",
            LONG_PAIRS,
        )
        rec.case(f"cross-{short}-default-query-budget", *ce, {"max_length": 24}, "compute_score", LONG_PAIRS)
        rec.case(
            f"cross-{short}-auto-passage-max-length-accepted",
            "FlagAutoReranker",
            model,
            {"model_class": "encoder-only-base", "query_max_length": 256, "passage_max_length": 512},
            "compute_score",
            PAIRS,
            factory="from_finetuned",
        )
        rec.case(
            f"cross-{short}-query-instruction",
            *ce,
            {"query_instruction_for_rerank": "query: ", "passage_instruction_for_rerank": "passage: "},
            "compute_score",
            PAIRS,
        )


def record_llm_rerankers(rec: Recorder) -> None:
    custom_prompt = "Does passage B answer query A? Say Yes or No."
    for model in ("llama-decoder", "llama-decoder-left"):
        side = "right" if model == "llama-decoder" else "left"
        llm = ("FlagLLMReranker", model)
        rec.case(f"llmrr-{side}-default-prompt", *llm, {}, "compute_score", PAIRS)
        rec.case(f"llmrr-{side}-normalize", *llm, {}, "compute_score", PAIRS, normalize=True)
        rec.case(f"llmrr-{side}-one-pair", *llm, {}, "compute_score", PAIRS[0])
        rec.case(f"llmrr-{side}-custom-prompt-kwarg", *llm, {}, "compute_score", PAIRS, prompt=custom_prompt)
        rec.case(f"llmrr-{side}-custom-prompt-init", *llm, {"prompt": custom_prompt}, "compute_score", PAIRS[:3])
        rec.case(
            f"llmrr-{side}-truncated",
            *llm,
            {},
            "compute_score",
            PAIRS + LONG_PAIRS,
            max_length=24,
            query_max_length=8,
        )
        rec.case(f"llmrr-{side}-truncated-init", *llm, {"max_length": 20}, "compute_score", LONG_PAIRS)
        rec.case(f"llmrr-{side}-batch-2", *llm, {}, "compute_score", PAIRS + LONG_PAIRS, batch_size=2)
    rec.case(
        "llmrr-auto-from-finetuned",
        "FlagAutoReranker",
        "llama-decoder",
        {"model_class": "decoder-only-base", "normalize": True},
        "compute_score",
        PAIRS,
        factory="from_finetuned",
    )


def record_layerwise(rec: Recorder) -> None:
    lw = ("LayerWiseFlagLLMReranker", "minicpm-layerwise")
    rec.case("layerwise-default-last-layer", *lw, {}, "compute_score", PAIRS)
    rec.case("layerwise-one-layer-list", *lw, {}, "compute_score", PAIRS, cutoff_layers=[4])
    rec.case("layerwise-one-layer-int", *lw, {}, "compute_score", PAIRS, cutoff_layers=3)
    rec.case("layerwise-start-layer", *lw, {}, "compute_score", PAIRS, cutoff_layers=[2])
    rec.case("layerwise-several-layers", *lw, {}, "compute_score", PAIRS, cutoff_layers=[2, 4, 6])
    rec.case("layerwise-all-layers", *lw, {}, "compute_score", PAIRS, cutoff_layers=[2, 3, 4, 5, 6])
    rec.case("layerwise-several-normalized", *lw, {}, "compute_score", PAIRS, cutoff_layers=[3, 5], normalize=True)
    rec.case("layerwise-one-pair", *lw, {}, "compute_score", PAIRS[0])
    rec.case("layerwise-one-pair-several-layers", *lw, {}, "compute_score", PAIRS[1], cutoff_layers=[2, 6])
    rec.case("layerwise-init-cutoff", *lw, {"cutoff_layers": [3, 5]}, "compute_score", PAIRS)
    rec.case(
        "layerwise-truncated-batch-2",
        *lw,
        {},
        "compute_score",
        PAIRS + LONG_PAIRS,
        max_length=24,
        query_max_length=8,
        batch_size=2,
        cutoff_layers=[4, 6],
    )
    rec.case("layerwise-custom-prompt", *lw, {"prompt": "Is B relevant to A?"}, "compute_score", PAIRS[:4])
    # use_bf16 on a CPU: FlagEmbedding loads and runs the model in bf16 there. (FlagLLMReranker's bf16 is left out:
    # transformers 5's Llama and 4.57's differ in bf16 by up to 0.016 on these scores; docs/golden-parity.md.)
    rec.case("layerwise-bf16-cpu", *lw, {"use_bf16": True}, "compute_score", PAIRS + LONG_PAIRS, cutoff_layers=[3, 6])
    rec.case(
        "layerwise-auto-from-finetuned",
        "FlagAutoReranker",
        "minicpm-layerwise",
        {"model_class": "decoder-only-layerwise", "cutoff_layers": [4]},
        "compute_score",
        PAIRS,
        factory="from_finetuned",
    )


def check_layerwise_class(rec: Recorder) -> None:
    """FlagEmbedding silently falls back to AutoModelForCausalLM if its bundled class fails to load: refuse that."""
    from FlagEmbedding.inference.reranker.decoder_only.models.modeling_minicpm_reranker import (
        LayerWiseMiniCPMForCausalLM,
    )

    for key, instance in rec.instances.items():
        if "LayerWiseFlagLLMReranker" in key or "decoder-only-layerwise" in key:
            assert isinstance(instance.model, LayerWiseMiniCPMForCausalLM), type(instance.model)


def tokenization_samples(rec: Recorder) -> list[dict[str, Any]]:
    """The ids FlagEmbedding's own tokenizers produced, for debugging a replay failure (and checked by the test)."""
    samples = []
    texts = [*MIXED, QUERIES[3], "A: " + QUERIES[0], "B: " + PASSAGES[0], "\n", "Yes"]
    seen = set()
    for key, instance in rec.instances.items():
        model = json.loads(key)[2]
        if model in seen:
            continue
        seen.add(model)
        for text in texts:
            for add_special_tokens in (True, False):
                ids = instance.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
                samples.append(
                    {"model": model, "text": text, "add_special_tokens": add_special_tokens, "input_ids": ids}
                )
    return samples


def header(models: set[str]) -> dict[str, Any]:
    manifest = json.loads((TINY / "MANIFEST.json").read_text())
    return {
        "generator": "golden/make_golden.py",
        "versions": {
            "FlagEmbedding": importlib.metadata.version("FlagEmbedding"),
            "transformers": importlib.metadata.version("transformers"),
            "tokenizers": importlib.metadata.version("tokenizers"),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "device": "cpu",
        "dtype": "float32",
        "tolerance": 1e-5,
        "models": {name: manifest[name] for name in sorted(models)},
    }


def render(head: dict[str, Any], tokenization: list[dict[str, Any]], cases: list[dict[str, Any]]) -> str:
    """Valid JSON with one line per case and per tokenization sample, so diffs of regenerated goldens stay readable."""

    def lines(items: list[dict[str, Any]]) -> str:
        return ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in items)

    return (
        '{\n "header": '
        + json.dumps(head, ensure_ascii=False, indent=1).replace("\n", "\n ")
        + ',\n "tokenization": [\n'
        + lines(tokenization)
        + '\n ],\n "cases": [\n'
        + lines(cases)
        + "\n ]\n}\n"
    )


FAMILIES = {
    "embedders_dense": record_dense_embedders,
    "embedders_m3": record_m3,
    "embedders_llm": record_llm_embedders,
    "rerankers_cross": record_cross_rerankers,
    "rerankers_llm": record_llm_rerankers,
    "rerankers_layerwise": record_layerwise,
}


def main() -> None:
    torch.manual_seed(0)
    wanted = sys.argv[1:] or list(FAMILIES)
    for family in wanted:
        rec = Recorder()
        FAMILIES[family](rec)
        check_layerwise_class(rec)
        path = GOLDEN / f"{family}.json"
        path.write_text(render(header(rec.models_used), tokenization_samples(rec), rec.cases))
        print(f"{path.relative_to(REPO)}: {len(rec.cases)} cases")


if __name__ == "__main__":
    main()
