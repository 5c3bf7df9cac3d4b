"""Words shown in the app: what each tab teaches, and the offline examples each tab opens with.

Kept apart from the layout so a workshop can edit the wording without touching code, and so the README can quote
the same one-line summaries (``TAB_SUMMARIES``).
"""

from __future__ import annotations

TITLE = "# flagdemo: explore BGE / FlagEmbedding embedders and rerankers"

INTRO = (
    "Every tab opens with an example that runs offline on the bundled models (all-MiniLM-L6-v2 as embedder, "
    "SmolLM2-135M-Instruct as LLM reranker). Change the texts, pick another model, press the button. "
    "Numbers are the ones FlagEmbedding 1.4 computes for the same model and settings."
)

TAB_SUMMARIES = {
    "Encode": "what an embedding is: tokens in, one normalised vector out, and what the query instruction changes.",
    "Similarity": "why cosine similarity of normalised vectors ranks passages, and (BGE-M3) how dense, sparse and "
    "ColBERT scores differ.",
    "Rerankers": "bi-encoder vs LLM reranker vs layer-cutoff reranker on the same passages: raw vs sigmoid scores, "
    "where the rankings disagree, and what each costs.",
    "Layer sweep": "how a reranker's judgement forms layer by layer, and how much quality an early cutoff gives "
    "up for the time it saves.",
    "Projection": "what a 2D/3D map of embeddings keeps and distorts (UMAP vs PCA vs t-SNE), and where queries land "
    "among their neighbours.",
    "Compare": "two embedders (or two layers) on a labelled set: nDCG/MRR per query, and where they disagree.",
    "Models": "which models load offline, from where, and what the cache holds in memory.",
}


def tab_intro(tab: str) -> str:
    """The line under a tab's title: what the tab teaches."""
    return f"**What this tab shows:** {TAB_SUMMARIES[tab]}"


ENCODE_TEXTS = (
    "The cat sat quietly on the warm windowsill.\n"
    "A kitten was resting on the sunny window ledge.\n"
    "Stock markets fell sharply after the interest rate announcement.\n"
    "How do I reset my router password?"
)

SIMILARITY_QUERIES = "How do plants make their food?\nWhat causes inflation?"
SIMILARITY_PASSAGES = (
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.\n"
    "Plants take up water through their roots.\n"
    "Inflation rises when too much money chases too few goods.\n"
    "Central banks raise interest rates to slow rising prices.\n"
    "The football match ended in a draw after extra time."
)

RERANK_QUERY = "What is the capital of France?"
RERANK_PASSAGES = (
    "Paris is the capital and largest city of France.\n"
    "France is a country in Western Europe with many famous cities.\n"
    "The Eiffel Tower was built in Paris for the 1889 World's Fair.\n"
    "Berlin is the capital of Germany.\n"
    "Lyon is known for its cuisine and silk industry."
)
RERANK_RELEVANCE = "2, 0, 1, 0, 0"

PROJECTION_CORPUS = (
    "animals\tThe cat chased a mouse across the kitchen.\n"
    "animals\tDogs love to play fetch in the park.\n"
    "animals\tA horse galloped across the open field.\n"
    "animals\tThe parrot repeated every word it heard.\n"
    "finance\tThe bank raised its interest rates again.\n"
    "finance\tInvestors sold shares as the market dropped.\n"
    "finance\tThe company reported record quarterly profits.\n"
    "finance\tInflation reduced the value of savings.\n"
    "cooking\tSimmer the tomato sauce for twenty minutes.\n"
    "cooking\tKnead the dough until it is smooth and elastic.\n"
    "cooking\tRoast the vegetables with olive oil and garlic.\n"
    "cooking\tWhisk the eggs and sugar until pale.\n"
    "sport\tThe striker scored twice in the second half.\n"
    "sport\tShe won the marathon in record time.\n"
    "sport\tThe tennis final went to five sets.\n"
    "sport\tThe team trained hard before the championship."
)
PROJECTION_QUERIES = "Which pets are playful?\nHow do I bake bread?"

MODELS_HELP = (
    "**Where models come from:** *bundled* = shipped in a Python package (works offline), *local* = a folder under "
    "FLAGDEMO_MODELS_DIR, *hub-cache* = already downloaded, *hub* = downloadable when the hub is reachable, "
    "*unavailable* = not reachable from here. Any model field also accepts a local folder or a hub id."
)

ERROR_FALLBACK = "Something went wrong while {action}. The details are in the server log; try other inputs."
