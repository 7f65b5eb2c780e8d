"""Concurrency slots across processes: at most N holders at once, released even on a crash.

Each slot is a lock file held with ``flock``: the operating system drops the lock when the
holding process ends, however it ends, so a killed training never leaves a slot taken.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def slot(directory: str | Path, limit: int, poll_s: float = 1.0,
         on_wait: Callable[[], None] | None = None) -> Iterator[int]:
    """Hold one of ``limit`` slots under ``directory`` for the ``with`` block; wait for one."""
    if limit < 1:
        raise ValueError(f"slot limit must be >= 1, got {limit}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        for i in range(limit):
            fh = open(directory / f"slot-{i}.lock", "a+")  # noqa: SIM115 - held for the block
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            try:
                yield i
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()
            return
        if on_wait is not None and not told:
            on_wait()
            told = True
        time.sleep(poll_s)


def run_in_slot(directory: str | Path, limit: int, fn: Callable[[], T], poll_s: float = 1.0,
                on_wait: Callable[[], None] | None = None) -> tuple[T, float, float]:
    """Run ``fn`` holding one of ``limit`` slots: ``(its result, started, ended)``, both epoch
    seconds taken inside the slot (after any wait for it), so they are when ``fn`` actually ran,
    not when it was queued."""
    with slot(directory, limit, poll_s=poll_s, on_wait=on_wait):
        started = time.time()
        result = fn()
        ended = time.time()
    return result, started, ended
