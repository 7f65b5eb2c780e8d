"""Processes for the training-slot tests (a light module: spawned children import only this)."""

from __future__ import annotations

import threading
import time

from replyassets.core.slots import slot


def hold_and_meet(directory, limit, barrier, timeout_s, q) -> None:
    """Hold a slot and wait there for the other process: True when both met inside."""
    with slot(directory, limit, poll_s=0.05):
        try:
            barrier.wait(timeout=timeout_s)
            met = True
        except threading.BrokenBarrierError:
            met = False
    q.put(met)


def hold_and_tell(directory, q) -> None:
    with slot(directory, 1, poll_s=0.05):
        q.put("acquired")
        time.sleep(120)
