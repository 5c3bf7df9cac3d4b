"""bf16 against fp32 for a decoder reranker, on the labelled set: what running it in bf16 on a CPU costs in rankings.

``python -m benchmarks.llm_precision --reranker NAME`` retrieves each query's top-k with the embedder, scores the same
pairs with the reranker loaded three times (fp32; bf16 as FlagEmbedding's ``use_bf16=True`` loads it; bf16 weights
computed in fp32, flagdemo's ``bf16-weights``), and reports for each precision nDCG@k and its time, and against fp32:
the largest score difference (also as a share of the fp32 scores' spread), the queries whose top passage changes,
and the mean Kendall tau of the two orders per query. A layer-wise reranker is scored at ``--cutoff-layer``. Writes
``benchmarks/results/llm_precision-<reranker>.json``.

The app's BGE set holds bge-reranker-v2-minicpm-layerwise in bf16 (fp32 would not fit a free Space's budget) and
computes in bf16 or, on a CPU without bf16 instructions, in fp32; this is the command that measures both against
fp32 where the real weights can load (the hub reachable, or in its cache).
Seeded rehearsal weights load too, but their differences mean nothing, so the report names the model it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).resolve().parent / "results"
PRECISIONS = {
    "fp32": {"use_bf16": False},
    "bf16": {"use_bf16": True},
    "bf16-weights": {"use_bf16": True, "fp32_arithmetic": True},
}


def measure(*, embedder: str, reranker: str, top_k: int, k: int, per_topic: int | None, cutoff_layer: int | None):
    """The report (a dict) for ``reranker`` over ``embedder``'s top ``top_k`` on the labelled set."""
    from flagdemo import FlagAutoModel, FlagAutoReranker
    from flagdemo.analysis import evaluation
    from flagdemo.data.datasets import load_retrieval_set

    labelled = load_retrieval_set().subset(per_topic=per_topic)
    first_stage = evaluation.retrieve(FlagAutoModel.from_finetuned(embedder), labelled, k, name=embedder)
    pairs, index = evaluation.rerank_pairs(labelled, first_stage, top_k)
    extra = {} if cutoff_layer is None else {"cutoff_layers": [cutoff_layer]}
    scores, report = {}, {}
    for precision, settings in PRECISIONS.items():
        model = FlagAutoReranker.from_finetuned(reranker, **settings)
        model.compute_score(pairs[:4], **extra)  # untimed warm-up: one-off set-up is not the precision's
        started = time.perf_counter()
        scores[precision] = evaluation.flat_scores(model.compute_score(pairs, **extra), len(pairs))
        seconds = time.perf_counter() - started
        run = evaluation.reranked_run(index, scores[precision], first_stage)
        summary = evaluation.evaluate_run(run, labelled, k, name=precision).summary
        report[f"{precision} nDCG@{k}"] = round(float(summary[f"nDCG@{k}"].iloc[0]), 4)
        report[f"{precision} seconds"] = round(seconds, 1)
        del model
    return {
        "embedder": embedder,
        "reranker": reranker,
        "cutoff_layer": cutoff_layer,
        "queries": len(labelled.queries),
        "pairs": len(pairs),
        "top_k": top_k,
        **report,
        **agreement(index, scores["fp32"], scores["bf16"]),
        **{
            f"bf16-weights: {key}": value
            for key, value in agreement(index, scores["fp32"], scores["bf16-weights"]).items()
        },
    }


def agreement(index, exact: np.ndarray, rounded: np.ndarray) -> dict:
    """How far the ``rounded`` scores of the pairs in ``index`` (one row per pair, with its query_id) are from the
    ``exact`` ones: the largest difference, that as a share of the exact scores' spread, the queries whose top
    passage changes, and the mean Kendall tau of the two orders per query."""
    from flagdemo.analysis import metrics

    largest = float(np.max(np.abs(exact - rounded)))
    spread = float(np.ptp(exact)) or 1.0
    changed, taus = 0, []
    for _, rows in index.assign(exact=exact, rounded=rounded).groupby("query_id", sort=False):
        changed += int(rows["exact"].idxmax() != rows["rounded"].idxmax())
        if len(rows) > 1:
            taus.append(metrics.kendall_tau(rows["exact"].to_numpy(), rows["rounded"].to_numpy()))
    return {
        "largest score difference": round(largest, 5),
        "largest difference / fp32 spread": round(largest / spread, 5),
        "queries whose top passage changes": changed,
        "mean Kendall tau per query": round(float(np.mean(taus)), 4) if taus else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="all-MiniLM-L6-v2")
    parser.add_argument("--reranker", default="SmolLM2-135M-Instruct")
    parser.add_argument("--cutoff-layer", type=int, default=None, help="a layer-wise reranker's layer (e.g. 28)")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--per-topic", type=int, default=None, help="only the first N queries of each topic")
    parser.add_argument("--out", type=Path, default=None, help="default: results/llm_precision-<reranker>.json")
    args = parser.parse_args(argv)
    result = measure(
        embedder=args.embedder,
        reranker=args.reranker,
        top_k=args.top_k,
        k=args.k,
        per_topic=args.per_topic,
        cutoff_layer=args.cutoff_layer,
    )
    out = args.out or RESULTS / f"llm_precision-{Path(args.reranker).name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
