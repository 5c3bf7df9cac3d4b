"""The bundled sample data: every property promised in flagdemo/data/README.md is checked here."""

from __future__ import annotations

import glob
import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

import flagdemo
from flagdemo.data.datasets import demo_sentence_sets, load_demo_sentences, load_retrieval_set
from flagdemo.errors import InvalidInputError

PACKAGE_DIR = Path(flagdemo.__file__).parent
REPO_ROOT = PACKAGE_DIR.parent
LANGUAGES = {"en", "zh", "fr", "de", "es"}
FUNCTION_WORDS = {
    "fr": {"le", "la", "les", "de", "des", "du", "et", "en", "un", "une", "pour"},
    "de": {"der", "die", "das", "und", "ein", "eine", "im", "mit", "den", "zu"},
    "es": {"el", "la", "los", "las", "de", "y", "en", "un", "una", "por"},
    "en": {"the", "a", "an", "of", "and", "to", "is", "in", "it", "or", "with", "for", "if"},
}
STOPWORDS = {
    "the",
    "and",
    "for",
    "are",
    "how",
    "why",
    "what",
    "when",
    "who",
    "does",
    "should",
    "can",
    "you",
    "your",
    "with",
    "that",
    "this",
    "from",
    "into",
    "was",
    "its",
    "les",
    "des",
    "der",
    "die",
    "das",
    "los",
    "las",
    "una",
    "del",
    "wie",
    "comment",
    "pendant",
    "cuándo",
    "deben",
    "beim",
}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def data():
    return load_retrieval_set()


def words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", text.lower())


def content_words(text: str) -> set[str]:
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words(text) if len(w) >= 3} - STOPWORDS


def lexically_close(query: str, passage: str) -> bool:
    """Share a content word (or a 4-letter stem, e.g. rest/resting), or for Chinese a two-character word."""
    if CJK.search(query):
        pairs = {query[i : i + 2] for i in range(len(query) - 1)}
        bigrams = {pair for pair in pairs if all(CJK.match(char) for char in pair)}
        return any(b in passage for b in bigrams)
    passage_words = content_words(passage)
    for word in content_words(query):
        for other in passage_words:
            if word == other or (len(word) >= 4 and len(other) >= 4 and word[:4] == other[:4]):
                return True
    return False


def test_sizes_topics_and_ids(data):
    assert len(data.queries) >= 40
    assert len(data.passages) >= 300
    topics = Counter(data.queries["topic"])
    assert len(topics) >= 6
    assert min(topics.values()) >= 4
    passage_topics = Counter(data.passages["topic"])
    assert set(topics) == set(passage_topics)
    assert min(passage_topics.values()) >= 30
    assert data.queries["id"].is_unique
    assert data.passages["id"].is_unique


def test_no_duplicate_texts(data):
    for frame in (data.queries, data.passages):
        normalised = frame["text"].str.lower().str.replace(r"\s+", " ", regex=True).str.strip()
        assert normalised.is_unique, frame[normalised.duplicated(keep=False)]["text"].tolist()


def test_qrels_resolve_and_are_graded(data):
    qrels = data.qrels
    assert set(qrels["query_id"]) <= set(data.queries["id"])
    assert set(qrels["passage_id"]) <= set(data.passages["id"])
    assert set(qrels["relevance"]) == {0, 1, 2}
    assert not qrels.duplicated(["query_id", "passage_id"]).any()
    assert (qrels.loc[qrels["hard_negative"], "relevance"] == 0).all()


def test_every_query_has_relevant_passages_and_hard_negatives(data):
    for query_id in data.queries["id"]:
        grades = data.judgements[query_id]
        assert sum(1 for rel in grades.values() if rel >= 1) >= 2, query_id
        assert any(rel == 2 for rel in grades.values()), query_id
        assert len(data.hard_negatives(query_id)) >= 2, query_id


def test_relevant_passages_share_the_query_topic(data):
    topic_of_query = dict(zip(data.queries["id"], data.queries["topic"], strict=True))
    topic_of_passage = dict(zip(data.passages["id"], data.passages["topic"], strict=True))
    for row in data.qrels.itertuples():
        assert topic_of_query[row.query_id] == topic_of_passage[row.passage_id], row


def test_hard_negatives_are_lexically_close_to_their_query(data):
    queries = data.queries.set_index("id")
    passages = data.passages.set_index("id")
    checked = 0
    for row in data.qrels[data.qrels["hard_negative"]].itertuples():
        query, passage = queries.loc[row.query_id], passages.loc[row.passage_id]
        if query["lang"] != passage["lang"]:
            continue  # a cross-language hard negative cannot share surface words
        assert lexically_close(query["text"], passage["text"]), (query["text"], passage["text"])
        checked += 1
    assert checked >= len(data.queries)


