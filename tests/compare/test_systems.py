"""N systems on the labelled set with tiny models: spec parsing, sentences for bad specs, measures equal to
ir-measures on the written run files, fusion equal to ranx's, pipelines split into ceiling and reordering, the CLI's
three files with their exact columns and keys."""

from __future__ import annotations

import csv
import json
import re

import ir_measures
import numpy as np
import pytest
from ir_measures import AP, RR, R, nDCG

from flagdemo import cli
from flagdemo.analysis import runs, significance
from flagdemo.engine.systems import parse_systems
from flagdemo.errors import FlagDemoError, InvalidInputError

QUERIES = 10


def test_the_issue_forms_parse_exactly_as_written():
    systems = parse_systems(
        [
            "minilm=all-MiniLM-L6-v2",
            "minilm3=all-MiniLM-L6-v2@3",
            "bm25=bm25",
            "rr=minilm>>SmolLM2-135M-Instruct@20",
            "hyb=rrf(bm25,minilm)",
        ]
    )
    assert systems["minilm"].kind == "embedder" and systems["minilm"].layer is None
    assert (systems["minilm3"].model, systems["minilm3"].layer) == ("all-MiniLM-L6-v2", 3)
    assert systems["bm25"].kind == "bm25" and (systems["bm25"].k1, systems["bm25"].b) == (1.5, 0.75)
    rr = systems["rr"]
    assert (rr.kind, rr.reranker, rr.depth, rr.first) == ("pipeline", "SmolLM2-135M-Instruct", 20, systems["minilm"])
    hyb = systems["hyb"]
    assert (hyb.kind, hyb.method, hyb.k, hyb.members) == ("fusion", "rrf", 60, (systems["bm25"], systems["minilm"]))


def test_the_extensions_parse():
    systems = parse_systems(
        {
            "b": "bm25[k1=0.9,b=0.4]",
            "sp": "bge-m3[sparse]",
            "all": "bge-m3[m3=1:0:1]",
            "lw": "b>>bge-reranker-v2-minicpm-layerwise[layer=28]@50",
            "mnz": "combmnz(b, sp, norm=zmuv)",
            "inline": "rrf(bm25, all-MiniLM-L6-v2@2, k=10)",
        }
    )
    assert (systems["b"].k1, systems["b"].b) == (0.9, 0.4)
    assert (systems["sp"].kind, systems["sp"].mode) == ("m3", "sparse")
    assert systems["all"].weights == (1.0, 0.0, 1.0)
    assert (systems["lw"].layer, systems["lw"].depth) == (28, 50)
    assert (systems["mnz"].norm, len(systems["mnz"].members)) == ("zmuv", 2)
    assert systems["inline"].k == 10 and systems["inline"].members[1].layer == 2


@pytest.mark.parametrize(
    ("specs", "words"),
    [
        (["a=rrf(a,b)", "b=bm25"], "cycle"),
        (["a=b>>x@5", "b=a>>y@5"], "cycle"),
        (["a=foo(bm25,bm25)"], "Unknown fusion"),
        (["a=rrf(bm25)"], "at least two"),
        (["a=bm25>>SmolLM2-135M-Instruct"], "@DEPTH"),
        (["a=bm25>>SmolLM2-135M-Instruct@0"], "at least 1"),
        (["a=all-MiniLM-L6-v2@x"], "whole number"),
        (["a=bge-m3[sideways]"], "Unknown option"),
        (["no spec"], "NAME=SPEC"),
        (["a b=bm25"], "system name"),
        (["a=bm25", "a=bm25"], "twice"),
        (["a=rrf(bm25,bm25,norm=zmuv)"], "no normalisation"),
        (["a=bm25[k1=x]"], "number"),
    ],
)
def test_bad_specs_are_sentences(specs, words):
    with pytest.raises(InvalidInputError, match=words):
        parse_systems(specs)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("x=all-MiniLM-L6-v2[sparse]", "not a BGE-M3 model"),
        ("x=SmolLM2-135M-Instruct", "reranker"),
        ("x=bm25>>all-MiniLM-L6-v2@10", "embedder"),
        ("x=nowhere/no-such-model", "x:"),
    ],
)
def test_a_model_in_a_role_it_cannot_play_is_a_sentence(tiny_engine, spec, words):
    with pytest.raises(FlagDemoError, match=words):
        tiny_engine.benchmark([spec], max_queries=2)


@pytest.fixture(scope="module")
def outcome(request):
    tiny = request.getfixturevalue("tiny_dir")
    engine = request.getfixturevalue("tiny_engine")
    return engine.benchmark(
        [
            f"a={tiny}/bert-embedder",
            f"a1={tiny}/bert-embedder@1",
            "bm25=bm25",
            f"rr=bm25>>{tiny}/llama-decoder@5",
            "hyb=rrf(bm25,a)",
            "sum=combsum(bm25,a)",
            f"sp={tiny}/xlmr-m3[sparse]",
        ],
        max_queries=QUERIES,
        permutations=2_000,
        bootstrap=2_000,
    )


