"""Shared by the benchmark scripts (not a benchmark: names starting with ``_`` are helpers):
what machine a figure was measured on, for their JSON line.

* ``cpu_figures()``: the CPU model and its AVX2 / AVX-512 / VNNI / AMX flags
  (``replyassets.core.cpu``), the load average and the logical CPUs;
* ``embedding_auto_figures(backend)``: the precision ``dedup.embedding_precision: auto``
  resolves to for a backend on this CPU (openvino: bf16 only where the CPU has it, else
  fp32), as ``SentenceTransformerEmbedder`` resolves it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from replyassets.core.cpu import cpu_info, cpu_summary


def cpu_figures() -> dict:
    return cpu_info()


def embedding_auto_figures(backend: str | None = None) -> dict:
    """``{"backend", "precision"}``: what ``auto`` picked here (``precision`` None with an
    ``error`` when the backend's runtime cannot be imported)."""
    import tempfile

    from replyassets.scorers.embedding_backends import EmbeddingBackendError
    from replyassets.scorers.embeddings import SentenceTransformerEmbedder

    if backend is None:
        from replyassets.settings import get_settings

        backend = get_settings().dedup.embedding_backend
    try:
        with tempfile.TemporaryDirectory(prefix="bench-embed-auto-") as tmp:  # nothing is exported here
            emb = SentenceTransformerEmbedder(backend=backend, precision="auto", export_dir=tmp)
        return {"backend": backend, "precision": emb.precision}
    except EmbeddingBackendError as exc:
        return {"backend": backend, "precision": None, "error": str(exc)[:300]}


def print_cpu(cpu: dict, auto: dict | None = None) -> None:
    line = f"CPU: {cpu_summary(cpu)}"
    if auto:
        line += f"; embedding precision auto -> {auto['precision']} ({auto['backend']})"
    print(line, flush=True)
