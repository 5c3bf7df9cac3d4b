"""Where a process's resident memory is, from the kernel's own per-mapping figures (``/proc/<pid>/smaps``).

RSS is the sum of every mapping's ``Rss``, so the account below adds up to it exactly (to the kilobyte): program
code and libraries (torch, ONNX Runtime, the rest), memory-mapped model files, and anonymous memory — the heap where
torch tensors, ONNX Runtime's sessions and arenas, and Python's objects live. A model cache's own byte count then
says how much of the anonymous part is weights. Linux only; elsewhere ``resident_account`` returns None.
"""

from __future__ import annotations

import os
from pathlib import Path

from flagdemo.limits import env_number
from flagdemo.models.threads import glibc_function

MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt", ".gguf", ".data")
ANONYMOUS = "anonymous (heap: tensors, ONNX Runtime sessions and arenas, Python objects)"
MAPPED_MODEL_FILES = "memory-mapped model files"


def _kind(path: str) -> str:
    name = os.path.basename(path)
    if not path or path.startswith("[") or path.startswith("/memfd:") or path == "/dev/zero (deleted)":
        return ANONYMOUS
    if ".so" in name:
        if "torch" in path or name.startswith(("libgomp", "libtorch", "libc10", "libshm")):
            return "torch libraries"
        if "onnxruntime" in path:
            return "ONNX Runtime library"
        return "other libraries"
    if name.endswith(MODEL_FILE_SUFFIXES) or ("/models--" in path and "/blobs/" in path):
        return MAPPED_MODEL_FILES  # the hub cache keeps every file as a blob named by its hash
    return "other mapped files (python, fonts, data)"


def resident_account(pid: int | str = "self") -> dict[str, int] | None:
    """Resident bytes per kind of mapping, plus ``"total"`` (equal to the sum of the kinds); None without /proc."""
    smaps = Path(f"/proc/{pid}/smaps")
    try:
        lines = smaps.read_text().splitlines()
    except OSError:
        return None
    account: dict[str, int] = {}
    kind = _kind("")
    for line in lines:
        first = line.split(maxsplit=1)[0] if line else ""
        # A mapping's header (address range, perms, offset, device, inode, path), or one of its "Key: value" lines.
        if "-" in first and not first.endswith(":"):
            fields = line.split(maxsplit=5)
            kind = _kind(fields[5].strip() if len(fields) > 5 else "")
        elif first == "Rss:":
            account[kind] = account.get(kind, 0) + int(line.split()[1]) * 1024
    account["total"] = sum(account.values())
    return account


def describe_account(account: dict[str, int]) -> str:
    """One line per kind, largest first, in MB, and the total."""
    kinds = sorted(((size, kind) for kind, size in account.items() if kind != "total"), reverse=True)
    rows = [f"  {size / 2**20:8.0f} MB  {kind}" for size, kind in kinds]
    return "\n".join([*rows, f"  {account['total'] / 2**20:8.0f} MB  resident in all"])


M_ARENA_MAX = -8  # glibc's mallopt parameter number for the arena limit
ARENAS_ENV = "FLAGDEMO_MALLOC_ARENAS"  # glibc heap arenas for the app's threads; 0: glibc's own limit (8 per core)
DEFAULT_ARENAS = 2


def limit_heap_arenas() -> int | None:
    """Cap glibc's heap arenas at FLAGDEMO_MALLOC_ARENAS before the server starts its threads; returns the cap,
    or None when nothing was set (0, an operator's own MALLOC_ARENA_MAX, or no glibc).

    glibc gives busy threads arenas of their own (up to 8 per core) and keeps what each freed for reuse: in the
    workshop room (each student's request on a server thread) anonymous memory grew 200 MB over idle by the peak
    with glibc's limit and 153 MB with 2 arenas, at the same latencies (docs/serving.md, "The workshop scenario").
    """
    arenas = int(env_number(ARENAS_ENV, DEFAULT_ARENAS, allow_zero=True))
    if arenas <= 0 or os.environ.get("MALLOC_ARENA_MAX"):
        return None
    mallopt = glibc_function("mallopt")
    return arenas if mallopt is not None and mallopt(M_ARENA_MAX, arenas) == 1 else None
