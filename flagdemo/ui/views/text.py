"""Words shown in the app: what each tab teaches, and the offline examples each tab opens with.

Kept apart from the layout so a workshop can edit the wording without touching code, and so the README can quote
the same one-line summaries (``TAB_SUMMARIES``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

LABEL_CHARS = 40

TITLE = "# flagdemo: explore BGE / FlagEmbedding embedders and rerankers"

INTRO = (
    "Every tab opens with an example computed on this app's models, named below. Change the texts, pick another "
    "model, press the button. "
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
    "Cocktail": "fine-tuning an embedder on a small domain set helps that domain and can cost elsewhere; "
    "LM-Cocktail blends it back into its base to trade one against the other.",
    "Compare": "whether a difference between retrieval systems is real: embedders, layers, BM25, rerankers over a "
    "first stage and fused systems on the labelled set, with paired significance tests, cost and the queries where "
    "they disagree; then two embedders query by query.",
    "Models": "which models load offline, from where, and what the cache holds in memory.",
}


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    """One line, at most ``limit`` characters, so long passages do not swamp an axis, a legend or a table cell.

    The cut falls between words unless that would lose more than a third of the room."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if flat[limit - 1] != " " and cut.rfind(" ") > (limit - 1) * 2 // 3:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip() + "…"


def numbered_label(index: int, text: str, limit: int = LABEL_CHARS) -> str:
    """``#3 The Eiffel Tower was…``: a short label that stays unique when two texts start alike (1-based)."""
    return f"#{index + 1} {short_label(text, limit)}"


def wrapped(text: str, width: int = 70, max_lines: int = 6) -> str:
    """The full text broken into ``<br>``-separated lines for a plot's hover box (long hovers run off the chart)."""
    words, lines, line = " ".join(str(text).split()).split(" "), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], short_label(" ".join(lines[max_lines - 1 :]), width)]
    return "<br>".join(lines)


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 text``, ``3 texts``: counts in sentences read naturally."""
    return f"{count} {noun if count == 1 else (plural_form or noun + 's')}"


def number(value: float, digits: int = 3) -> str:
    """A number for a sentence: ``digits`` significant digits, no scientific notation for everyday sizes."""
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(value)))) if value else 0
        return f"{value:,.{decimals}f}"
    return f"{value:.{digits - 1}e}"


def duration(seconds: float) -> str:
    """``840 ms``, ``2.4 s``, ``3 min 5 s``: times a person reads at a glance."""
    seconds = float(seconds)
    if seconds < 1:
        return f"{number(seconds * 1000, 3)} ms"
    if seconds < 60:
        return f"{number(seconds, 3)} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def megabytes(n_bytes: float) -> str:
    """``512 MB``, ``1.3 GB``: memory sizes without decimals that mean nothing."""
    mb = float(n_bytes) / 2**20
    return f"{number(mb / 1024, 2)} GB" if mb >= 1024 else f"{number(mb, 3)} MB"


def describe_projection(method: str, params: Mapping[str, object]) -> str:
    """A projection's settings as a sentence (never a raw mapping): what the map was drawn with."""
    name = method.upper() if method.lower() in ("pca", "umap") else "t-SNE" if method.lower() == "tsne" else method
    if "explained_variance" in params:
        shares = [f"{100 * float(v):.1f}%" for v in params["explained_variance"]]  # type: ignore[union-attr]
        return f"{name}: the axes keep {listed(shares)} of the spread of the vectors."
    parts = []
    if "n_neighbors" in params:
        parts.append(f"{params['n_neighbors']} neighbours")
    if "min_dist" in params:
        parts.append(f"minimum distance {float(params['min_dist']):g}")  # type: ignore[arg-type]
    if "perplexity" in params:
        parts.append(f"perplexity {number(float(params['perplexity']), 3)}")  # type: ignore[arg-type]
    if "seed" in params:
        parts.append(f"seed {params['seed']}")
    return f"{name} with {listed(parts)}." if parts else f"{name}."


def listed(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


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
    "**Where models come from:** *bundled* = shipped with the app (works offline), *local* = a folder in the "
    "server's models directory, *hub-cache* = already downloaded, *hub* = downloadable when the Hugging Face hub is "
    "reachable, *unavailable* = not reachable from here. Any model field also accepts a local folder or a hub id."
)

ERROR_FALLBACK = "Something went wrong while {action}. The details are in the server log; try other inputs."

