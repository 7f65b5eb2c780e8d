"""The IO manager of :class:`~replyassets.core.artifact.Artifact` values (models, adapters).

One JSON file per asset and partition under ``{data dir}/artifacts/``, written atomically. A
downstream asset that takes a partitioned artifact asset as an unpartitioned input receives
``{partition: Artifact}`` for every partition materialized so far; a partitioned one receives the
artifact of its partition (an error naming the asset when it was never materialized).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import dagster as dg

from replyassets.core.artifact import Artifact
from replyassets.core.files import atomic_write

ARTIFACT_IO_MANAGER = "artifact_io_manager"
UNPARTITIONED = "__unpartitioned__"


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Stores an asset's :class:`Artifact` as JSON; loads it (or every partition's) as an input."""

    base_dir: str

    def _file(self, key: dg.AssetKey, partition: str | None) -> Path:
        return Path(self.base_dir).joinpath(*key.path) / f"{_file_name(partition)}.json"

    def handle_output(self, context: dg.OutputContext, obj: Artifact) -> None:
        if not isinstance(obj, Artifact):
            raise dg.Failure(f"{context.asset_key.to_user_string()} must return an Artifact, got {type(obj).__name__}")
        partitions = context.asset_partition_keys if context.has_asset_partitions else [None]
        for partition in partitions:
            atomic_write(self._file(context.asset_key, partition), obj.to_json().encode())

    def load_input(self, context: dg.InputContext) -> Artifact | dict[str, Artifact]:
        key = context.asset_key
        if context.has_asset_partitions and not context.has_partition_key:
            # an unpartitioned consumer of a partitioned artifact: every partition there is
            out = {}
            for partition in context.asset_partition_keys:
                path = self._file(key, partition)
                if path.is_file():
                    out[partition] = Artifact.from_json(path.read_text(encoding="utf-8"))
            return out
        partition = context.asset_partition_key if context.has_asset_partitions else None
        path = self._file(key, partition)
        if not path.is_file():
            raise dg.Failure(f"{key.to_user_string()}{f' [{partition}]' if partition else ''} has not been "
                             "materialized yet; materialize it first")
        return Artifact.from_json(path.read_text(encoding="utf-8"))


_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


def _file_name(partition: str | None) -> str:
    """A partition key as a file name: itself when plain, else a hash of it (never a path)."""
    if partition is None:
        return UNPARTITIONED
    if _PLAIN.fullmatch(partition):
        return partition
    return "p-" + hashlib.sha256(partition.encode()).hexdigest()[:24]
