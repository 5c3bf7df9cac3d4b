"""FlagEmbedding-compatible behaviour of FlagModel, BGEM3FlagModel and FlagLLMModel on the tiny models.

Numbers are checked against an independent computation here (one text at a time through plain transformers);
exact parity with FlagEmbedding itself is the golden replay test in tests/golden/.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from flagdemo.errors import EmptyInputError, InvalidInputError, MissingModelFilesError, ResourceLimitError
from flagdemo.models.embedders import BGEM3FlagModel, FlagLLMModel, FlagModel

TEXTS = ["hello world", "Ein längerer deutscher Satz mit Umlauten.", "emoji 🤗 text", "短い日本語の文", "x"]


def reference_embeddings(path, texts, pooling, max_length=512):
    """Each text alone (no padding) through AutoModel, pooled and normalised by hand."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
    rows = []
    for text in texts:
        inputs = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)
        with torch.inference_mode():
            hidden = model(**inputs).last_hidden_state[0]
        vector = {"cls": hidden[0], "mean": hidden.mean(0), "last_token": hidden[-1]}[pooling]
        rows.append(F.normalize(vector, dim=-1).numpy())
    return np.stack(rows)


@pytest.mark.parametrize(("fixture", "path_fixture", "pooling"), [
    ("bert", "bert_path", "cls"),
    ("bert_mean", "bert_path", "mean"),
    ("llama", "llama_path", "last_token"),
])  # fmt: skip
def test_batched_encode_equals_one_text_at_a_time(request, fixture, path_fixture, pooling):
    model = request.getfixturevalue(fixture)
    expected = reference_embeddings(request.getfixturevalue(path_fixture), TEXTS, pooling)
    np.testing.assert_allclose(model.encode(TEXTS), expected, atol=1e-5)
    np.testing.assert_allclose(model.encode(TEXTS, batch_size=2), expected, atol=1e-5)


def test_left_padded_decoder_pools_the_last_column(llama_left, llama_left_path):
    tokenizer = AutoTokenizer.from_pretrained(llama_left_path)
    assert tokenizer.padding_side == "left"
    model = AutoModel.from_pretrained(llama_left_path, dtype=torch.float32).eval()
    order = np.argsort([-len(tokenizer(text)["input_ids"]) for text in TEXTS])
    batch = tokenizer([TEXTS[i] for i in order], padding=True, return_tensors="pt")
    with torch.inference_mode():
        pooled = F.normalize(model(**batch).last_hidden_state[:, -1], dim=-1).numpy()
    expected = pooled[np.argsort(order)]
    np.testing.assert_allclose(llama_left.encode(TEXTS), expected, atol=1e-6)


def test_shapes_dtypes_and_single_string(bert):
    embeddings = bert.encode(TEXTS)
    assert embeddings.shape == (5, 16) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)
    single = bert.encode("hello world")
    assert single.shape == (16,)
    np.testing.assert_allclose(single, embeddings[0], atol=1e-6)
    tensor = bert.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (5, 16)
    np.testing.assert_allclose(tensor.numpy(), embeddings, atol=1e-7)
    assert bert.encode(tuple(TEXTS)).shape == (5, 16)


def test_truncate_dim_then_normalise(bert_path):
    full = FlagModel(bert_path, use_fp16=False, normalize_embeddings=False).encode(TEXTS)
    cut = FlagModel(bert_path, use_fp16=False, truncate_dim=8).encode(TEXTS)
    assert cut.shape == (5, 8)
    np.testing.assert_allclose(cut, full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True), atol=1e-6)


def test_default_fp16_weights_are_rounded_like_flagembedding_on_cpu(bert_path):
    """FlagEmbedding loads in fp16 (use_fp16=True default) and upcasts on CPU; the weights carry fp16 rounding."""
    rounded = FlagModel(bert_path)
    assert rounded.dtype == torch.float32
    weight = rounded.model.embeddings.word_embeddings.weight
    assert weight.dtype == torch.float32
    assert torch.equal(weight, weight.half().float())
    exact = FlagModel(bert_path, use_fp16=False).model.embeddings.word_embeddings.weight
    assert not torch.equal(weight, exact)


def test_query_and_passage_instructions_and_lengths(bert_path):
    model = FlagModel(
        bert_path,
        use_fp16=False,
        query_instruction_for_retrieval="Q: ",
        passage_instruction_for_retrieval="P: ",
        query_max_length=6,
        passage_max_length=9,
    )
    long_text = "one two three four five six seven eight nine ten eleven"
    np.testing.assert_allclose(model.encode_queries([long_text]), model.encode(["Q: " + long_text], max_length=6))
    np.testing.assert_allclose(model.encode_corpus([long_text]), model.encode(["P: " + long_text], max_length=9))
    assert model.encode_detailed([long_text], mode="query").token_counts == [6]
    assert model.encode_detailed([long_text], mode="passage").token_counts == [9]
    assert model.encode_detailed([long_text], mode="raw").input_texts == [long_text]