# ---- "How to read this": one short paragraph under each plot and table, for a workshop projector -------------------

HOW_TO_READ = {
    "encode-table": (
        "One row per text. *tokens* is how many pieces the tokenizer cut it into; *truncated* means the text was "
        "longer than the model reads and its end was ignored. *norm* is the vector's length: 1 means it was "
        "normalised, so a dot product of two vectors is their cosine. The first dimensions alone mean nothing: "
        "only comparisons between vectors do."
    ),
    "encode-summary": (
        "*mean pairwise cosine* is how alike the texts look to the model on average: close to 1 means the vectors "
        "crowd into one direction, which is common and why scores are best read relative to each other."
    ),
    "encode-plot": (
        "Each row is one text, each column one dimension of its vector: red above zero, blue below. Similar texts "
        "show similar stripes; no single dimension has a meaning of its own."
    ),
    "similarity-plot": (
        "Each cell is the cosine between a query and a passage: 1 = same direction, 0 = unrelated. Read across a "
        "row: the brightest cell is the passage this query retrieves first. Cosines of one model are comparable with "
        "each other, not with another model's (many models never go below 0.3). Hover a cell for both full texts."
    ),
    "similarity-table": (
        "Each query's best passages, best first, with the cosine that put them there. A small gap between rank 1 and "
        "rank 2 means the model was not sure."
    ),
    "similarity-lexical": (
        "Sparse (lexical) scores: BGE-M3 weighs each word of the query and of the passage; the score adds up, for "
        "every word they share, the product of the two weights. Shared words that matter get large products."
    ),
    "similarity-colbert": (
        "ColBERT (multi-vector) scores: every query token finds its most similar passage token (the cross), and the "
        "score is the mean of those best matches. It shows which words of the passage answered which of the query."
    ),
    "rerank-table": (
        "One row per passage. A *bi-encoder* score is the cosine of two separately computed vectors (−1 to 1). A "
        "reranker reads query and passage together and gives a raw score (a logit: any number, only its order "
        "counts); the *sigmoid* squeezes it into 0–1, but very large logits all become 1.000, so compare raw "
        "scores. *rank* 1 is the passage each method puts first."
    ),
    "rerank-chart": (
        "One line per passage, one column per method, rank 1 at the top. Flat lines: the methods agree; crossing "
        "lines: they put the passages in a different order."
    ),
    "rerank-tau": (
        "Kendall τ compares two rankings of the same passages: 1 = the same order, 0 = no relation, −1 = reversed. "
        "It counts pairs of passages that both methods order the same way, minus those they order differently."
    ),
    "rerank-timing": (
        "What each method cost here: loading the model (once, then kept in memory) and scoring these passages. "
        "Rerankers read every query–passage pair together, so they cost more per passage than a bi-encoder."
    ),
    "sweep-plot": (
        "A score per passage per layer: a layer-wise reranker (bge-reranker-v2-minicpm-layerwise) reads each layer "
        "with its own trained head; any other causal LM is read through the logit lens, its intermediate state "
        "taken as if it were the last one (the chart's title says which). Lines that separate early mean the model "
        "'knows' early, and a cutoff layer there saves the time of the later layers. The lower panel shows ranking "
        "quality (nDCG and MRR, 1 = perfect) and the time to reach each layer."
    ),
    "sweep-ranks": (
        "Where each passage ranks at each layer (1 = best). *settled at layer* is the first layer from which its "
        "rank no longer changes: the depth the model needs for that passage."
    ),
    "sweep-metrics": (
        "Quality per cutoff layer against your relevance labels. nDCG@k rewards putting the most relevant passages "
        "in the first k places (1 = the ideal order); MRR@k is 1 divided by the rank of the first relevant passage "
        "(1 = it is first, 0.5 = second). *ms to layer* is the time a cutoff there costs."
    ),
    "projection-map": (
        "Each point is a text; texts the model finds similar land close together. UMAP keeps neighbours together but "
        "distances between far-apart clusters mean little; PCA keeps the largest directions of spread and distances "
        "are faithful but crowded. Stars are your queries, lines go to their nearest texts (measured in the full "
        "vectors, not on the map)."
    ),
    "projection-side": (
        "The same texts mapped by two models (or two layers): same colour = same label. Clusters that form in one "
        "map and not the other show what one model separates and the other does not."
    ),
    "projection-table": (
        "Each query's nearest texts by cosine in the full vectors: the truth that the map only approximates."
    ),
    "compare-summary": (
        "Mean quality of A and B over the labelled queries. nDCG@k (0–1) rewards relevant passages near the top; "
        "MRR@k is 1 / rank of the first relevant passage; Recall@k is the share of relevant passages found in the "
        "top k. *B better* / *A better* count the queries each one wins."
    ),
    "compare-plot": (
        "One point per query: A's nDCG across, B's up. Points above the diagonal are queries B handles better, "
        "below it A does; points on the diagonal are ties."
    ),
    "compare-table": (
        "The queries where A and B differ most, with both scores and how many of their top-k passages they share. "
        "Download the CSV for every column."
    ),
    "systems-means": (
        "One row per system, averaged over the labelled queries (1 = perfect). nDCG@10 rewards relevant passages "
        "near the top, RR@10 is 1 / rank of the first relevant passage, R@100 the share of relevant passages in the "
        "top 100, AP the precision averaged over every relevant passage. *Tier 1* is the best system and every "
        "system the set cannot show to be worse than it; tier 2 the same among the rest, and so on."
    ),
    "systems-pairs": (
        "One row per pair on the first measure. *Δ* is B's mean minus A's over the same queries, with a paired "
        "bootstrap 95% interval. The randomization test swaps A's and B's score on random queries to see how often "
        "chance alone gives a Δ this large; the t-test asks the same with a formula. *p Holm* corrects for testing "
        "many pairs at once: below 0.05 the difference is called real. *cannot tell apart* means these queries do "
        "not separate the two, not that they are equal."
    ),
    "systems-costs": (
        "Each system's quality on the first measure against what it cost here: the chart puts the time per query "
        "across and joins the systems no other system beats on both quality and time (the frontier). A dominated "
        "system is drawn hollow: another one is at least as good and at least as fast. A pipeline's time adds its "
        "first stage and the reranker; a fusion's adds its members."
    ),
    "systems-pipelines": (
        "A pipeline reranks the top *depth* of its first stage. Per query the reranker either gained, lost or left "
        "the measure unchanged; *recall ceiling* counts queries where no relevant passage was in that top at all, "
        "so no reranker could have helped. *the reranker hurts* means it lost more than it gained on average."
    ),
    "systems-groups": (
        "The same means within each topic and language, with how many queries each holds. *detectable Δ* is about "
        "the smallest difference between two systems these queries could show to be real; with few queries only "
        "large differences can be seen, and a group under the minimum size says so instead."
    ),
    "systems-disagree": (
        "The queries where the systems' scores spread the most, with the best and worst system on each and how "
        "much their top 10 lists overlap with the reference (RBO: 1 = the same list, 0 = nothing shared)."
    ),
    "systems-side": (
        "The query where the systems disagree most: each column is one system's top 10, each cell a passage and "
        "its graded label (2 = very relevant, 1 = relevant, 0 = not or unjudged). *new* marks a passage the first "
        "column (the reference) does not have in its top 10; ↑n and ↓n how far it moved against the reference."
    ),
    "systems-passages": (
        "Every passage of the view above once, with its graded label for this query and its text (click a cell for "
        "the whole text): read why a system put it where it did."
    ),
    "cocktail-curve": (
        "Left: the training loss per step. Right: nDCG@10 of each blend w · fine-tuned + (1 − w) · base, w = 0 the "
        "base model and w = 1 the fine-tuned one, on the labelled queries of the ticked topics (in-domain) and of "
        "the others (out-of-domain). A blend that keeps most of the in-domain gain and loses little out-of-domain "
        "is what LM-Cocktail is for; the dashed line is the weight it derives from held-back training examples."
    ),
    "cocktail-table": (
        "One row per blend weight w: nDCG@10 in-domain and out-of-domain and how many queries each mean is over "
        "(with 18 or 30 queries, one query moves a mean by a few hundredths). *data-derived* marks LM-Cocktail's "
        "own weight."
    ),
    "models-catalog": (
        "One row per model flagdemo knows. *here* says whether it can run on this server now; a model that needs a "
        "download can still be named in any model box where the Hugging Face hub is reachable."
    ),
    "models-cache": (
        "The models held in memory right now, shared by every tab and visitor: *MB* of weights, *load s* the time "
        "its first use took, *runs on* PyTorch or an ONNX Runtime graph (the faster exact path on a CPU). A model is "
        "loaded once and kept until the cache needs the room."
    ),
    "models-memory": (
        "This server's resident memory part by part: each loaded model's weights (in the heap or mapped from its "
        "file), the embedding and result caches, what the server held before its first model (Python, torch, this "
        "page), and the libraries' code. *not attributed* is the rest: memory a running request holds, freed memory "
        "not yet given back (that happens when the server goes idle), ONNX Runtime's working memory, objects made "
        "since; negative when a part counts bytes the kernel does not keep in memory (weights mapped from a file "
        "and not read yet). The rows add "
        "up to *resident in all*; below it, the budget the model cache keeps to: past it, the least recently used "
        "model is unloaded."
    ),
}


