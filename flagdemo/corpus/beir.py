"""``flagdemo eval``: retrieval (and optional reranking) on a BEIR folder, a TREC run file, trec_eval's measures.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``, with a header line). Only queries with judgements in
the split are evaluated. As in BEIR's evaluation, a passage whose id equals the query's id is left out of that query's
results. Measures (``flagdemo.analysis.metrics``, trec_eval's definitions) are computed from the run exactly as
written to the run file — the same scores, the same tie order — so ir-measures on that file and the qrels gives the
same numbers.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from flagdemo.analysis import metrics
from flagdemo.corpus import CorpusError
from flagdemo.corpus.embed import embed, stored_setting
from flagdemo.corpus.inputs import BEIR_CORPUS, open_input
from flagdemo.corpus.job import EmbedSettings, dense_vectors
from flagdemo.corpus.search import exact_top_k
from flagdemo.corpus.store import StoredSet, open_stored

MEASURES = ("nDCG@10", "MRR@10", "Recall@100", "MAP")
RETRIEVE_DEPTH = 100
RUN_TAG = "flagdemo"


def read_queries(folder: Path) -> dict[str, str]:
    path = folder / "queries.jsonl"
    if not path.is_file():
        raise CorpusError(f"The BEIR folder {folder} has no queries.jsonl.")
    queries: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                queries[str(record["_id"])] = str(record["text"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise CorpusError(f"Line {number} of {path} is not a query with '_id' and 'text'.") from None
    return queries


def read_qrels(folder: Path, split: str) -> dict[str, dict[str, int]]:
    path = folder / "qrels" / f"{split}.tsv"
    if not path.is_file():
        found = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        raise CorpusError(
            f"The BEIR folder {folder} has no qrels/{split}.tsv; splits found: {', '.join(found) or 'none'}."
        )
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or [name.strip() for name in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise CorpusError(f"{path} must start with the header 'query-id<TAB>corpus-id<TAB>score'.")
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
            except (IndexError, ValueError):
                raise CorpusError(f"Line {number} of {path} is not 'query-id<TAB>corpus-id<TAB>score'.") from None
    if not qrels:
        raise CorpusError(f"{path} holds no judgements.")
    return qrels


def write_run(path: Path, run: dict[str, list[tuple[str, float]]]) -> None:
    """TREC run format: ``qid Q0 docid rank score tag``; scores written with every digit (repr)."""
    with path.open("w", encoding="utf-8") as handle:
        for query_id, ranked in run.items():
            for rank, (doc_id, score) in enumerate(ranked, start=1):
                handle.write(f"{query_id} Q0 {doc_id} {rank} {score!r} {RUN_TAG}\n")


def score_run(run: dict[str, list[tuple[str, float]]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean of each measure over the judged queries, from the rankings trec_eval would read from the run file."""
    per_query = []
    for query_id, judgements in qrels.items():
        ranking = metrics.ranking_from_scores(dict(run.get(query_id, [])))
        per_query.append(
            (
                metrics.ndcg_at_k(ranking, judgements, 10),
                metrics.reciprocal_rank_at_k(ranking, judgements, 10),
                metrics.recall_at_k(ranking, judgements, RETRIEVE_DEPTH),
                metrics.average_precision(ranking, judgements),
            )
        )
    means = np.mean(np.asarray(per_query, dtype=np.float64), axis=0)
    return dict(zip(MEASURES, (float(value) for value in means), strict=True))


def _corpus_embeddings(folder: Path, model: str, embeddings: str | None, settings: EmbedSettings, work: Path):
    corpus = open_input(folder)
    if embeddings is None:
        embed(corpus, work / "embeddings", settings)
        return open_stored(work / "embeddings")
    stored = open_stored(embeddings)
    if stored.model != model:
        raise CorpusError(
            f"{embeddings} was embedded with {stored.model!r}, not {model!r}; pass --model {stored.model}."
        )
    if stored.manifest["input"]["path"] != corpus.fingerprint().path:
        raise CorpusError(
            f"{embeddings} was not made from {folder / BEIR_CORPUS} (it came from {stored.manifest['input']['path']})."
        )
    return stored


def _passage_texts(folder: Path, wanted: set[str]) -> dict[str, str]:
    """The texts (joined as for embedding) of the passages a reranker needs."""
    return {row_id: text for row_id, text in open_input(folder).rows() if row_id in wanted}