def test_instruction_format_with_literal_backslash_n(llama):
    assert llama.query_instruction_format == "Instruct: {}\nQuery: {}"
    detailed = llama.encode_detailed(["where?"], mode="query")
    assert detailed.input_texts == ["Instruct: Find the answer\nQuery: where?"]
    literal = llama.encode(["where?"], instruction="Find the answer", instruction_format="Instruct: {}\\nQuery: {}")
    np.testing.assert_allclose(literal, llama.encode_queries(["where?"]))


def test_empty_string_encodes_special_tokens_only(bert, m3):
    detailed = bert.encode_detailed([""])
    assert detailed.tokens == [["[CLS]", "[SEP]"]]
    assert np.isfinite(bert.encode("")).all()
    assert m3.encode_detailed([""]).tokens == [["<s>", "</s>"]]
    output = m3.encode("", return_sparse=True, return_colbert_vecs=True)
    assert output["lexical_weights"] == {}
    assert output["colbert_vecs"].shape == (1, 32)


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ([], EmptyInputError, "empty"),
        (None, InvalidInputError, "NoneType"),
        (["ok", 3], InvalidInputError, r"sentences\[1\]"),
        (42, InvalidInputError, "int"),
    ],
)
def test_input_errors(bert, bad, error, match):
    with pytest.raises(error, match=match):
        bert.encode(bad)


def test_argument_errors(bert, bert_path, llama_path):
    with pytest.raises(InvalidInputError, match="batch_size"):
        bert.encode(["a"], batch_size=0)
    with pytest.raises(InvalidInputError, match="mode"):
        bert.encode_detailed(["a"], mode="document")
    with pytest.raises(InvalidInputError, match="placeholders"):
        bert.encode(["a"], instruction="x", instruction_format="{}{}{}")
    with pytest.raises(InvalidInputError, match="'cls' or 'mean'"):
        FlagModel(bert_path, pooling_method="max")
    with pytest.raises(InvalidInputError, match="last token"):
        FlagLLMModel(llama_path, pooling_method="cls")


def test_batch_shrinks_on_out_of_memory_only(bert, monkeypatch):
    expected = bert.encode(TEXTS)
    original = bert._forward
    sizes = []

    def forward_with_small_memory(batch, all_layers):
        size = batch["input_ids"].shape[0]
        sizes.append(size)
        if size > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(batch, all_layers)

    monkeypatch.setattr(bert, "_forward", forward_with_small_memory)
    np.testing.assert_allclose(bert.encode(TEXTS, batch_size=4), expected, atol=1e-6)
    assert sizes[:3] == [4, 3, 2]

    def broken(batch, all_layers):
        raise RuntimeError("index out of range in self")

    monkeypatch.setattr(bert, "_forward", broken)
    with pytest.raises(RuntimeError, match="index out of range"):
        bert.encode(TEXTS, batch_size=4)

    def never_fits(batch, all_layers):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(bert, "_forward", never_fits)
    with pytest.raises(ResourceLimitError, match="one text at a time"):
        bert.encode(TEXTS, batch_size=4)


# --- BGE-M3 ---------------------------------------------------------------------------------------------------------


def test_m3_output_structure(m3):
    output = m3.encode(TEXTS, return_sparse=True, return_colbert_vecs=True)
    assert set(output) == {"dense_vecs", "lexical_weights", "colbert_vecs"}
    assert output["dense_vecs"].shape == (5, 32)
    assert len(output["lexical_weights"]) == 5 and len(output["colbert_vecs"]) == 5
    tokens = [len(m3.tokenizer(text)["input_ids"]) for text in TEXTS]
    assert [vectors.shape for vectors in output["colbert_vecs"]] == [(n - 1, 32) for n in tokens]
    for weights in output["lexical_weights"]:
        assert weights
        assert all(key.isdigit() and isinstance(value, np.float32) and value > 0 for key, value in weights.items())
        assert not {"0", "1", "2", "3"} & set(weights)
    default = m3.encode(TEXTS)
    assert default["lexical_weights"] is None and default["colbert_vecs"] is None
    single = m3.encode("hello world", return_sparse=True, return_colbert_vecs=True)
    assert single["dense_vecs"].shape == (32,) and isinstance(single["lexical_weights"], dict)
    with pytest.raises(InvalidInputError, match="at least one"):
        m3.encode(TEXTS, return_dense=False)


def test_m3_lexical_weights_are_max_relu_per_token(m3):
    text = "hello hello world"
    inputs = m3.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        hidden = m3.model.model(**inputs).last_hidden_state
        weights = torch.relu(m3.model.sparse_linear(hidden)).squeeze(-1)[0]
    expected: dict[str, float] = {}
    for token_id, weight in zip(inputs["input_ids"][0].tolist(), weights.tolist(), strict=True):
        if token_id not in (0, 1, 2, 3) and weight > 0:
            expected[str(token_id)] = max(expected.get(str(token_id), 0.0), weight)
    got = m3.encode(text, return_sparse=True)["lexical_weights"]
    assert len(expected) >= 3
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6)