def test_language_mix(data):
    for frame in (data.queries, data.passages):
        assert set(frame["lang"]) <= LANGUAGES
        share = (frame["lang"] != "en").mean()
        assert 0.07 <= share <= 0.15, share
    assert len(set(data.passages["lang"]) - {"en"}) >= 4
    assert len(set(data.queries["lang"]) - {"en"}) >= 3
    lang_of_passage = dict(zip(data.passages["id"], data.passages["lang"], strict=True))
    for query in data.queries[data.queries["lang"] != "en"].itertuples():
        langs = {lang_of_passage[pid] for pid in data.relevant_passages(query.id)}
        assert query.lang in langs and "en" in langs, query.id  # same-language and cross-language answers


def test_texts_are_in_their_stated_language(data):
    for frame in (data.queries, data.passages):
        for row in frame.itertuples():
            has_cjk = bool(CJK.search(row.text))
            assert has_cjk == (row.lang == "zh"), row.id
            if row.lang != "zh" and row.id.startswith("p-"):
                assert set(words(row.text)) & FUNCTION_WORDS[row.lang], row.id


def test_passages_are_short(data):
    for row in data.passages.itertuples():
        if row.lang == "zh":
            assert 25 <= len(row.text) <= 120, row.id
            sentences = len(re.findall(r"[。！？]", row.text))
        else:
            assert 20 <= len(row.text.split()) <= 60, (row.id, len(row.text.split()))
            sentences = len(re.findall(r"[.!?](\s|$)", row.text))
        assert 1 <= sentences <= 3, row.id


def test_data_files_are_covered_by_package_data():
    patterns = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    covered = {p for pattern in patterns["flagdemo"] for p in glob.glob(pattern, root_dir=PACKAGE_DIR, recursive=True)}
    shipped = {str(p.relative_to(PACKAGE_DIR)) for p in (PACKAGE_DIR / "data").rglob("*") if p.is_file()}
    assert {"data/retrieval/queries.jsonl", "data/retrieval/qrels.jsonl", "data/demo_sentences.jsonl"} <= shipped
    assert shipped <= covered


class TestLoaders:
    def test_retrieval_set_frames_and_helpers(self, data):
        assert list(data.queries.columns) == ["id", "text", "topic", "lang"]
        assert list(data.qrels.columns) == ["query_id", "passage_id", "relevance", "hard_negative"]
        assert data.query_texts["q-cook-01"] == "How long should a steak rest after cooking?"
        relevant = data.relevant_passages("q-cook-01")
        assert [data.judgements["q-cook-01"][pid] for pid in relevant] == [2, 2, 1]
        assert "steak" in data.passage_texts[data.hard_negatives("q-cook-01")[0]].lower() or "dough" in (
            data.passage_texts[data.hard_negatives("q-cook-01")[0]].lower()
        )

    def test_loads_are_independent_copies(self, data):
        again = load_retrieval_set()
        again.queries.loc[0, "text"] = "changed"
        assert load_retrieval_set().queries.loc[0, "text"] == data.queries.loc[0, "text"] != "changed"

    def test_subset(self, data):
        small = data.subset(topics=["astronomy"], max_queries=3, restrict_passages=True)
        assert len(small.queries) == 3
        assert set(small.passages["topic"]) == {"astronomy"}
        assert set(small.qrels["query_id"]) == set(small.queries["id"])
        whole_corpus = data.subset(langs=["zh"])
        assert set(whole_corpus.queries["lang"]) == {"zh"}
        assert len(whole_corpus.passages) == len(data.passages)
        two_each = data.subset(per_topic=2)
        first_two = data.queries.groupby("topic", sort=False)["id"].apply(lambda ids: list(ids)[:2])
        assert two_each.queries["id"].tolist() == [i for i in data.queries["id"] if any(i in f for f in first_two)]
        assert two_each.queries["topic"].value_counts().eq(2).all() and len(two_each.passages) == len(data.passages)
        with pytest.raises(InvalidInputError, match="Unknown topic"):
            data.subset(topics=["knitting"])
        with pytest.raises(InvalidInputError, match="Unknown query id"):
            data.subset(query_ids=["q-none"])


class TestDemoSentences:
    def test_size_ids_and_sets(self):
        frame = load_demo_sentences()
        assert 60 <= len(frame) <= 120
        assert frame["id"].is_unique
        assert frame["text"].is_unique
        assert list(frame.columns) == ["id", "text", "set", "label", "group"]
        assert {"paraphrase", "near_duplicate", "negation", "antonym", "topics", "translation"} == set(
            demo_sentence_sets()
        )
        assert frame["label"].notna().all() and (frame["label"].str.len() > 0).all()

    def test_groups_have_the_promised_shape(self):
        for set_name in ("paraphrase", "near_duplicate", "topics", "translation"):
            frame = load_demo_sentences(set_name)
            assert (frame.groupby("group").size() >= 3).all(), set_name
            assert (frame["label"] == frame["group"]).all()
        for set_name, labels in (("negation", {"affirmed", "negated"}), ("antonym", {"original", "antonym"})):
            frame = load_demo_sentences(set_name)
            for _, pair in frame.groupby("group"):
                assert set(pair["label"]) == labels and len(pair) == 2, set_name

    def test_unknown_set_is_a_readable_error(self):
        with pytest.raises(InvalidInputError, match="Choose one of"):
            load_demo_sentences("limericks")
