"""Loaders for the sample data shipped inside the package (flagdemo/data/).

The files are read through importlib.resources so they work from a source checkout, an installed wheel or a zip,
and nothing is ever downloaded. See flagdemo/data/README.md for what the files contain and how they were made.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from flagdemo.errors import InvalidInputError

QUERY_COLUMNS = ("id", "text", "topic", "lang")
PASSAGE_COLUMNS = ("id", "text", "topic", "lang")
QREL_COLUMNS = ("query_id", "passage_id", "relevance", "hard_negative")
DEMO_COLUMNS = ("id", "text", "set", "label", "group")


@functools.cache
def _read_jsonl(relative_path: str) -> tuple[dict, ...]:
    """Parse one packaged JSONL file once; every loader call builds fresh DataFrames from these rows."""
    resource = resources.files("flagdemo").joinpath("data", *relative_path.split("/"))
    with resource.open("r", encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle if line.strip())


@dataclass(frozen=True, eq=False)
class RetrievalSet:
    """A labelled retrieval set: queries, passages and graded relevance judgements (qrels).

    ``qrels`` lists every judged pair: relevance 2 (answers the query), 1 (partly relevant) and 0 for the deliberate
    hard negatives (``hard_negative`` True). Pairs that are not listed count as relevance 0.
    """

    queries: pd.DataFrame
    passages: pd.DataFrame
    qrels: pd.DataFrame

    @property
    def query_texts(self) -> dict[str, str]:
        return dict(zip(self.queries["id"], self.queries["text"], strict=True))

    @property
    def passage_texts(self) -> dict[str, str]:
        return dict(zip(self.passages["id"], self.passages["text"], strict=True))

    @property
    def judgements(self) -> dict[str, dict[str, int]]:
        """query id → {passage id: relevance} for every judged pair, zeros included (the form ir-measures expects)."""
        result: dict[str, dict[str, int]] = {query_id: {} for query_id in self.queries["id"]}
        for query_id, passage_id, relevance in zip(
            self.qrels["query_id"], self.qrels["passage_id"], self.qrels["relevance"], strict=True
        ):
            result.setdefault(query_id, {})[passage_id] = int(relevance)
        return result

    def relevant_passages(self, query_id: str, min_relevance: int = 1) -> list[str]:
        """Passage ids judged at least ``min_relevance`` for one query, most relevant first."""
        rows = self.qrels[(self.qrels["query_id"] == query_id) & (self.qrels["relevance"] >= min_relevance)]
        return rows.sort_values(["relevance", "passage_id"], ascending=[False, True])["passage_id"].tolist()

    def hard_negatives(self, query_id: str) -> list[str]:
        rows = self.qrels[(self.qrels["query_id"] == query_id) & self.qrels["hard_negative"]]
        return rows["passage_id"].tolist()

    def subset(
        self,
        *,
        topics: list[str] | None = None,
        langs: list[str] | None = None,
        query_ids: list[str] | None = None,
        max_queries: int | None = None,
        per_topic: int | None = None,
        restrict_passages: bool = False,
    ) -> RetrievalSet:
        """A smaller set for quick demos: filter queries by topic / language / id, keep the first ``per_topic`` of
        each topic (a quick run that still covers every topic) and at most ``max_queries``.

        Passages are kept whole unless ``restrict_passages`` is set (then only passages of the chosen topics remain),
        because a smaller corpus makes retrieval easier and the numbers less comparable.
        """
        queries = self.queries
        if topics is not None:
            unknown = sorted(set(topics) - set(self.queries["topic"]))
            if unknown:
                raise InvalidInputError(
                    f"Unknown topic(s) {unknown}. Choose from {sorted(set(self.queries['topic']))}."
                )
            queries = queries[queries["topic"].isin(topics)]
        if langs is not None:
            queries = queries[queries["lang"].isin(langs)]
        if query_ids is not None:
            missing = sorted(set(query_ids) - set(self.queries["id"]))
            if missing:
                raise InvalidInputError(f"Unknown query id(s) {missing[:5]}; ids look like 'q-cook-01'.")
            queries = queries[queries["id"].isin(query_ids)]
        if per_topic is not None:
            queries = queries.groupby("topic", sort=False).head(per_topic)
        if max_queries is not None:
            queries = queries.head(max_queries)
        if queries.empty:
            raise InvalidInputError("No query matches this selection; widen the topics, languages or ids.")
        passages = self.passages
        if restrict_passages:
            passages = passages[passages["topic"].isin(set(queries["topic"]))]
        qrels = self.qrels[self.qrels["query_id"].isin(queries["id"]) & self.qrels["passage_id"].isin(passages["id"])]
        return RetrievalSet(
            queries=queries.reset_index(drop=True),
            passages=passages.reset_index(drop=True),
            qrels=qrels.reset_index(drop=True),
        )


def load_retrieval_set() -> RetrievalSet:
    """The bundled labelled retrieval set (48 queries, 321 passages, 8 topics; see flagdemo/data/README.md)."""
    queries = pd.DataFrame(list(_read_jsonl("retrieval/queries.jsonl")), columns=list(QUERY_COLUMNS))
    passages = pd.DataFrame(list(_read_jsonl("retrieval/passages.jsonl")), columns=list(PASSAGE_COLUMNS))
    qrels = pd.DataFrame(list(_read_jsonl("retrieval/qrels.jsonl")), columns=list(QREL_COLUMNS))
    qrels["relevance"] = qrels["relevance"].astype(int)
    qrels["hard_negative"] = qrels["hard_negative"].fillna(False).astype(bool)
    return RetrievalSet(queries=queries, passages=passages, qrels=qrels)


def demo_sentence_sets() -> list[str]:
    """Names of the bundled demo sentence sets, in file order."""
    return list(dict.fromkeys(row["set"] for row in _read_jsonl("demo_sentences.jsonl")))


def load_demo_sentences(set_name: str | None = None) -> pd.DataFrame:
    """Demo sentences (id, text, set, label, group) for the encode / similarity / projection tabs.

    ``label`` is meant as a colour; ``group`` ties together the sentences that belong together (a paraphrase group,
    a sentence and its negation, ...). ``set_name`` picks one set; None returns all.
    """
    frame = pd.DataFrame(list(_read_jsonl("demo_sentences.jsonl")), columns=list(DEMO_COLUMNS))
    if set_name is None:
        return frame
    names = demo_sentence_sets()
    if set_name not in names:
        raise InvalidInputError(f"Unknown demo sentence set {set_name!r}. Choose one of: {', '.join(names)}.")
    return frame[frame["set"] == set_name].reset_index(drop=True)


LABELLED_PASSAGES = "labelled set passages (by topic)"
RELEVANCE_NAMES = {2: "relevant (2)", 1: "partly relevant (1)", 0: "hard negative (0)"}


def sample_names() -> list[str]:
    """The bundled corpora a map can show: each demo sentence set, and the labelled set's passages."""
    return [*(f"demo: {name}" for name in demo_sentence_sets()), LABELLED_PASSAGES]