def test_m3_lexical_and_colbert_helpers(m3):
    output = m3.encode(["hello world", "world peace"], return_sparse=True, return_colbert_vecs=True)
    first, second = output["lexical_weights"]
    assert set(first) & set(second)
    manual = sum(weight * second[token] for token, weight in first.items() if token in second)
    assert m3.compute_lexical_matching_score(first, second) == pytest.approx(manual)
    matrix = m3.compute_lexical_matching_score([first, second], [first, second])
    assert matrix.shape == (2, 2)
    with pytest.raises(InvalidInputError):
        m3.compute_lexical_matching_score(first, [second])
    q, p = output["colbert_vecs"]
    score = m3.colbert_score(q, p)
    assert isinstance(score, torch.Tensor) and score.dim() == 0
    assert float(score) == pytest.approx(float((q @ p.T).max(1).mean()), abs=1e-6)
    converted = m3.convert_id_to_token(first)
    assert isinstance(converted, dict)
    assert sorted(converted.values()) == sorted(first.values())


def test_m3_compute_score_modes(m3):
    pairs = [("hello world", "hello there world"), ("emoji 🤗", "Ein längerer deutscher Satz mit Umlauten.")]
    scores = m3.compute_score(pairs)
    assert set(scores) == {"colbert", "sparse", "dense", "sparse+dense", "colbert+sparse+dense"}
    encoded_q = m3.encode([q for q, _ in pairs], return_sparse=True, return_colbert_vecs=True)
    encoded_p = m3.encode([p for _, p in pairs], return_sparse=True, return_colbert_vecs=True)
    for i in range(2):
        dense = float(encoded_q["dense_vecs"][i] @ encoded_p["dense_vecs"][i])
        lexical_q, lexical_p = encoded_q["lexical_weights"][i], encoded_p["lexical_weights"][i]
        sparse = float(m3.compute_lexical_matching_score(lexical_q, lexical_p))
        assert scores["dense"][i] == pytest.approx(dense, abs=1e-5)
        assert scores["sparse"][i] == pytest.approx(sparse, abs=1e-5)
        assert sparse > 0
        assert scores["sparse+dense"][i] == pytest.approx((dense + sparse) / 2, abs=1e-5)
        expected_all = (scores["colbert"][i] + sparse + dense) / 3
        assert scores["colbert+sparse+dense"][i] == pytest.approx(expected_all, abs=1e-5)
    single = m3.compute_score(pairs[0], weights_for_different_modes=[0.4, 0.2, 0.4])
    assert isinstance(single["dense"], float)
    assert single["dense"] == pytest.approx(scores["dense"][0], abs=1e-6)
    weighted = (0.4 * single["colbert"] + 0.2 * single["sparse"] + 0.4 * single["dense"]) / 1.0
    assert single["colbert+sparse+dense"] == pytest.approx(weighted, abs=1e-6)
    with pytest.raises(InvalidInputError, match="three numbers"):
        m3.compute_score(pairs, weights_for_different_modes=[1, 1])
    with pytest.raises(EmptyInputError):
        m3.compute_score([])
    with pytest.raises(InvalidInputError, match="Pair 1"):
        m3.compute_score([("a", "b"), ("only one",)])


def test_m3_missing_head_files_are_an_error(m3_path, copy_model):
    for missing in (("colbert_linear.pt",), ("sparse_linear.pt",), ("colbert_linear.pt", "sparse_linear.pt")):
        folder = copy_model(m3_path, "-".join(missing), without=missing)
        with pytest.raises(MissingModelFilesError, match=missing[0].replace(".", r"\.")):
            BGEM3FlagModel(folder, use_fp16=False)


def test_numpy_conversion_keeps_fp16_and_upcasts_bf16(bert):
    half = bert._to_numpy(torch.ones(2, 3, dtype=torch.float16))
    assert half.dtype == np.float16
    brain = bert._to_numpy(torch.ones(2, 3, dtype=torch.bfloat16))
    assert brain.dtype == np.float32


def test_concurrent_encodes_on_one_instance_agree(bert):
    import threading

    expected = bert.encode(TEXTS)
    results, errors = [], []

    def work(max_length):
        try:
            for _ in range(5):
                results.append((max_length, bert.encode(TEXTS, max_length=max_length)))
        except Exception as error:  # pragma: no cover - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(length,)) for length in (512, 8, 512, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "an encode hung"
    assert not errors
    assert len(results) == 4 * 5
    short = bert.encode(TEXTS, max_length=8)
    for max_length, result in results:
        np.testing.assert_allclose(result, expected if max_length == 512 else short, atol=1e-6)


@pytest.mark.slow
def test_decoder_without_special_tokens_refuses_an_empty_string():
    """SmolLM2's real tokenizer adds no BOS, so "" has no token to pool: a clear error instead of a padding vector."""
    from flagdemo.models.embedders import FlagAutoModel

    model = FlagAutoModel.from_finetuned("SmolLM2-135M-Instruct", model_class="decoder-only-base", use_fp16=False)
    assert model.source.origin == "bundled" and model.num_layers == 30
    assert model.tokenizer("")["input_ids"] == []
    with pytest.raises(InvalidInputError, match="Text 1 tokenizes to no tokens"):
        model.encode(["fine", ""])
    assert model.encode(["fine"]).shape == (1, 576)
