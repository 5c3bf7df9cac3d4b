"""The CPU this process runs on, named the way failure reports and benchmark results need it.

Standard library only, so ``python3 flagdemo/models/backends/cpu.py`` prints it before anything is installed
(``make test`` and ``.ci/run`` start with it): results that differ between CPUs are traced to the kernels those CPUs
pick.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The vector extensions that decide which fp32, bf16 and int8 kernels oneDNN, fbgemm and ONNX Runtime run.
VECTOR_EXTENSIONS = (
    "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm",
)  # fmt: skip


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_features() -> set[str]:
    """The CPU's vector extensions among ``VECTOR_EXTENSIONS`` (x86 ``flags`` or Arm ``Features``), Linux only."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return flags.intersection(VECTOR_EXTENSIONS)


def has_bf16_arithmetic() -> bool:
    """Whether the CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16 on x86, BF16 on Arm); elsewhere torch
    emulates bf16 products, about five times slower than fp32 on an AVX2-only CPU."""
    return bool({"avx512_bf16", "amx_bf16", "bf16"} & cpu_features())


def cpu_model() -> str:
    """The model name, with the family and model numbers where a VM shows only a brand ("AMD EPYC")."""
    info = _cpuinfo()
    name = info.get("model name") or info.get("CPU part") or platform.processor() or "unknown CPU"
    if "cpu family" in info and "model" in info:
        name += f" (family {info['cpu family']}, model {info['model']})"
    return name


def describe() -> str:
    """One line: model, cores, architecture and vector extensions."""
    features = " ".join(name for name in VECTOR_EXTENSIONS if name in cpu_features()) or "none listed"
    return f"CPU: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}; vector extensions: {features}"


if __name__ == "__main__":
    print(describe())
