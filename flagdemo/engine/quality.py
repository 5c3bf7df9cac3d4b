"""``make quality``: the offline default models' retrieval quality on the bundled labelled set (docs/teaching.md).

The models run here; the metrics and tables are ``flagdemo.analysis.evaluation``'s.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import pandas as pd

from flagdemo.analysis.evaluation import (
    Embedder,
    Reranker,
    best_layer,
    layer_sweep_metrics,
    markdown_table,
    metric_names,
    model_name_of,
    rerank,
    rerank_pairs,
    retrieve,
)
from flagdemo.data.datasets import load_retrieval_set
from flagdemo.models.embedders import FlagAutoModel
from flagdemo.models.rerankers import FlagAutoReranker, layer_sweep


def default_models_report(
    embedder: str | Embedder = "all-MiniLM-L6-v2",
    reranker: str | Reranker = "SmolLM2-135M-Instruct",
    *,
    top_k: int = 20,
    k: int = 10,
    max_queries: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Retrieval quality of the offline default models on the bundled set: the table docs/teaching.md reports.

    Returns (summary, per-layer table): the embedder's retrieval, the reranker's rerank of the top ``top_k``, and
    the reranker cut off at its best layer (highest nDCG@k in one logit-lens / layer-wise sweep). Models may be given
    by name (loaded through FlagAutoModel / FlagAutoReranker) or as loaded objects.
    """
    retrieval_set = load_retrieval_set()
    if max_queries is not None:
        retrieval_set = retrieval_set.subset(max_queries=max_queries)
    if isinstance(embedder, str):
        embedder = FlagAutoModel.from_finetuned(embedder)
    if isinstance(reranker, str):
        reranker = FlagAutoReranker.from_finetuned(reranker)
    embedder_name, reranker_name = model_name_of(embedder, "embedder"), model_name_of(reranker, "reranker")
    first_stage = retrieve(embedder, retrieval_set, k, name=f"{embedder_name} retrieval")
    reranked = rerank(reranker, retrieval_set, first_stage, top_k, k, name=f"{reranker_name} rerank top-{top_k}")
    pairs, pair_index = rerank_pairs(retrieval_set, first_stage, top_k)
    sweep = layer_sweep(reranker, pairs)
    per_layer = layer_sweep_metrics(sweep, pair_index, retrieval_set, k, first_stage)
    best = best_layer(per_layer, f"nDCG@{k}")
    best_row = pd.DataFrame(
        [
            {
                "name": f"{reranker_name} cut at layer {int(best['layer'])} of {int(per_layer['layer'].max())}",
                **{metric: float(best[metric]) for metric in metric_names(k)},
                "queries": len(retrieval_set.queries),
                "seconds": float(best["cumulative_seconds"]),
            }
        ]
    )
    return pd.concat([first_stage.summary, reranked.summary, best_row], ignore_index=True), per_layer


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m flagdemo.engine.quality`` (``make quality``): the default models' quality on the labelled set."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--embedder", default="all-MiniLM-L6-v2")
    parser.add_argument("--reranker", default="SmolLM2-135M-Instruct")
    parser.add_argument("--top-k", type=int, default=20, help="first-stage passages the reranker reorders")
    parser.add_argument("--k", type=int, default=10, help="metric cutoff")
    parser.add_argument("--max-queries", type=int, default=None, help="evaluate only the first N queries (quick look)")
    parser.add_argument("--csv", default=None, help="also write the summary table to this CSV file")
    args = parser.parse_args(argv)
    summary, per_layer = default_models_report(
        args.embedder, args.reranker, top_k=args.top_k, k=args.k, max_queries=args.max_queries
    )
    print(markdown_table(summary))
    print()
    print(markdown_table(per_layer))
    if args.csv:
        summary.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
