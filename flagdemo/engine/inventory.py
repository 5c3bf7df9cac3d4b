"""The Models tab: every catalog model and whether it can be used here, what the model cache holds and what runs
each entry, and unloading."""

from __future__ import annotations

from pathlib import Path

from flagdemo.engine.access import ModelAccess
from flagdemo.models import catalog
from flagdemo.models.cache import machine_memory_bytes
from flagdemo.models.resolve import ModelSpec
from flagdemo.models.sources import looks_like_path
from flagdemo.serving.memory import ANONYMOUS, MAPPED_MODEL_FILES, resident_account

TOTAL_ROW = "resident in all"
UNATTRIBUTED_ROW = "not attributed to a part above"
LOCATION_WORDS = {
    "bundled": "yes (bundled)",
    "local": "yes (models folder)",
    "hub-cache": "yes (downloaded)",
    "hub": "downloads on first use",
}


def catalog_rows() -> list[dict]:
    """Every catalog model and whether it can be used here (the reason when not)."""
    rows = []
    for entry in catalog.ALL_ENTRIES:
        where = catalog.location(entry) if entry.supported else None
        rows.append(
            {
                "model": entry.key,
                "kind": entry.kind,
                "class": entry.model_class_name,
                "here": _here(entry, where),
                "notes": entry.notes,
            }
        )
    return rows


def _here(entry: catalog.CatalogEntry, where: str | None) -> str:
    if entry.model_class == "visualized-bge":  # not a FlagAutoModel class, but flagdemo runs it
        where = catalog.location(entry)
    elif not entry.supported:
        return "not supported"
    return LOCATION_WORDS.get(where, "needs download")


def cache_rows(access: ModelAccess) -> list[dict]:
    """What the model cache holds, in a visitor's words: model, memory, device, load time, and what runs it
    (PyTorch, or ONNX Runtime with what its graph cost: exported, or loaded from the graph cache)."""
    runs_on: dict[tuple[str, bool], set[str]] = {}  # (model folder, is its graph entry) → backend summaries
    for key, wrapper in access.wrappers.kept():
        spec, info = (
            next((part for part in key if isinstance(part, ModelSpec)), None),
            getattr(wrapper, "backend_info", None),
        )
        if spec is not None and info is not None:
            graph_entry = bool(getattr(wrapper, "graph_is_cache_entry", False))
            runs_on.setdefault((str(spec.source.path), graph_entry), set()).add(info.summary())
    rows = []
    for entry in access.cache.entries():
        graph_entry = len(entry.key) > 1 and entry.key[1] == "onnx"
        default = "ONNX Runtime" if graph_entry else "PyTorch"
        rows.append(
            {
                "model": shown_name(entry.describe or str(entry.key[0])),
                "MB": round(entry.nbytes / 2**20, 1 if entry.nbytes < 10 * 2**20 else None),
                "device": entry.device,
                "load s": round(entry.load_seconds, 1),
                "runs on": " ".join(sorted(runs_on.get((str(entry.key[0]), graph_entry), ()))) or default,
            }
        )
    return rows


def memory_rows(access: ModelAccess) -> list[dict]:
    """Where this process's resident memory is, in MB, part by part: each cached model's weights (in the heap or
    mapped from its file), the embedding and result caches, what the process held before its first model, the
    libraries' code (the kernel's own per-mapping count), and what none of these claims, so the rows add up to the
    resident total. Then the cache's budget against the machine's memory. Empty without /proc.

    Freed heap has no row: glibc's count of it (``mallinfo2``) includes the pages ``malloc_trim`` gave back when the
    server went idle, which are no longer resident (on the full-size rehearsal it would have claimed 1.8 GB too
    much)."""
    account = resident_account()
    if account is None:
        return []
    total = account["total"]
    models = sorted(access.cache.entries(), key=lambda entry: -entry.nbytes)
    parts = [(f"model: {shown_name(entry.describe)}", entry.nbytes) for entry in models]
    parts.append((f"embedding cache (vectors kept: {len(access.embedding_cache)})", access.embedding_cache.nbytes))
    parts.append((f"result cache (results kept: {len(access.results)})", access.results.nbytes))
    before = access.cache.anonymous_before_first_load
    if before is not None:
        parts.append(("Python, torch, Gradio and the app before the first model loaded", before))
    code = sum(size for kind, size in account.items() if kind not in (ANONYMOUS, MAPPED_MODEL_FILES, "total"))
    parts.append(("program code and libraries (torch, ONNX Runtime, the rest)", code))
    rest = total - sum(size for _, size in parts)
    parts.append((f"{UNATTRIBUTED_ROW} ({abs(rest) / total:.0%} of the total)", rest))
    rows = [{"what": what, "MB": round(size / 2**20)} for what, size in parts]
    rows.append({"what": TOTAL_ROW, "MB": round(total / 2**20)})
    budget, machine = access.cache.max_memory_bytes, machine_memory_bytes()
    rows.append(
        {"what": f"model budget ({budget / machine:.0%} of this machine's {machine / 2**30:.1f} GB)",
         "MB": round(budget / 2**20)}
    )  # fmt: skip
    return rows


def unload(access: ModelAccess, which: str) -> bool:
    """Drop the loaded model named as in the cache table (its ``model`` column); all of them for 'all'."""
    access.wrappers.clear()  # a kept wrapper must not hold on to weights the user asked to free
    if which == "all":
        had = len(access.cache) > 0
        access.cache.clear()
        return had
    for entry in access.cache.entries():
        if which in (shown_name(entry.describe), entry.describe, " | ".join(map(str, entry.key))):
            return access.cache.unload(entry.key)
    return False


def shown_name(describe: str) -> str:
    """A cache entry's description for visitors: a folder's path becomes its last part (no server paths)."""
    name, _, rest = describe.partition(" (")
    if looks_like_path(name):
        name = Path(name).name
    return f"{name} ({rest}" if rest else name
