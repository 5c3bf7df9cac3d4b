from __future__ import annotations

import numpy as np
import pytest

TEXTS = ["short", "a somewhat longer text for padding", "emoji 🤗 and ünïcödé"]


@pytest.mark.parametrize("fixture", ["bert", "bert_mean", "llama", "llama_left", "m3"])
@pytest.mark.parametrize("mode", ["query", "passage", "raw"])
def test_last_layer_equals_encode_output(request, fixture, mode):
    model = request.getfixturevalue(fixture)
    result = model.encode_detailed(TEXTS, mode=mode, all_layers=True)
    expected = {"query": model.encode_queries, "passage": model.encode_corpus, "raw": model.encode}[mode](TEXTS)
    if isinstance(expected, dict):
        expected = expected["dense_vecs"]
    np.testing.assert_allclose(result.embeddings, expected, atol=1e-6)
    assert result.layer_embeddings.shape == (model.num_layers + 1, 3, expected.shape[1])
    np.testing.assert_allclose(result.layer_embeddings[-1], expected, atol=1e-6)
    assert not np.allclose(result.layer_embeddings[0], result.layer_embeddings[-1], atol=1e-3)
    assert result.embeddings.dtype == np.float32


def test_layers_are_pooled_hidden_states(bert, bert_path):
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bert_path)
    model = AutoModel.from_pretrained(bert_path, dtype=torch.float32).eval()
    with torch.inference_mode():
        states = model(**tokenizer("short", return_tensors="pt"), output_hidden_states=True).hidden_states
    expected = np.stack([F.normalize(state[0, 0], dim=-1).numpy() for state in states])
    result = bert.encode_detailed(["short"], mode="raw", all_layers=True)
    np.testing.assert_allclose(result.layer_embeddings[:, 0], expected, atol=1e-6)


def test_tokens_truncation_and_timings(bert):
    long_text = " ".join(["word"] * 40)
    result = bert.encode_detailed(["hi there", long_text], mode="passage", max_length=16)
    assert result.layer_embeddings is None
    assert result.tokens[0] == ["[CLS]", "hi", "there", "[SEP]"]
    assert result.token_counts == [4, 16]
    assert result.truncated == [False, True]
    assert result.tokens[1][-1] == "[SEP]"
    assert result.timings.run_seconds > 0 and result.timings.load_seconds > 0
    assert result.timings.n_items == 2 and result.timings.n_tokens == 20
    assert result.timings.tokens_per_second == pytest.approx(20 / result.timings.run_seconds)


def test_instruction_override_and_query_mode(bert):
    assert bert.encode_detailed(["x"], mode="query").input_texts == ["Represent: x"]
    assert bert.encode_detailed(["x"], mode="query", instruction="Other: ").input_texts == ["Other: x"]
    assert bert.encode_detailed(["x"], mode="passage", instruction="Doc: ").input_texts == ["Doc: x"]


def test_m3_detailed_lexical_weights_use_token_strings(m3):
    text = "hello hello world"
    result = m3.encode_detailed([text])
    by_id = m3.encode(text, return_sparse=True, return_colbert_vecs=True)
    lexical = result.lexical_weights[0]
    assert lexical
    assert set(lexical) <= set(result.tokens[0])
    to_token = m3.tokenizer.convert_ids_to_tokens
    expected = {to_token(int(key)): float(value) for key, value in by_id["lexical_weights"].items()}
    assert lexical == pytest.approx(expected)
    np.testing.assert_allclose(result.colbert_vecs[0], by_id["colbert_vecs"], atol=1e-6)


def test_attributes(bert, m3):
    assert bert.model_name.endswith("bert-embedder") and bert.source.origin == "local"
    assert bert.num_layers == 3 and bert.load_seconds > 0
    assert str(bert.device) == "cpu" and str(bert.dtype) == "torch.float32"
    assert m3.num_layers == m3.model.config.num_hidden_layers
