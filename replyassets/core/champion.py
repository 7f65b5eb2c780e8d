"""The champion's decision as an outcome, and whether the champion may ship.

A refusal is an outcome, not an error: ``decision_outcome`` turns the gate's decisions
(``core/leaderboard.gate_decisions``) into what the ``champion`` page and ``make demo`` show,
decision first: "promoted X" or "stays with Y" / "stays with the base model", then the reason for
every candidate. ``ship_problems`` is the one definition of "a proven adapter": what the blocking
``proven_champion`` check (defs/champion.py) and ``champion_export`` both ask before anything is
shipped under ``data/champions/``.

No Dagster import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

MARKDOWN_LIMIT = 1_000  # the champion page's decision block (characters)
NO_CANDIDATE = "no evaluated experiment other than the champion"


def _why(reason: str) -> str:
    """The gate's sentence after its outcome ("stays with default: r8 does not beat ..." -> "r8 does not beat ...")."""
    _, sep, tail = reason.partition(": ")
    return tail if sep else reason


def headline(promoted: str | None, champion: str | None) -> str:
    """"promoted X", else "stays with Y" / "stays with the base model"."""
    if promoted:
        return f"promoted {promoted}"
    return f"stays with {champion}" if champion else "stays with the base model"


def decision_outcome(decisions: Sequence[Mapping[str, Any]], champion_before: str | None) -> dict[str, Any]:
    """The decision of one ``champion`` run from the gate's decisions (gate order).

    Returns ``{"promoted": name or None, "champion": who serves after it (None: the base model),
    "refused": bool (a candidate was judged and none promoted), "headline", "decision" (one line,
    decision first), "markdown" (decision first, then every candidate's outcome and reason,
    under ``MARKDOWN_LIMIT`` characters), "candidates": [{"experiment", "outcome", "reason"}]}``
    (``reason``: the gate's sentence without its outcome, e.g. "r8 does not beat ...").
    """
    promoted = next((str(d["candidate"]) for d in decisions if d["promote"]), None)
    champion = promoted or champion_before
    head = headline(promoted, champion)
    if promoted:
        why = _why(next(d["reason"] for d in decisions if d["promote"]))
    elif decisions:
        why = "; ".join(_why(str(d["reason"])) for d in decisions)
    else:
        why = NO_CANDIDATE
    candidates = [{"experiment": str(d["candidate"]),
                   "outcome": "promoted" if d["candidate"] == promoted else
                   ("passes, ranked lower" if d["promote"] else "refused"),
                   "reason": _why(str(d["reason"]))} for d in decisions]
    return {"promoted": promoted, "champion": champion, "refused": bool(decisions) and not promoted,
            "headline": head, "decision": f"{head}: {why}", "candidates": candidates,
            "markdown": decision_markdown(head, why, candidates)}


def decision_markdown(head: str, why: str, candidates: Sequence[Mapping[str, str]],
                      limit: int = MARKDOWN_LIMIT) -> str:
    """Decision first, then one line per candidate; long reasons are cut so the block fits ``limit``."""
    lines = [f"**Champion {head}.**", ""]
    if not candidates:
        lines.append(f"_{why}_")
    room = max(60, (limit - 80 - len(lines[0])) // max(1, len(candidates)) - 12)
    for c in candidates:
        reason = c["reason"]
        reason = reason if len(reason) <= room else reason[: room - 1] + "…"
        lines.append(f"- `{c['experiment']}` {c['outcome']}: {reason}")
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ship_problems(champion: Mapping[str, Any] | None, sha256_of: Callable[[Path], str]) -> list[str]:
    """Why the champion may not ship (empty: it may). ``champion``: its history row
    (``experiment``, ``adapter_path``, ``adapter_sha256``, ``reason``), None when the base model serves.

    A proven adapter was promoted by the gate (its history row records the gate's "promote"
    reason), and the folder shipped is the adapter that was judged: it exists and its content
    hash (``sha256_of``, ``training/checkpoints.dir_sha256``) equals the one recorded at promotion.
    The base model serving is not a problem: there is nothing to ship.
    """
    if champion is None:
        return []
    name = champion.get("experiment")
    problems = []
    if not str(champion.get("reason") or "").startswith(f"promote {name}"):
        problems.append(f"{name} was not promoted by the gate (history reason: {champion.get('reason')!r})")
    folder = Path(str(champion.get("adapter_path") or ""))
    recorded = str(champion.get("adapter_sha256") or "")
    if not champion.get("adapter_path") or not folder.is_dir():
        problems.append(f"the adapter folder {folder} of {name} does not exist")
    elif not recorded:
        problems.append(f"no adapter hash was recorded when {name} was promoted")
    elif (found := sha256_of(folder)) != recorded:
        problems.append(f"the adapter {folder} changed since {name} was judged "
                        f"(sha256 {found[:12]}, promoted {recorded[:12]})")
    return problems