def sample_corpus(choice: str) -> tuple[list[str], list[str]]:
    """(labels, texts) of a bundled sample: demo sentences with their labels, labelled passages by topic."""
    if choice == LABELLED_PASSAGES:
        passages = load_retrieval_set().passages
        return passages["topic"].astype(str).tolist(), passages["text"].astype(str).tolist()
    if isinstance(choice, str) and choice.startswith("demo: ") and choice[6:] in demo_sentence_sets():
        frame = load_demo_sentences(choice.removeprefix("demo: "))
        return frame["label"].astype(str).tolist(), frame["text"].astype(str).tolist()
    raise InvalidInputError(f"Unknown sample {str(choice)[:80]!r}: choose one of {', '.join(sample_names())}.")


def labelled_query_choices() -> list[tuple[str, str]]:
    """(question text, id) of every labelled query, for dropdowns that show the question and pass the id."""
    queries = load_retrieval_set().queries
    return list(zip(queries["text"].astype(str), queries["id"].astype(str), strict=True))


def _labelled_query(query_id: str) -> tuple[RetrievalSet, str]:
    labelled = load_retrieval_set()
    if not isinstance(query_id, str) or query_id not in labelled.query_texts:
        raise InvalidInputError(f"Unknown labelled query {str(query_id)[:80]!r}; choose one from the list.")
    return labelled, query_id


def judged_passages(query_id: str) -> tuple[str, list[str], list[int]]:
    """A labelled query's text, its judged passages and their grades (passage id order)."""
    labelled, query_id = _labelled_query(query_id)
    texts = labelled.passage_texts
    judged = labelled.qrels[labelled.qrels["query_id"] == query_id].sort_values("passage_id")
    return (
        labelled.query_texts[query_id],
        [texts[pid] for pid in judged["passage_id"]],
        [int(r) for r in judged["relevance"]],
    )


def relevance_labels(query_id: str) -> tuple[str, list[str]]:
    """A labelled query's text and, for every labelled-set passage, its judgement for that query as a label."""
    labelled, query_id = _labelled_query(query_id)
    judged = labelled.judgements[query_id]
    labels = [
        RELEVANCE_NAMES.get(judged[pid], f"relevance {judged[pid]}") if pid in judged else "not judged"
        for pid in labelled.passages["id"]
    ]
    return labelled.query_texts[query_id], labels
