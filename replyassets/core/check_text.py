"""Pandera checks as readable rules with their values (``>= 0``, ``between 0 and 1``,
``one of: a, b``), for column descriptions in the UI (no Dagster here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _fmt_bound(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def describe_check(check: Any) -> str:
    """A Pandera check as a readable rule with its values: ``greater_than_or_equal_to(0)`` ->
    ``>= 0``, ``in_range(0, 1)`` -> ``between 0 and 1``, ``isin([...])`` -> ``one of: a, b``."""
    name = str(getattr(check, "name", "") or "")
    st = dict(getattr(check, "statistics", None) or {})
    b = _fmt_bound
    if name == "greater_than_or_equal_to":
        return f">= {b(st.get('min_value'))}"
    if name == "greater_than":
        return f"> {b(st.get('min_value'))}"
    if name == "less_than_or_equal_to":
        return f"<= {b(st.get('max_value'))}"
    if name == "less_than":
        return f"< {b(st.get('max_value'))}"
    if name == "in_range":
        lo, hi = st.get("min_value"), st.get("max_value")
        inc_lo, inc_hi = st.get("include_min", True), st.get("include_max", True)
        if inc_lo and inc_hi:
            return f"between {b(lo)} and {b(hi)}"
        return f"{'[' if inc_lo else '('}{b(lo)}, {b(hi)}{']' if inc_hi else ')'}"
    if name == "equal_to":
        return f"= {b(st.get('value'))}"
    if name == "not_equal_to":
        return f"!= {b(st.get('value'))}"
    if name == "isin":
        return "one of: " + ", ".join(str(x) for x in st.get("allowed_values", []))
    if name == "notin":
        return "none of: " + ", ".join(str(x) for x in st.get("forbidden_values", []))
    if name == "str_length":
        if st.get("exact_value") is not None:
            return f"exactly {st['exact_value']} characters"
        lo, hi = st.get("min_value"), st.get("max_value")
        if lo is not None and hi is not None:
            return f"{lo} to {hi} characters"
        if lo is not None:
            return "non-empty" if lo == 1 else f"at least {lo} characters"
        if hi is not None:
            return f"at most {hi} characters"
    if name == "str_matches":
        return f"matches `{st.get('pattern')}`"
    if name == "str_contains":
        return f"contains `{st.get('pattern')}`"
    if name == "str_startswith":
        return f"starts with `{st.get('string')}`"
    if name == "str_endswith":
        return f"ends with `{st.get('string')}`"
    if name == "unique_values_eq":
        return "values exactly: " + ", ".join(str(x) for x in st.get("values", []))
    desc = getattr(check, "description", None)
    if desc:
        return str(desc)
    error = getattr(check, "error", None)
    return str(error or name or check)


def describe_checks(checks: Sequence[Any]) -> list[str]:
    """Every check described; a ``>= a`` and ``<= b`` pair becomes ``between a and b``."""
    checks = list(checks or [])
    by_name = {getattr(c, "name", None): c for c in checks}
    ge, le = by_name.get("greater_than_or_equal_to"), by_name.get("less_than_or_equal_to")
    out: list[str] = []
    for c in checks:
        if ge is not None and le is not None and c is ge:
            out.append(f"between {_fmt_bound(ge.statistics['min_value'])} and {_fmt_bound(le.statistics['max_value'])}")
        elif ge is not None and le is not None and c is le:
            continue
        else:
            out.append(describe_check(c))
    return out


# --------------------------------------------------------------------------- eval_report's checks

TINY_MODEL_FORGETTING = (
    " Expected with the tiny local base model (pretrained for seconds on the sample): any fine-tune "
    "moves its general-text perplexity a lot. With a real base model (production profile) this "
    "would mean the adapter lost general language: fewer steps, a lower learning rate or a smaller "
    "LoRA rank."
)


def forgetting_message(experiment: str, ratio: Any, threshold: Any, warn: bool, tiny_base: bool) -> str:
    """The ``forgetting`` check's message: the experiment, the ratio against its threshold, and,
    when it warns on the tiny local base model, that this is expected there and what it would
    mean in production."""
    from replyassets.core.numbers import fmt_num

    text = (f"{experiment}: general-text perplexity ratio adapter/base = {fmt_num(ratio)} "
            f"(warn above {fmt_num(threshold)}).")
    return text + (TINY_MODEL_FORGETTING if warn and tiny_base else "")
