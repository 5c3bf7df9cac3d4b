"""LLMEmbedder: BAAI/llm-embedder with FlagEmbedding 1.2's API (encode_queries / encode_keys with a task).

FlagEmbedding 1.1.2-1.2.11 shipped ``LLMEmbedder``; 1.3 dropped it and 1.4's auto registry has no entry for it. The
model is a BERT-base encoder (CLS pooling, L2-normalised, dot product) that reads each text behind one of six task
instructions, a different one for queries and for keys. The numbers match FlagEmbedding 1.2.11's own LLMEmbedder
(golden parity in tests/family). As there, ``use_fp16`` is ignored on CPU: the weights stay fp32 (1.2.11 never
rounds them to fp16 there, unlike FlagEmbedding 1.4's embedders).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from flagdemo.errors import InvalidInputError
from flagdemo.models.devices import resolve_device
from flagdemo.models.embedders.dense import FlagModel

DEFAULT_TASK = "qa"


@dataclass(frozen=True)
class TaskInstructions:
    """One LLM-Embedder task: what it is for, and the instruction put before queries and before keys."""

    task: str
    label: str
    query: str
    key: str


# The published instruction pairs (FlagEmbedding 1.2's LLMEmbedder.instructions); every string ends with a space.
TASKS: dict[str, TaskInstructions] = {
    item.task: item
    for item in (
        TaskInstructions(
            "qa",
            "question answering",
            "Represent this query for retrieving relevant documents: ",
            "Represent this document for retrieval: ",
        ),
        TaskInstructions(
            "convsearch",
            "conversational search",
            "Encode this query and context for searching relevant passages: ",
            "Encode this passage for retrieval: ",
        ),
        TaskInstructions(
            "chat",
            "chat memory",
            "Embed this dialogue to find useful historical dialogues: ",
            "Embed this historical dialogue for retrieval: ",
        ),
        TaskInstructions(
            "lrlm",
            "long-range language modelling",
            "Embed this text chunk for finding useful historical chunks: ",
            "Embed this historical text chunk for retrieval: ",
        ),
        TaskInstructions(
            "icl",
            "in-context example retrieval",
            "Convert this example into vector to look for useful examples: ",
            "Convert this example into vector for retrieval: ",
        ),
        TaskInstructions(
            "tool",
            "tool retrieval",
            "Transform this user request for fetching helpful tool descriptions: ",
            "Transform this tool description for retrieval: ",
        ),
    )
}


def task_instructions(task: str) -> TaskInstructions:
    """The instruction pair of ``task``; an unknown task gets a sentence that lists the six."""
    found = TASKS.get(task) if isinstance(task, str) else None
    if found is None:
        known = ", ".join(f"{item.task} ({item.label})" for item in TASKS.values())
        raise InvalidInputError(f"LLM-Embedder has no task {task!r}; choose one of its six tasks: {known}.")
    return found


def task_instruction(task: str, role: str) -> str:
    """The instruction for ``role`` 'query' or 'key' of ``task`` (what encode_queries / encode_keys prepend)."""
    pair = task_instructions(task)
    if role not in ("query", "key"):
        raise InvalidInputError(f"role must be 'query' or 'key', not {role!r}.")
    return pair.query if role == "query" else pair.key


class LLMEmbedder(FlagModel):
    """FlagEmbedding 1.2's ``LLMEmbedder`` on flagdemo's encoder path.

    ``encode_queries`` / ``encode_keys`` prepend the task's instruction and default to 256 / 512 tokens.
    ``encode_corpus`` is ``encode_keys`` for the qa task, and ``encode_detailed`` uses the pair of ``task`` (flagdemo's
    addition, default qa) in its query / passage modes unless given an ``instruction``, so the explorer treats it like
    any FlagModel with that task's instructions. Extra keyword arguments (``devices``,
    ``batch_size`` ...) are FlagModel's.
    """

    instructions: ClassVar[dict[str, dict[str, str]]] = {
        item.task: {"query": item.query, "key": item.key} for item in TASKS.values()
    }

    def __init__(
        self,
        model_name_or_path: str,
        pooling_method: str = "cls",
        normalize_embeddings: bool = True,
        use_fp16: bool = True,
        *,
        task: str = DEFAULT_TASK,
        **kwargs: Any,
    ) -> None:
        for name in ("query_instruction_for_retrieval", "passage_instruction_for_retrieval"):
            if kwargs.pop(name, None) is not None:
                raise InvalidInputError(
                    f"LLM-Embedder takes its instructions from task= ({', '.join(TASKS)}), not from {name}."
                )
        if resolve_device(kwargs.get("devices")).type == "cpu":
            use_fp16 = kwargs["use_bf16"] = False  # FlagEmbedding 1.2.11 keeps fp32 weights on CPU
        chosen = task_instructions(task)
        self.task = chosen.task
        super().__init__(
            model_name_or_path,
            normalize_embeddings=normalize_embeddings,
            use_fp16=use_fp16,
            pooling_method=pooling_method,
            query_instruction_for_retrieval=chosen.query,
            passage_instruction_for_retrieval=chosen.key,
            **{"query_max_length": 256, "passage_max_length": 512, **kwargs},
        )

    def encode_queries(  # type: ignore[override]
        self,
        queries: list[str] | str,
        batch_size: int = 256,
        max_length: int = 256,
        task: str = DEFAULT_TASK,
        **kwargs: Any,
    ):
        """Embeddings of queries read behind the task's query instruction (1-D for one string)."""
        return self.encode(queries, batch_size, max_length, instruction=task_instruction(task, "query"), **kwargs)

    def encode_keys(
        self,
        keys: list[str] | str,
        batch_size: int = 256,
        max_length: int = 512,
        task: str = DEFAULT_TASK,
        **kwargs: Any,
    ):
        """Embeddings of keys (passages, dialogues, examples, tool descriptions) behind the task's key instruction."""
        return self.encode(keys, batch_size, max_length, instruction=task_instruction(task, "key"), **kwargs)

    def encode_corpus(  # type: ignore[override]
        self,
        corpus: list[str] | str,
        batch_size: int = 256,
        max_length: int = 512,
        task: str = DEFAULT_TASK,
        **kwargs: Any,
    ):
        """``encode_keys``: the corpus side of retrieval, for code written against FlagModel."""
        return self.encode_keys(corpus, batch_size, max_length, task, **kwargs)