SYSTEMS_GRAMMAR = (
    "One system per line, written `NAME=SPEC`; a later line may use an earlier one's NAME. SPEC is one of: "
    "a model (`all-MiniLM-L6-v2`, a hub id or a folder), that model at a layer (`all-MiniLM-L6-v2@3`), "
    "`bm25`, a BGE-M3 mode (`bge-m3[sparse]`, `[colbert]`, `[m3]`), a reranker over the top of another system "
    "(`embedder>>SmolLM2-135M-Instruct@20` reranks its top 20), or a fusion: `rrf(bm25,embedder)` (reciprocal "
    "rank fusion, k = 60), `combsum(…)`, `combmnz(…)` (scores min-max normalised first). Lines starting with `#` "
    "are ignored. The full grammar is in the docs' comparison page."
)


def how_to_read(view: str) -> str:
    """The "how to read this" line shown under one plot or table (a markdown string)."""
    return f"*How to read this:* {HOW_TO_READ[view]}"


# ---- The offline LLM reranker, as measured --------------------------------------------------------------------------
# Measured with `python -m benchmarks.reranker_effect --per-topic 2` (the numbers are in
# benchmarks/results/reranker_effect.json; a test checks that the sentence below quotes them).
# 16 of the 48 labelled queries (the first two of each of the 8 topics) against all 321 passages: a 2,088 s run on
# a shared 2-core CPU. The full set (docs/teaching.md, `make quality`) gives the same picture: nDCG@10 0.838 → 0.345.
RERANKER_EFFECT_QUERIES = 16
RERANKER_EFFECT_TOPICS = 8
RERANKER_EFFECT_PASSAGES = 321
RERANKER_EFFECT_TOP_K = 20
RERANKER_EFFECT_NDCG = (0.777, 0.282)  # nDCG@10: MiniLM alone, then SmolLM2 reranking MiniLM's top 20
RERANKER_EFFECT_MRR = (0.969, 0.225)  # MRR@10, in the same order

