"""A file or folder an asset produced, as the value its consumers receive: its path and content
hash, plus a few JSON-safe attributes (what it was built from, the figures a consumer needs).

Assets that produce models (``base_model``, ``lora_adapter``) return an :class:`Artifact`; an IO
manager (``defs/artifacts.py``) stores it as JSON and hands it to downstream assets as an input,
so the lineage shows every model a decision used and staleness sees it. No Dagster import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Artifact:
    path: str
    """Where the files are (a folder, a file or, for a hub model, its id)."""
    sha256: str
    """The content hash of what ``path`` holds (what data versions and checks compare)."""
    kind: str = ""
    """What it is: ``local-tiny``, ``hub``, ``lora_adapter``..."""
    attrs: Mapping[str, Any] = field(default_factory=dict)
    """JSON-safe facts about it (scalars, and lists / mappings of them)."""

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"an artifact needs a path, got {self.path!r}")
        if not isinstance(self.sha256, str):
            raise ValueError(f"an artifact's sha256 must be a string, got {type(self.sha256).__name__}")

    def to_json(self) -> str:
        return json.dumps({"path": self.path, "sha256": self.sha256, "kind": self.kind, "attrs": dict(self.attrs)},
                          sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Artifact:
        doc = json.loads(text)
        return cls(path=str(doc["path"]), sha256=str(doc.get("sha256") or ""), kind=str(doc.get("kind") or ""),
                   attrs=dict(doc.get("attrs") or {}))


def json_safe(values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that survive a JSON round trip unchanged (scalars, and lists or
    mappings of scalars); the rest (plots, tables, objects) are left out."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, float) and value != value:
            continue  # NaN: not JSON
        if isinstance(value, _SCALARS):
            out[str(key)] = value
        elif isinstance(value, Mapping) and all(isinstance(v, _SCALARS) for v in value.values()):
            out[str(key)] = {str(k): v for k, v in value.items()}
        elif isinstance(value, (list, tuple)) and all(isinstance(v, _SCALARS) for v in value) and len(value) <= 64:
            out[str(key)] = list(value)
    return out
