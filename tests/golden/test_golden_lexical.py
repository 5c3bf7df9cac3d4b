"""BGE-M3's lexical matching score on two dicts that share tokens.

The golden dict × dict case (``m3-lexical-score-dict-dict``) happens to pair two texts with no token in common, so
its expected value is 0 and a broken sum would still match it. Here the dict × dict form is checked where tokens are
shared: against a hand computation, and against every non-zero entry FlagEmbedding 1.4.2 recorded for the list × list
form (``m3-lexical-score-list-list``), one dict pair at a time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden_codec import decode

from flagdemo import BGEM3FlagModel

GOLDEN = Path(__file__).parent / "embedders_m3.json"
TINY_M3 = Path(__file__).parents[1] / "assets" / "tiny" / "xlmr-m3"


@pytest.fixture(scope="module")
def m3():
    return BGEM3FlagModel(str(TINY_M3), devices="cpu", use_fp16=False)


def test_a_hand_computed_pair_with_shared_tokens(m3):
    query = {"5": 0.5, "7": 2.0, "9": 1.0}
    passage = {"7": 0.25, "9": 3.0, "11": 4.0}
    assert m3.compute_lexical_matching_score(query, passage) == 2.0 * 0.25 + 1.0 * 3.0 == 3.5  # tokens 7 and 9
    assert m3.compute_lexical_matching_score(passage, query) == 3.5
    assert m3.compute_lexical_matching_score(query, {"4": 1.0}) == 0


def test_dict_pairs_give_flagembeddings_list_entries(m3):
    cases = {case["id"]: case for case in json.loads(GOLDEN.read_text(encoding="utf-8"))["cases"]}
    case = cases["m3-lexical-score-list-list"]
    queries, passages = decode(case["args"])
    expected = decode(case["result"])
    shared = 0
    for i, query in enumerate(queries):
        for j, passage in enumerate(passages):
            score = m3.compute_lexical_matching_score(query, passage)
            assert float(score) == pytest.approx(float(expected[i][j]), abs=1e-5), (i, j)
            shared += bool(set(query) & set(passage))
    assert shared >= 10 and (expected > 0).sum() == shared