RERANKER_CAVEAT = (
    "**About the offline LLM reranker.** SmolLM2-135M-Instruct is a small chat model, not a trained reranker: it "
    "is shown a few examples, then asked whether the passage is relevant, and its score is how strongly it wants "
    "to answer “Yes”. Measured on {queries} labelled questions from {topics} topics of the bundled labelled set "
    "(the Compare tab's set, searching all {passages} of its passages), reranking the top {top_k} passages of "
    "all-MiniLM-L6-v2 made the ranking **{direction}**: nDCG@10 went from {ndcg_a} to {ndcg_b}, and MRR@10 "
    "from {mrr_a} to {mrr_b}. So an odd order here (the Eiffel Tower above Paris) is this "
    "model's judgement, not a bug. Its raw scores are often large (around +30) and close together, where the "
    "sigmoid rounds to 1.000: compare the raw scores. A trained reranker such as bge-reranker-base "
    "(downloadable where the Hugging Face hub is reachable) shows what reranking is meant to do."
)


def reranker_caveat() -> str:
    """The Rerankers tab's plain statement of what SmolLM2 is and what it measurably does to MiniLM's ranking."""
    (ndcg_a, ndcg_b), (mrr_a, mrr_b) = RERANKER_EFFECT_NDCG, RERANKER_EFFECT_MRR
    return RERANKER_CAVEAT.format(
        queries=RERANKER_EFFECT_QUERIES,
        topics=RERANKER_EFFECT_TOPICS,
        passages=RERANKER_EFFECT_PASSAGES,
        top_k=RERANKER_EFFECT_TOP_K,
        direction="worse" if ndcg_b < ndcg_a else "better",
        ndcg_a=f"{ndcg_a:.2f}",
        ndcg_b=f"{ndcg_b:.2f}",
        mrr_a=f"{mrr_a:.2f}",
        mrr_b=f"{mrr_b:.2f}",
    )