def test_measures_equal_ir_measures_on_the_run_files(outcome, tmp_path):
    """pytrec_eval through ir-measures, on the files as written. RR@10 is its RR (trec_eval's recip_rank) cut at 10:
    ir-measures sends RR@10 to another provider that orders tied scores its own way (min-max fusion ties at 1.0)."""
    qrels = outcome.retrieval_set.judgements
    checked = 0
    for name, run in outcome.runs.items():
        path = runs.write_trec(tmp_path / f"{name}.trec", run)
        found = ir_measures.iter_calc([nDCG @ 10, RR, R @ 100, AP], qrels, ir_measures.read_trec_run(str(path)))
        reference = {(m.query_id, str(m.measure)): m.value for m in found}
        ours = outcome.per_query[outcome.per_query["system"] == name].set_index("query_id")
        assert len(ours) == QUERIES
        for query_id, row in ours.iterrows():
            rr = reference.get((query_id, "RR"), 0.0)
            assert row["RR@10"] == pytest.approx(rr if rr >= 0.1 else 0.0, abs=1e-12)
            for column in ("nDCG@10", "R@100", "AP"):
                assert row[column] == pytest.approx(reference.get((query_id, column), 0.0), abs=1e-12)
                checked += 1
    assert checked == 3 * QUERIES * len(outcome.runs)
    assert outcome.means.loc["bm25", "nDCG@10"] > 0.1  # something was retrieved, the comparison means something


def test_pair_p_values_equal_scipy_and_holm_runs_over_the_family(outcome):
    from scipy import stats

    wide = outcome.per_query.pivot(index="query_id", columns="system", values="AP")
    rows = outcome.pairs[outcome.pairs["metric"] == "AP"]
    assert len(rows) == 21  # every pair of 7 systems
    for row in rows.itertuples(index=False):
        expected = stats.ttest_rel(wide[row.b], wide[row.a]).pvalue
        assert row.p_ttest == pytest.approx(1.0 if np.isnan(expected) else expected)
        assert row.delta == pytest.approx((wide[row.b] - wide[row.a]).mean())
        assert row.ci_low <= row.delta <= row.ci_high
    assert np.allclose(rows["p_holm"], significance.holm(rows["p_randomization"].to_numpy()))


def test_fused_runs_equal_ranx(outcome):
    from ranx import Run, fuse

    members = [Run(outcome.runs["bm25"], name="x"), Run(outcome.runs["a"], name="y")]
    for name, method, norm in (("hyb", "rrf", None), ("sum", "sum", "min-max")):
        expected = runs.truncate(fuse(members, norm=norm, method=method).to_dict(), outcome.depth)
        assert outcome.runs[name].keys() == expected.keys()
        for q in expected:
            assert outcome.runs[name][q] == pytest.approx(expected[q])
    q = next(iter(outcome.runs["hyb"]))
    best = runs.ranking(outcome.runs["hyb"][q])[0]  # RRF by its definition, k = 60
    by_hand = sum(1 / (60 + runs.ranking(outcome.runs[s][q]).index(best) + 1)
                  for s in ("bm25", "a") if best in outcome.runs[s][q])  # fmt: skip
    assert outcome.runs["hyb"][q][best] == pytest.approx(by_hand)


def test_pipeline_splits_ceiling_from_reordering(outcome):
    pipeline = outcome.pipelines["rr"]
    frame = pipeline["per_query"]
    assert set(frame["kind"]) <= {"ceiling", "gain", "loss", "same"}
    assert (frame.loc[frame["kind"] == "ceiling", "delta"] == 0).all()  # nothing relevant to move up
    assert pipeline["summary"]["hurts"] == (frame["delta"].mean() < 0)
    tail_run = outcome.runs["rr"][frame["query_id"][0]]
    assert len(tail_run) == len(outcome.runs["bm25"][frame["query_id"][0]])  # the tail below the cut is kept


def test_costs_tiers_groups_and_side_by_side(outcome):
    costs = outcome.costs.set_index("system")
    assert costs.loc["rr", "pair_ms"] > 0 and costs.loc["rr", "query_ms"] > costs.loc["bm25", "query_ms"]
    assert costs.loc["a", "bytes_per_vector"] == 4 * 16  # tiny BERT: 16 fp32 dimensions
    assert costs["pareto"].any() and not costs.loc[~costs["pareto"], "dominated_by"].eq("").any()
    assert 1 in outcome.tiers["nDCG@10"].values()
    topics = outcome.groups[outcome.groups["group"] == "topic"]
    assert topics.groupby("value")["queries"].first().sum() == QUERIES
    assert outcome.disagreement["spread"].is_monotonic_decreasing
    tops, changes = outcome.side_by_side(outcome.disagreement["query_id"][0], k=5)
    assert list(tops.columns[:3]) == ["rank", "a", "a label"] and len(tops) == 5
    assert set(changes["change"]) <= {"gained", "lost", "moved", "same"}
    assert any("layer" in s for s in outcome.sentences)  # a vs a1: the smallest layer not worse


