"""Which CPU a measurement ran on: its model name and the vector/matrix extensions that
decide how fast embedding and similarity code can go (AVX2, AVX-512, VNNI, AMX).

Read from ``/proc/cpuinfo`` (Linux); elsewhere the model is ``platform.processor()`` and
every flag is reported as unknown (``None``). No Dagster, no third-party imports.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# the flags benchmarks record, as /proc/cpuinfo spells them
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")


def parse_cpuinfo(text: str) -> tuple[str | None, set[str]]:
    """(model name, flags) of the first processor described in ``/proc/cpuinfo`` text."""
    model: str | None = None
    flags: set[str] | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "model name" and model is None:
            model = value.strip() or None
        elif key in ("flags", "features") and flags is None:  # x86 "flags", arm64 "Features"
            flags = set(value.split())
        if model is not None and flags is not None:
            break
    return model, flags or set()


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """``{"model", "logical_cpus", "arch", "flags": {flag: bool | None}, "avx512", "amx", "vnni"}``.

    ``avx512`` / ``amx`` / ``vnni`` summarize the flags (any AVX-512 foundation, any AMX tile
    unit, VNNI in either its AVX-512 or its AVX form); ``None`` where the flags could not be read.
    """
    try:
        model, flags = parse_cpuinfo(Path(cpuinfo).read_text(encoding="utf-8", errors="replace"))
        known = bool(flags)
    except OSError:
        model, flags, known = None, set(), False
    per_flag = {f: (f in flags) if known else None for f in FLAGS}

    def any_of(*names: str) -> bool | None:
        return any(per_flag[n] for n in names) if known else None

    return {
        "model": model or platform.processor() or platform.machine() or "unknown",
        "logical_cpus": os.cpu_count() or 0,
        "arch": platform.machine(),
        "flags": per_flag,
        "avx512": any_of("avx512f"),
        "amx": any_of("amx_bf16", "amx_int8", "amx_tile"),
        "vnni": any_of("avx512_vnni", "avx_vnni"),
    }


def cpu_summary(info: dict) -> str:
    """One line: the model and the extensions it has, e.g. ``AMD EPYC (2 CPUs): avx2``."""
    have = [f for f, v in info["flags"].items() if v]
    flags = ", ".join(have) if have else ("none of " + "/".join(FLAGS) if info["avx512"] is not None else "flags unknown")
    return f"{info['model']} ({info['logical_cpus']} CPUs, {info['arch']}): {flags}"
