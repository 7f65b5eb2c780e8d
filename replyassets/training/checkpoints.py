"""Checkpoint folders of a training run and the adapter's content hash."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"

Log = Callable[[str], None]


def dir_sha256(folder: str | Path) -> str:
    """sha256 over (relative path, file bytes) of every file, sorted: same adapter -> same hash."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(x for x in folder.rglob("*") if x.is_file()):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def checkpoint_step(path: str | Path | None) -> int | None:
    """The step of a ``checkpoint-<step>`` folder, else None."""
    if not path:
        return None
    m = CHECKPOINT_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def complete_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Checkpoints that finished saving (``trainer_state.json`` is written last), by step."""
    out = []
    root = Path(output_dir)
    if not root.is_dir():
        return out
    for p in root.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m and p.is_dir() and (p / TRAINER_STATE).is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def remove_incomplete_checkpoints(output_dir: str | Path, log: Log) -> None:
    root = Path(output_dir)
    if not root.is_dir():
        return
    for p in root.iterdir():
        if CHECKPOINT_RE.match(p.name) and p.is_dir() and not (p / TRAINER_STATE).is_file():
            log(f"removing incomplete checkpoint {p.name} (killed while saving)")
            shutil.rmtree(p)


def resume_point(output_dir: str | Path, resume: bool, log: Log) -> tuple[int, Path] | None:
    """The checkpoint to resume from (the latest complete one when ``resume``), after removing
    the incomplete ones; None to start fresh."""
    remove_incomplete_checkpoints(output_dir, log)
    ckpts = complete_checkpoints(output_dir)
    if not (resume and ckpts):
        return None
    log(f"resuming from {ckpts[-1][1].name} (global step {ckpts[-1][0]})")
    return ckpts[-1]
