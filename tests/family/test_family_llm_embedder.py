"""LLM-Embedder: FlagEmbedding 1.2.11's LLMEmbedder replayed against flagdemo (tests/family/golden/llm_embedder.json),
plus the task instructions, the auto class and the sentences for bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from family_goldens import changed_files, load_golden
from golden_codec import compare, decode

from flagdemo import FlagAutoModel, LLMEmbedder
from flagdemo.errors import InvalidInputError, RemoteCodeNotAllowedError
from flagdemo.models import catalog
from flagdemo.models.embedders.llm_embedder import TASKS, task_instruction, task_instructions

GOLDEN = load_golden("llm_embedder")
CASES = GOLDEN["cases"]
_instances: dict[str, LLMEmbedder] = {}


def _instance(tiny_dir, init: dict) -> LLMEmbedder:
    key = repr(sorted(init.items()))
    if key not in _instances:
        _instances[key] = LLMEmbedder(str(tiny_dir / "bert-embedder"), **init)
    return _instances[key]


def _call(instance, case):
    return getattr(instance, case["method"])(*decode(copy.deepcopy(case["args"])), **decode(case["kwargs"]))


def test_golden_header_and_assets(tiny_dir):
    header = GOLDEN["header"]
    assert header["versions"]["FlagEmbedding"] == "1.2.11" and header["reference"] == "FlagEmbedding.LLMEmbedder"
    assert len(CASES) >= 20
    assert not changed_files(tiny_dir / "bert-embedder", header["models"]["bert-embedder"]["files"])


def test_instructions_are_the_published_pairs():
    recorded = GOLDEN["header"]["instructions"]
    assert list(TASKS) == list(recorded) == ["qa", "convsearch", "chat", "lrlm", "icl", "tool"]
    for task, pair in recorded.items():
        assert (task_instruction(task, "query"), task_instruction(task, "key")) == (pair["query"], pair["key"])
        assert pair["query"].endswith(": ") and pair["key"].endswith(": ")
    assert LLMEmbedder.instructions == recorded


def test_tokenizer_gives_flagembeddings_ids(tiny_dir):
    tokenizer = _instance(tiny_dir, {}).tokenizer
    for sample in GOLDEN["tokenization"]:
        assert tokenizer(sample["text"])["input_ids"] == sample["input_ids"], sample["text"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_flagdemo_matches_flagembedding_1_2_11(tiny_dir, case):
    result = _call(_instance(tiny_dir, case["init"]), case)
    comparison = compare(case["result"], result, GOLDEN["header"]["tolerance"])
    assert comparison.n_numbers > 0
    assert comparison.ok, f"{case['id']}: {comparison.summary()}"


def test_auto_model_loads_a_folder_named_llm_embedder(tiny_dir, copy_folder):
    folder = copy_folder(tiny_dir / "bert-embedder", "llm-embedder")
    model = FlagAutoModel.from_finetuned(folder)
    assert isinstance(model, LLMEmbedder) and model.pooling_method == "cls"
    assert model.weights_dtype.is_floating_point and str(model.weights_dtype) == "torch.float32"  # 1.2.11 on CPU
    for case_id in ("llm-embedder-chat-keys", "llm-embedder-default-task-queries", "llm-embedder-single-query"):
        case = next(c for c in CASES if c["id"] == case_id)
        assert compare(case["result"], _call(model, case), 1e-5).ok, case_id


def test_catalog_entry_carries_the_qa_pair():
    entry = catalog.get("BAAI/llm-embedder", "embedder")
    assert (entry.query_instruction, entry.passage_instruction) == (TASKS["qa"].query, TASKS["qa"].key)
    assert entry.pooling == "cls" and entry.supported


def test_unknown_task_is_a_sentence_naming_the_six(tiny_dir):
    model = _instance(tiny_dir, {})
    with pytest.raises(InvalidInputError) as caught:
        model.encode_queries(["q"], task="search")
    message = str(caught.value)
    assert message.startswith("LLM-Embedder has no task 'search'")
    assert all(f"{task} (" in message for task in TASKS)
    with pytest.raises(InvalidInputError, match="no task 'QA'"):
        task_instructions("QA")
    with pytest.raises(InvalidInputError, match="role must be"):
        task_instruction("qa", "passage")


def test_corpus_and_detailed_views_use_the_qa_pair(tiny_dir):
    model = _instance(tiny_dir, {})
    np.testing.assert_allclose(model.encode_corpus(["a b"]), model.encode_keys(["a b"], task="qa"), atol=1e-6)
    detailed = model.encode_detailed(["a b"], mode="query")
    assert detailed.input_texts == [TASKS["qa"].query + "a b"]
    tool = model.encode_detailed(["a b"], mode="query", instruction=task_instruction("tool", "query"))
    np.testing.assert_allclose(tool.embeddings, model.encode_queries(["a b"], task="tool"), atol=1e-6)


def test_instructions_come_from_the_task_only(tiny_dir):
    with pytest.raises(InvalidInputError, match="task="):
        LLMEmbedder(str(tiny_dir / "bert-embedder"), query_instruction_for_retrieval="Query: ")


def test_visualized_entries_need_a_download(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    monkeypatch.delenv("FLAGDEMO_MODELS_DIR", raising=False)
    base, m3 = catalog.get("bge-visualized-base-en-v1.5"), catalog.get("bge-visualized-m3")
    assert (base.hub_id, base.weight_file) == ("BAAI/bge-visualized", "Visualized_base_en_v1.5.pth")
    assert (m3.hub_id, m3.weight_file) == ("BAAI/bge-visualized", "Visualized_m3.pth")
    assert base.model_class_name == "Visualized_BGE" and not base.supported
    assert catalog.location(base) is None and base not in catalog.available_models("embedder", include_hub=True)
    (tmp_path / "models" / "bge-visualized-m3").mkdir(parents=True)
    (tmp_path / "models" / "bge-visualized-m3" / "Visualized_m3.pth").write_bytes(b"x")
    monkeypatch.setenv("FLAGDEMO_MODELS_DIR", str(tmp_path / "models"))
    assert catalog.location(m3) == "local" and catalog.location(base) is None
    with pytest.raises(InvalidInputError, match=r"Visualized-BGE \(image \+ text\) checkpoint: load it with"):
        FlagAutoModel.from_finetuned("bge-visualized-m3")


def test_auto_model_refuses_what_llm_embedder_cannot_honour(tiny_dir, copy_folder):
    folder = copy_folder(tiny_dir / "bert-embedder", "llm-embedder")
    with pytest.raises(InvalidInputError, match="task instruction straight before the text"):
        FlagAutoModel.from_finetuned(folder, query_instruction_format="Instruct: {}\\nQuery: {}")
    with pytest.raises(RemoteCodeNotAllowedError, match="not a catalog model that needs remote code"):
        FlagAutoModel.from_finetuned(folder, trust_remote_code=True)
