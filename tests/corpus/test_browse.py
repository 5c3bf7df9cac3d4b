"""Opening stored sets from FLAGDEMO_DATA_DIR (private mode only, by listed name), and the sample-fitted UMAP map."""

from __future__ import annotations

import numpy as np
import pytest

from flagdemo.corpus import CorpusError, browse
from tests.corpus.conftest import run_cli, write_jsonl


@pytest.fixture
def data_dir(tmp_path, tiny_model, corpus_jsonl, capsys, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    assert (
        run_cli(capsys, "embed", corpus_jsonl, "--model", tiny_model, "--out", root / "docs", "--shard-rows", "20")[0]
        == 0
    )
    (root / "beir-mini").mkdir()
    write_jsonl(root / "beir-mini" / "corpus.jsonl", [{"_id": "a", "text": "x"}])
    (root / ".hidden").mkdir()
    (root / "notes.txt").write_text("not a set")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "corpus.jsonl").write_text('{"_id": "s", "text": "secret"}\n')
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "unfinished").mkdir()
    (root / "unfinished" / "manifest.json").write_text((root / "docs" / "manifest.json").read_text().replace(
        '"complete": true', '"complete": false'))  # fmt: skip
    monkeypatch.setenv("FLAGDEMO_DATA_DIR", str(root))
    monkeypatch.delenv("FLAGDEMO_PUBLIC", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    return root


def test_listing_shows_only_complete_sets_and_beir_folders_inside(data_dir, tiny_model):
    entries = browse.list_data_dir()
    assert [(e.name, e.kind) for e in entries] == [("beir-mini", "beir"), ("docs", "embeddings")]
    assert entries[1].label == f"docs (50 × 16, {tiny_model})"


@pytest.mark.parametrize("name", ["../outside", "escape", "unfinished", "/etc", "docs/../docs", "nope"])
def test_only_listed_names_open(data_dir, name):
    with pytest.raises(CorpusError, match="choose one from the list"):
        browse.load_stored(name)


def test_public_mode_and_no_folder_refuse(data_dir, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    with pytest.raises(CorpusError, match="switched off on this public app"):
        browse.list_data_dir()
    monkeypatch.delenv("FLAGDEMO_PUBLIC")
    monkeypatch.delenv("FLAGDEMO_DATA_DIR")
    with pytest.raises(CorpusError, match="set FLAGDEMO_DATA_DIR"):
        browse.list_data_dir()


def test_load_with_a_row_cap(data_dir):
    whole = browse.load_stored("docs")
    assert (len(whole.ids), whole.vectors.shape, whole.note) == (50, (50, 16), "")
    capped = browse.load_stored("docs", max_rows=33)
    assert capped.ids == whole.ids[:33] and np.array_equal(capped.vectors, whole.vectors[:33])
    assert capped.note == "Showing the first 33 of 50 rows." and capped.total_rows == 50
    assert browse.entry_path("beir-mini", "beir") == data_dir.resolve() / "beir-mini"


def test_sampled_umap_fits_a_sample_and_transforms_the_rest():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 12))
    labels = rng.integers(0, 4, 300)
    points = centres[labels] + 0.05 * rng.standard_normal((300, 12))
    result = browse.sampled_umap(points, sample=100, n_neighbors=10)
    assert result.coords.shape == (300, 2) and np.isfinite(result.coords).all()
    assert len(result.fitted_rows) == 100
    assert result.note == (
        "UMAP was fitted on a random sample of 100 of 300 points; the other 200 were placed with its transform."
    )
    # transformed points land with their own cluster: nearest fitted point on the map shares the label
    fitted = result.fitted_rows
    rest = np.setdiff1d(np.arange(300), fitted)
    distances = np.linalg.norm(result.coords[rest, None, :] - result.coords[None, fitted, :], axis=-1)
    assert np.mean(labels[fitted][distances.argmin(axis=1)] == labels[rest]) > 0.95
    figure = browse.map_figure(result.coords, [f"p{i}" for i in range(300)], [str(v) for v in labels])
    assert {trace.type for trace in figure.data} == {"scattergl"}
    assert sum(len(trace.x) for trace in figure.data) == 300
