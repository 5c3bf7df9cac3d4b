"""The model menus: which models a dropdown offers for a role, and what the app can say about a name before it
loads (BGE-M3? LLM-Embedder? why it cannot be chosen here? its default instruction)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flagdemo.engine import visual
from flagdemo.engine.access import ModelAccess
from flagdemo.errors import FlagDemoError
from flagdemo.models import catalog
from flagdemo.models.resolve import NO_MODEL, Role, unavailable_reason


def choices(names: Sequence[str], kind: catalog.Kind) -> list[str]:
    """``names`` (the app's own, defaults first), then every catalog model of ``kind`` that loads offline now;
    a reranker box may hold "none", which is not a choice."""
    names = [*names, *(entry.key for entry in catalog.available_models(kind))]
    return list(dict.fromkeys(n for n in names if kind == "embedder" or n != NO_MODEL))


def model_menu(role: Role, own: Sequence[str], unavailable: Callable[[str], str]) -> list[tuple[str, str]]:
    """(label, name) for a model dropdown: this app's own models, then EVERY catalog model that can play
    ``role``; those that cannot load here are marked, so a visitor sees the whole family and what it needs."""
    kind: catalog.Kind = "embedder" if role == "embedder" else "reranker"
    menu = {name: name for name in own if fits(catalog.lookup(name, kind), role)}
    for entry in catalog.ALL_ENTRIES:
        if entry.kind != kind or entry.key in menu or not fits(entry, role):
            continue
        if entry.model_class == "visualized-bge":
            menu[entry.key] = entry.key + (" (needs download)" if unavailable(entry.key) else "")
        elif not entry.supported:
            menu[entry.key] = f"{entry.key} (not supported by flagdemo)"
        elif unavailable_reason(entry):
            menu[entry.key] = f"{entry.key} (needs download)"
        else:
            menu[entry.key] = entry.key
    return [(label, name) for name, label in menu.items()]


def fits(entry: catalog.CatalogEntry | None, role: Role) -> bool:
    """Whether a catalog model (None: a folder or hub id, judged when it is resolved) can play ``role``."""
    if entry is None:
        return True
    if role == "cross-encoder":
        return entry.model_class == "encoder-only-base"
    if role in ("llm-reranker", "layer-cutoff"):
        return entry.model_class != "encoder-only-base"
    return True


def is_m3(access: ModelAccess, name: str) -> bool:
    """Whether ``name`` is a BGE-M3 model (False when it does not resolve: its run says why)."""
    try:
        return access.spec(name, "embedder").is_m3
    except FlagDemoError:
        return False


def is_llm_embedder(access: ModelAccess, name: str) -> bool:
    """Whether ``name`` is LLM-Embedder (its Task choice applies); False when it does not resolve."""
    try:
        return access.spec(name, "embedder").is_llm_embedder
    except FlagDemoError:
        return False


def unavailable(name: str) -> str:
    """Why a catalog model cannot be chosen here ('' when it can, or when ``name`` is not a catalog name)."""
    entry = catalog.lookup(name or "")
    if entry is None or name not in (entry.key, entry.hub_id):
        return ""
    if entry.model_class == "visualized-bge":
        return visual.visual_unavailable(entry) if name == entry.key else ""
    return unavailable_reason(entry)


def is_visual(name: object) -> bool:
    """Whether ``name`` is one of the two Visualized-BGE catalog entries (chosen by their exact key)."""
    return visual.visual_entry(name) is not None


def default_instruction(name: str, mode: str) -> str:
    """The instruction FlagEmbedding would prepend for this model and mode ('' when none)."""
    entry = catalog.lookup(name or "", "embedder")
    if entry is None or mode == "raw":
        return ""
    instruction = entry.query_instruction if mode == "query" else entry.passage_instruction
    return instruction or ""