def evaluate(
    folder: str | Path,
    *,
    model: str,
    embeddings: str | None = None,
    reranker: str | None = None,
    rerank_top_k: int = 100,
    split: str = "test",
    run_out: str | Path | None = None,
    settings: EmbedSettings | None = None,
    say: Callable[[str], None] = print,
) -> dict:
    """Retrieve (and rerank) every judged query, write the run, return the measures (see the module docstring)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CorpusError(f"{folder} is not a folder; eval needs a BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")
    if rerank_top_k < 1:
        raise CorpusError("--rerank-top-k must be at least 1.")
    settings = settings or EmbedSettings(model=model)
    qrels = read_qrels(folder, split)
    queries = read_queries(folder)
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise CorpusError(f"The qrels judge {len(missing)} queries that queries.jsonl lacks, e.g. {missing[0]!r}.")
    query_ids = list(qrels)
    with tempfile.TemporaryDirectory(prefix="flagdemo-eval-") as work:
        stored = _corpus_embeddings(folder, model, embeddings, settings, Path(work))
        say(f"retrieving for {len(query_ids):,} queries over {stored.rows:,} passages …")
        run = _retrieve(
            stored, settings, [queries[q] for q in query_ids], query_ids, max(RETRIEVE_DEPTH, rerank_top_k)
        )
    if reranker:
        run = _rerank(folder, run, reranker, rerank_top_k, [queries[q] for q in query_ids], say=say)
    if run_out is not None:
        write_run(Path(run_out), run)
    result = score_run(run, qrels)
    return {
        **result,
        "queries": len(query_ids),
        "split": split,
        "model": model,
        "reranker": reranker,
        "rerank_top_k": rerank_top_k if reranker else None,
    }


def _retrieve(stored: StoredSet, settings: EmbedSettings, texts: list[str], query_ids: list[str], depth: int):
    from flagdemo.engine import Engine
    from flagdemo.models.backends.precision import with_precision

    engine = Engine(devices=settings.backend, weights=stored_setting(stored.manifest, "weights"))
    embedder = with_precision(engine.load_embedder(stored.model), settings.precision)  # as the passages were
    vectors = dense_vectors(embedder.encode_queries(texts, batch_size=settings.batch_size), len(texts))
    if vectors.shape[1] != stored.dimension:
        raise CorpusError(f"The model gives {vectors.shape[1]}-dimensional queries; the set holds {stored.dimension}.")
    hits = exact_top_k(vectors, (chunk for _, chunk in stored.chunks()), depth + 1)  # +1: a query's own id is dropped
    ids = stored.ids_at(hits.rows[hits.rows >= 0].ravel().tolist())
    run: dict[str, list[tuple[str, float]]] = {}
    for query_id, rows, scores in zip(query_ids, hits.rows.tolist(), hits.scores.tolist(), strict=True):
        ranked = [(ids[row], float(score)) for row, score in zip(rows, scores, strict=True) if row >= 0]
        run[query_id] = [(doc, score) for doc, score in ranked if doc != query_id][:depth]
    return run


def _rerank(folder: Path, run: dict, reranker: str, top_k: int, query_texts: list[str], *, say) -> dict:
    from flagdemo.engine import Engine

    wanted = {doc for ranked in run.values() for doc, _ in ranked[:top_k]}
    passages = _passage_texts(folder, wanted)
    model = Engine().load_reranker(reranker)
    reranked: dict[str, list[tuple[str, float]]] = {}
    for number, ((query_id, ranked), query) in enumerate(zip(run.items(), query_texts, strict=True), start=1):
        docs = [doc for doc, _ in ranked[:top_k]]
        scores = model.compute_score([(query, passages[doc]) for doc in docs])
        scores = [float(scores)] if np.isscalar(scores) else [float(score) for score in scores]
        reranked[query_id] = sorted(zip(docs, scores, strict=True), key=lambda item: item[1], reverse=True)
        if number % 10 == 0 or number == len(run):
            say(f"reranked {number:,} of {len(run):,} queries")
    return reranked


def retrieval_set(folder: str | Path, split: str = "test"):
    """A BEIR folder as a ``RetrievalSet`` of its judged queries (no topics or languages) for ``flagdemo compare``."""
    import pandas as pd

    from flagdemo.data.datasets import RetrievalSet

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CorpusError(f"{folder} is not a folder; give 'labelled' or a BEIR folder (corpus.jsonl, queries.jsonl).")
    qrels = read_qrels(folder, split)
    queries = read_queries(folder)
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise CorpusError(f"The qrels judge {len(missing)} queries that queries.jsonl lacks, e.g. {missing[0]!r}.")
    passages = list(open_input(folder).rows())
    passage_ids, passage_texts = [i for i, _ in passages], [t for _, t in passages]
    return RetrievalSet(
        queries=pd.DataFrame({"id": list(qrels), "text": [queries[q] for q in qrels], "topic": "", "lang": ""}),
        passages=pd.DataFrame({"id": passage_ids, "text": passage_texts, "topic": "", "lang": ""}),
        qrels=pd.DataFrame(
            [(q, p, int(r), False) for q, docs in qrels.items() for p, r in docs.items()],
            columns=["query_id", "passage_id", "relevance", "hard_negative"],
        ),
    )


def write_labelled_set(folder: str | Path) -> Path:
    """The bundled labelled set (flagdemo/data) as a BEIR folder, to try the commands offline."""
    from flagdemo.data.datasets import load_retrieval_set

    retrieval = load_retrieval_set()
    target = Path(folder).expanduser()
    if target.exists() and any(target.iterdir()):
        raise CorpusError(f"{folder} is not empty; give a new folder for the BEIR copy of the labelled set.")
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    for name, texts in (("corpus.jsonl", retrieval.passage_texts), ("queries.jsonl", retrieval.query_texts)):
        lines = [json.dumps({"_id": key, "text": text}, ensure_ascii=False) for key, text in texts.items()]
        (target / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    judged = [f"{query}\t{doc}\t{rel}" for query, docs in retrieval.judgements.items() for doc, rel in docs.items()]
    (target / "qrels" / "test.tsv").write_text("\n".join(["query-id\tcorpus-id\tscore", *judged]) + "\n", "utf-8")
    return target
