"""flagdemo eval on a BEIR folder: the printed and JSON measures are what ir-measures computes on the run file."""

from __future__ import annotations

import json

import ir_measures
import pytest
from ir_measures import AP, RR, R, nDCG

from tests.corpus.conftest import run_cli

IR_MEASURES = {"nDCG@10": nDCG @ 10, "MRR@10": RR @ 10, "Recall@100": R @ 100, "MAP": AP}


def ir_measures_of(run_file, qrels_file) -> dict[str, float]:
    lines = qrels_file.read_text().splitlines()[1:]
    qrels = [ir_measures.Qrel(q, d, int(s)) for q, d, s in (line.split("\t") for line in lines)]
    run = list(ir_measures.read_trec_run(str(run_file)))
    values = ir_measures.calc_aggregate(list(IR_MEASURES.values()), qrels, run)
    return {name: values[measure] for name, measure in IR_MEASURES.items()}


def check_against_ir_measures(result: dict, run_file, qrels_file) -> None:
    expected = ir_measures_of(run_file, qrels_file)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-9), name


def test_eval_matches_ir_measures(beir_folder, tiny_model, tmp_path, capsys):
    run_file, json_file = tmp_path / "run.trec", tmp_path / "scores.json"
    status, out, err = run_cli(capsys, "eval", beir_folder, "--model", tiny_model, "--run-out", run_file,
                               "--json", json_file)  # fmt: skip
    assert status == 0, err
    result = json.loads(json_file.read_text())
    assert result["queries"] == 12 and result["split"] == "test"
    check_against_ir_measures(result, run_file, beir_folder / "qrels" / "test.tsv")
    assert 0 < result["nDCG@10"] < 1 and 0 < result["Recall@100"] <= 1
    for name in ("nDCG@10", "MRR@10", "Recall@100", "MAP"):
        assert f"{name:<11} {result[name]:.4f}" in out

    run_lines = [line.split() for line in run_file.read_text().splitlines()]
    per_query = {}
    for query_id, q0, doc, rank, _score, tag in run_lines:
        per_query.setdefault(query_id, []).append(doc)
        assert q0 == "Q0" and tag == "flagdemo" and int(rank) == len(per_query[query_id])
    assert len(per_query) == 12 and all(len(docs) == 100 for docs in per_query.values())
    first_query = next(iter(per_query))
    assert first_query not in per_query[first_query]  # the passage with the query's own id is left out, as in BEIR

    # The same numbers from a stored set of the corpus; the dev split has its own queries.
    stored = tmp_path / "stored"
    assert run_cli(capsys, "embed", beir_folder, "--model", tiny_model, "--out", stored)[0] == 0
    status, _, err = run_cli(capsys, "eval", beir_folder, "--model", tiny_model, "--embeddings", stored,
                             "--json", tmp_path / "again.json")  # fmt: skip
    assert status == 0, err
    again = json.loads((tmp_path / "again.json").read_text())
    assert all(again[name] == pytest.approx(result[name], abs=1e-6) for name in IR_MEASURES)
    status, _, err = run_cli(capsys, "eval", beir_folder, "--model", tiny_model, "--embeddings", stored, "--split",
                             "dev", "--run-out", tmp_path / "dev.trec", "--json", tmp_path / "dev.json")  # fmt: skip
    assert status == 0, err
    dev = json.loads((tmp_path / "dev.json").read_text())
    assert dev["queries"] == 8
    check_against_ir_measures(dev, tmp_path / "dev.trec", beir_folder / "qrels" / "dev.tsv")


def test_eval_with_a_reranker(beir_folder, tiny_model, tiny_dir, tmp_path, capsys):
    run_file, json_file = tmp_path / "rerank.trec", tmp_path / "rerank.json"
    status, _, err = run_cli(capsys, "eval", beir_folder, "--model", tiny_model, "--split", "dev",
                             "--reranker", tiny_dir / "bert-cross-encoder", "--rerank-top-k", "5",
                             "--run-out", run_file, "--json", json_file)  # fmt: skip
    assert status == 0, err
    result = json.loads(json_file.read_text())
    assert result["reranker"] == str(tiny_dir / "bert-cross-encoder") and result["rerank_top_k"] == 5
    check_against_ir_measures(result, run_file, beir_folder / "qrels" / "dev.tsv")
    lines = run_file.read_text().splitlines()
    assert len(lines) == 8 * 5  # BEIR's reranking keeps the reranked top-k only
    scores = [float(line.split()[4]) for line in lines[:5]]
    assert scores == sorted(scores, reverse=True)
