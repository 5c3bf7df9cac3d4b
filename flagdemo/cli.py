"""The ``flagdemo`` command: ``embed``, ``search``, ``index`` and ``eval`` over whole corpora (docs/corpus.md),
and ``compare``: N systems on the labelled set or a BEIR folder (docs/comparison.md).

Every expected failure is a sentence on stderr and exit status 2; an interruption says how to resume (status 130).
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app.py: spinning OpenMP threads crawl on a shared CPU

from flagdemo.errors import FlagDemoError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {text}")
    return value


def _model_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--model", required=required, help="embedder: catalog name, hub id or model folder")
    parser.add_argument("--batch-size", type=_positive, default=32, help="texts per forward pass (default 32)")
    parser.add_argument("--backend", default=None, help="torch device: cpu, cuda, cuda:1, mps (default: best found)")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "int8"),
        help="fp32 is exact; bf16 / int8 are flagdemo's approximate CPU modes",
    )


def _weights_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights",
        default="fp32",
        choices=("fp32", "fp16"),
        help="fp32 keeps the checkpoint's weights (sentence-transformers' vectors); fp16 rounds them on load, as "
        "FlagEmbedding's default use_fp16=True does (default fp32)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flagdemo", description="Embed, search and evaluate whole corpora.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    embed = commands.add_parser(
        "embed",
        help="embed a corpus into Parquet shards (resumable)",
        description="Embed INPUT (.jsonl, .csv, .parquet or a BEIR folder) into DIR: "
        "Parquet shards with 'id' and 'embedding' plus manifest.json. Run the same command "
        "again after an interruption to finish the job.",
    )
    embed.add_argument("input", metavar="INPUT")
    embed.add_argument("--out", required=True, metavar="DIR", help="folder for the shards and manifest.json")
    _model_options(embed, required=True)
    embed.add_argument("--max-length", type=_positive, default=None, help="tokens per passage (default: the model's)")
    embed.add_argument("--shard-rows", type=_positive, default=10_000, help="rows per Parquet shard (default 10000)")
    _weights_option(embed)
    embed.add_argument("--engine", choices=("local", "ray"), default="local")
    embed.add_argument(
        "--ray-address", default=None, metavar="ADDR", help="join this Ray cluster (default: local Ray)"
    )
    embed.add_argument("--workers", type=_positive, default=1, help="Ray actors, each with its own model (default 1)")
    embed.add_argument("--gpus-per-worker", type=_fraction, default=0.0, metavar="F", help="GPUs per Ray actor")
    embed.add_argument("--text-field", default=None, metavar="F", help="text column (default 'text')")
    embed.add_argument("--id-field", default=None, metavar="F", help="id column (default 'id')")

    search = commands.add_parser("search", help="top-k passages of a stored set for a query")
    search.add_argument("folder", metavar="DIR")
    search.add_argument("query", nargs="+", metavar="QUERY")
    _model_options(search, required=False)
    search.add_argument("-k", type=_positive, default=10, help="results per query (default 10)")
    search.add_argument("--approximate", action="store_true", help="use the faiss index built by `flagdemo index`")
    search.add_argument("--json", action="store_true", help="print JSON instead of a table")

    index = commands.add_parser("index", help="build an approximate (faiss) index of a stored set")
    index.add_argument("folder", metavar="DIR")
    index.add_argument("--lists", type=_positive, default=None, help="inverted lists (default ~4·√rows)")
    index.add_argument("--probes", type=_positive, default=16, help="lists searched per query (default 16)")
    index.add_argument("--check-queries", type=_positive, default=200, help="queries for the recall check")

    evaluate = commands.add_parser("eval", help="nDCG@10, MRR@10, Recall@100 and MAP on a BEIR folder")
    evaluate.add_argument("dataset", metavar="DATASET")
    _model_options(evaluate, required=True)
    _weights_option(evaluate)
    evaluate.add_argument("--embeddings", default=None, metavar="DIR", help="a stored set of the corpus")
    evaluate.add_argument("--reranker", default=None, metavar="NAME")
    evaluate.add_argument("--rerank-top-k", type=_positive, default=100)
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--run-out", default=None, metavar="RUN.trec")
    evaluate.add_argument("--json", default=None, metavar="FILE")

    compare = commands.add_parser(
        "compare",
        help="compare N systems (embedders, BM25, BGE-M3 modes, pipelines, fusions) with paired statistics",
        description="Run every --system on DATA ('labelled' = the bundled set, or a BEIR folder) and write "
        "DIR/runs/NAME.trec, DIR/per_query.csv and DIR/report.json (docs/comparison.md).",
    )
    compare.add_argument("data", metavar="DATA")
    compare.add_argument("--system", action="append", required=True, metavar="NAME=SPEC", help="repeat per system")
    compare.add_argument("--baseline", default=None, metavar="NAME", help="test each system against this one only")
    compare.add_argument("--metrics", nargs="+", default=None, metavar="M", help="default nDCG@10 RR@10 R@100 AP")
    compare.add_argument("--depth", type=_positive, default=100, help="passages per query in the runs (default 100)")
    compare.add_argument("--out", required=True, metavar="DIR")
    compare.add_argument("--split", default="test", help="qrels split of a BEIR folder (default test)")
    compare.add_argument("--max-queries", type=int, default=0, metavar="N", help="the first N queries (0 = all)")
    compare.add_argument("--permutations", type=_positive, default=10_000, help="randomization test (default 10000)")
    compare.add_argument("--seed", type=int, default=42)
    _weights_option(compare)
    compare.add_argument("--backend", default=None, help="torch device (default: best found)")

    sample = commands.add_parser("sample-beir", help="write the bundled labelled set as a BEIR folder (offline demo)")
    sample.add_argument("folder", metavar="DIR")
    return parser


def run_sample(args) -> int:
    from flagdemo.corpus.beir import write_labelled_set

    target = write_labelled_set(args.folder)
    print(f"wrote the labelled set (48 queries, 321 passages, qrels/test.tsv) as a BEIR folder in {target}")
    return 0


def run_embed(args) -> int:
    from flagdemo.corpus.embed import embed
    from flagdemo.corpus.inputs import open_input
    from flagdemo.corpus.job import EmbedSettings

    corpus = open_input(args.input, id_field=args.id_field, text_field=args.text_field)
    settings = EmbedSettings(
        model=args.model,
        batch_size=args.batch_size,
        shard_rows=args.shard_rows,
        backend=args.backend,
        precision=args.precision,
        max_length=args.max_length,
        weights=args.weights,
    )
    embed(
        corpus,
        args.out,
        settings,
        engine=args.engine,
        ray_address=args.ray_address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
    )
    return 0


def run_search(args) -> int:
    import numpy as np

    from flagdemo.corpus import CorpusError
    from flagdemo.corpus.embed import stored_setting
    from flagdemo.corpus.search import VectorIndex, search_index, search_stored
    from flagdemo.corpus.store import open_stored
    from flagdemo.engine import Engine
    from flagdemo.models.backends.precision import with_precision

    stored = open_stored(args.folder)
    model = args.model or stored.model
    if model != stored.model:
        raise CorpusError(
            f"{args.folder} was embedded with {stored.model!r}; search it with that model, not {model!r}."
        )
    precision = stored.manifest.get("precision", "fp32")
    engine = Engine(devices=args.backend, weights=stored_setting(stored.manifest, "weights"))
    embedder = with_precision(engine.load_embedder(model), precision)  # queries as the passages were embedded
    vectors = np.asarray(embedder.encode_queries(args.query, batch_size=args.batch_size), dtype=np.float32)
    vectors = vectors.reshape(len(args.query), -1)
    if vectors.shape[1] != stored.dimension:
        raise CorpusError(f"The model gives {vectors.shape[1]}-dimensional vectors; the set holds {stored.dimension}.")
    if args.approximate:
        index = VectorIndex.load(stored)
        ids, scores = search_index(stored, index, vectors, args.k)
        note = (
            f"approximate ({index.info['kind']}, {index.info['probes']} of {index.info['lists']} lists): "
            f"recall@10 {index.info['recall_at_10']:.3f} against exact on {index.info['recall_queries']} queries"
        )
    else:
        ids, scores = search_stored(stored, vectors, args.k)
        note = f"exact search over {stored.rows:,} rows"
    if args.json:
        results = [
            {"query": q, "hits": [{"id": i, "score": float(s)} for i, s in zip(found, row, strict=False)]}
            for q, found, row in zip(args.query, ids, scores.tolist(), strict=True)
        ]
        print(json.dumps({"search": note, "results": results}, indent=2))
        return 0
    print(note)
    for query, found, row in zip(args.query, ids, scores.tolist(), strict=True):
        print(f"\n{query}")
        for rank, (doc, score) in enumerate(zip(found, row, strict=False), start=1):
            print(f"{rank:4d}  {score:8.4f}  {doc}")
    return 0


def run_index(args) -> int:
    from flagdemo.corpus.search import build_stored_index
    from flagdemo.corpus.store import open_stored

    stored = open_stored(args.folder)
    print(f"building an index of {stored.rows:,} vectors …", file=sys.stderr, flush=True)
    index = build_stored_index(stored, lists=args.lists, probes=args.probes, check_queries=args.check_queries)
    info = index.info
    print(
        f"index saved in {args.folder}: {info['kind']}, {info['lists']} lists, {info['probes']} probed per query; "
        f"recall@10 {info['recall_at_10']:.3f} against exact search on {info['recall_queries']} stored vectors used "
        "as queries"
    )
    return 0


def run_eval(args) -> int:
    from flagdemo.corpus.beir import MEASURES, evaluate
    from flagdemo.corpus.job import EmbedSettings

    settings = EmbedSettings(
        model=args.model,
        batch_size=args.batch_size,
        backend=args.backend,
        precision=args.precision,
        weights=args.weights,
    )
    result = evaluate(
        args.dataset,
        model=args.model,
        embeddings=args.embeddings,
        reranker=args.reranker,
        rerank_top_k=args.rerank_top_k,
        split=args.split,
        run_out=args.run_out,
        settings=settings,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    what = args.model + (f" + {args.reranker} (top {args.rerank_top_k})" if args.reranker else "")
    print(f"{what} on {args.dataset} ({args.split}, {result['queries']:,} queries)")
    for name in MEASURES:
        print(f"{name:<11} {result[name]:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def run_compare(args) -> int:
    from flagdemo.analysis import runs
    from flagdemo.engine import Engine

    if args.data == "labelled":
        data = None
    else:
        from flagdemo.corpus.beir import retrieval_set

        data = retrieval_set(args.data, args.split)
    engine = Engine(devices=args.backend, weights=args.weights)
    outcome = engine.benchmark(
        args.system,
        data=data,
        data_name=args.data,
        measures=args.metrics or runs.DEFAULT_MEASURES,
        depth=args.depth,
        baseline=args.baseline,
        max_queries=args.max_queries,
        permutations=args.permutations,
        seed=args.seed,
        progress=lambda _, what: print(f"running {what} …", file=sys.stderr, flush=True),
    )
    out = Path(args.out).expanduser()
    outcome.write(out)
    print(f"{len(outcome.systems)} systems on {args.data}: {outcome.n_queries} queries, {outcome.n_passages} passages")
    table = outcome.means.copy()
    table.insert(0, "tier", [outcome.tiers[outcome.measures[0]][s] for s in table.index])
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    for sentence in outcome.sentences:
        print(f"- {sentence}")
    print(f"wrote {out / 'runs'}/*.trec, {out / 'per_query.csv'} and {out / 'report.json'} in {outcome.seconds:.1f} s")
    return 0


COMMANDS = {
    "compare": run_compare,
    "embed": run_embed,
    "search": run_search,
    "index": run_index,
    "eval": run_eval,
    "sample-beir": run_sample,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except FlagDemoError as error:
        print(f"flagdemo {args.command}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"flagdemo {args.command}: interrupted; run the same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:  # a disk that is full or a folder we may not write: the system's own sentence
        print(f"flagdemo {args.command}: {error.strerror or error} ({error.filename or 'no file'}).", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