def test_cli_writes_runs_per_query_and_report(tiny_dir, tmp_path, capsys):
    out = tmp_path / "out"
    status = cli.main(
        ["compare", "labelled", "--system", f"a={tiny_dir}/bert-embedder", "--system", "bm25=bm25",
         "--system", "hyb=rrf(bm25,a)", "--baseline", "bm25", "--depth", "20", "--max-queries", "6",
         "--permutations", "300", "--out", str(out)]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    for name in ("a", "bm25", "hyb"):
        lines = (out / "runs" / f"{name}.trec").read_text().splitlines()
        assert len(lines) == 6 * 20 and lines[0].split()[1] == "Q0" and lines[0].split()[3] == "1"
    with (out / "per_query.csv").open() as handle:
        header = next(csv.reader(handle))
    assert header == ["query_id", "system", "nDCG@10", "RR@10", "R@100", "AP"]
    report = json.loads((out / "report.json").read_text())
    assert {"systems", "means", "pairs"} <= report.keys()
    assert report["systems"] == {"a": f"{tiny_dir}/bert-embedder", "bm25": "bm25", "hyb": "rrf(bm25,a)"}
    assert set(report["means"]["a"]) == {"nDCG@10", "RR@10", "R@100", "AP"}
    keys = {"a", "b", "metric", "delta", "p_randomization", "p_ttest", "p_holm", "ci_low", "ci_high",
            "permutations", "seed"}  # fmt: skip
    assert all(set(pair) == keys for pair in report["pairs"])
    assert {(p["a"], p["b"]) for p in report["pairs"]} == {("bm25", "a"), ("bm25", "hyb")}
    assert report["pairs"][0]["permutations"] == 300 and report["pairs"][0]["seed"] == 42


def test_cli_bad_spec_is_a_sentence_not_a_traceback(tmp_path, capsys):
    status = cli.main(["compare", "labelled", "--system", "a=rrf(a,bm25)", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == cli.EXIT_BAD_INPUT
    assert "cycle" in err and "Traceback" not in err


def test_sentences_say_what_the_set_can_and_cannot_tell(outcome):
    """Every measure's count of separable pairs, tier 1 by name, plural counts, and a layer finding that names two
    different layers (a at its last layer against a1 at layer 1)."""
    for measure in outcome.measures:
        rows = outcome.pairs[outcome.pairs["metric"] == measure]
        apart = int((rows["p_holm"] < outcome.alpha).sum())
        said = f"On {measure}, {apart} of {len(rows)} pairs differ significantly (Holm, α = 0.05)."
        assert said in outcome.sentences
    top = sorted(s for s, tier in outcome.tiers["nDCG@10"].items() if tier == 1)
    tier_line = next(s for s in outcome.sentences if s.startswith("Tier 1 on nDCG@10"))
    assert sorted(tier_line.split(": ", 1)[1].rstrip(".").split(", ")) == top
    unclear = outcome.pairs[(outcome.pairs["metric"] == "nDCG@10") & (outcome.pairs["p_holm"] >= outcome.alpha)]
    said_unclear = [s for s in outcome.sentences if s.startswith("The set cannot tell")]
    assert len(said_unclear) == min(len(unclear), 8)
    assert not any(re.search(r"\b1 queries\b", s) for s in outcome.sentences)
    (finding,) = [f for f in outcome.layer_findings if f["metric"] == "nDCG@10"]
    assert finding["last"] == "a" and finding["smallest"] in ("a", "a1")
    assert finding["sentence"] in outcome.sentences
    assert f"layer {finding['last_layer']} (a)" in finding["sentence"] and "layer 1" in finding["sentence"]


def test_a_layerwise_reranker_at_several_cutoffs_gets_a_layer_finding(tiny_dir, tiny_engine):
    layerwise = f"{tiny_dir}/minicpm-layerwise"
    outcome = tiny_engine.benchmark(
        ["bm25=bm25", f"c2=bm25>>{layerwise}[layer=2]@4", f"c4=bm25>>{layerwise}[layer=4]@4",
         f"c6=bm25>>{layerwise}[layer=6]@4"],
        max_queries=QUERIES, permutations=500, bootstrap=500,
    )  # fmt: skip
    findings = [f for f in outcome.layer_findings if f["metric"] == "nDCG@10"]
    assert len(findings) == 1 and findings[0]["last"] == "c6" and findings[0]["last_layer"] == 6
    assert findings[0]["smallest"] in ("c2", "c4", "c6")
    assert "layer 6 (c6)" in findings[0]["sentence"] and findings[0]["sentence"] in outcome.sentences
    assert len(set(map(str, (outcome.runs["c2"], outcome.runs["c6"])))) == 2  # the cutoffs score differently
