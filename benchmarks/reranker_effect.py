"""The measured effect of the offline LLM reranker on the labelled set: the figures the Rerankers tab quotes.

``python -m benchmarks.reranker_effect`` retrieves with all-MiniLM-L6-v2 over the bundled passages, lets
SmolLM2-135M-Instruct (as FlagAutoReranker loads it, with the catalog's prompt preset) rerank each query's top-20,
and writes nDCG@10 / MRR@10 of both to ``benchmarks/results/reranker_effect.json``.
``flagdemo.ui.views.text`` states these numbers on the page and a test checks that they match the file. No layer sweep:
that is ``make quality``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULT_FILE = Path(__file__).resolve().parent / "results" / "reranker_effect.json"


def measure(*, embedder: str, reranker: str, top_k: int, k: int, per_topic: int | None) -> dict:
    """nDCG@k and MRR@k of the embedder alone and of the reranker over its top ``top_k``, on the labelled set.

    ``per_topic`` keeps the first N queries of every topic (all passages stay): a quicker run that still covers
    every topic and language mix."""
    from flagdemo import FlagAutoModel, FlagAutoReranker
    from flagdemo.analysis import evaluation
    from flagdemo.data.datasets import load_retrieval_set

    labelled = load_retrieval_set().subset(per_topic=per_topic)
    started = time.perf_counter()
    first_stage = evaluation.retrieve(FlagAutoModel.from_finetuned(embedder), labelled, k, name=embedder)
    reranked = evaluation.rerank(
        FlagAutoReranker.from_finetuned(reranker), labelled, first_stage, top_k, k, name=reranker
    )
    runs = {"embedder": first_stage, "reranker": reranked}
    return {
        "embedder": embedder,
        "reranker": reranker,
        "queries": len(labelled.queries),
        "topics": int(labelled.queries["topic"].nunique()),
        "passages": len(labelled.passages),
        "top_k": top_k,
        "k": k,
        **{
            f"{role} {metric}": round(float(run.summary[metric].iloc[0]), 3)
            for role, run in runs.items()
            for metric in (f"nDCG@{k}", f"MRR@{k}")
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="all-MiniLM-L6-v2")
    parser.add_argument("--reranker", default="SmolLM2-135M-Instruct")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--per-topic", type=int, default=None, help="only the first N queries of each topic")
    parser.add_argument("--out", type=Path, default=RESULT_FILE)
    args = parser.parse_args(argv)
    result = measure(
        embedder=args.embedder, reranker=args.reranker, top_k=args.top_k, k=args.k, per_topic=args.per_topic
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
