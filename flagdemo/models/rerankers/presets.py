"""Prompt presets for causal LMs that were never trained as rerankers (flagdemo's offline SmolLM2).

FlagEmbedding's default prompt is made for bge-reranker-v2-gemma, which was fine-tuned on it. SmolLM2-135M-Instruct
was not: with that prompt its "Yes" logit ranks a relevant passage above an unrelated one about as often as chance
(5 of 12 fixed test queries). Four worked examples in front of the query, and a prompt that ends where the examples'
"Yes"/"No" stands, bring it to 10 of 12. Only the text changes; the scoring is still FlagLLMReranker's.
FlagAutoReranker applies a preset unless the caller passes those arguments; FlagLLMReranker never does.
"""

from __future__ import annotations

from flagdemo.models.catalog import SMOLLM2_KEY

_EXAMPLES = (
    ("What colour is the sky?", "On a clear day the sky looks blue.", "Yes"),
    ("What colour is the sky?", "Cats sleep for most of the day.", "No"),
    ("Who invented the telephone?", "Alexander Graham Bell patented the telephone in 1876.", "Yes"),
    ("Who invented the telephone?", "Rice is a staple food in Asia.", "No"),
)
FEW_SHOT_PREFIX = "".join(
    f"Question: {question}\nPassage: {passage}\nRelevant:\n{answer}\n\n" for question, passage, answer in _EXAMPLES
)

SMOLLM2_PRESET = {
    "query_instruction_for_rerank": FEW_SHOT_PREFIX + "Question: ",
    "passage_instruction_for_rerank": "Passage: ",
    "prompt": "Relevant:\n",
}

MODEL_PRESETS: dict[str, dict[str, str]] = {SMOLLM2_KEY: SMOLLM2_PRESET}


def reranker_preset(catalog_key: str | None) -> dict[str, str]:
    """The instruction / prompt arguments recommended for a catalog model (empty when it needs none)."""
    return dict(MODEL_PRESETS.get(catalog_key or "", {}))
