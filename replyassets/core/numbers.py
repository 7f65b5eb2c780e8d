"""Numbers as a person reads them: significant-digit rounding and short table-cell text."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

SIG_DIGITS = 3  # what a person reads in the UI; the exact figures stay in the files (report.json, result.json)
P_VALUE_SIG_DIGITS = 4  # p-values sit next to a threshold (alpha): one digit more


def is_p_value(key: Any) -> bool:
    k = str(key).lower()
    return k in ("p", "p_value", "pvalue") or k.endswith(("_p", "_p_value"))


def round_sig(x: float, sig: int = SIG_DIGITS) -> float:
    """``x`` rounded to ``sig`` significant digits (0.6311475409836066 -> 0.631); NaN and
    infinities unchanged."""
    x = float(x)
    if not math.isfinite(x) or x == 0:
        return x
    return float(f"{x:.{sig}g}")


def rounded(obj: Any, sig: int = SIG_DIGITS, key: Any = None) -> Any:
    """``obj`` with every float (also inside dicts, lists and numpy scalars) rounded to ``sig``
    significant digits, p-values (keys ``*_p``, ``p_value``) to ``P_VALUE_SIG_DIGITS``."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, np.generic):
        obj = obj.item()
        if isinstance(obj, bool):
            return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return round_sig(obj, max(sig, P_VALUE_SIG_DIGITS) if is_p_value(key) else sig)
    if isinstance(obj, Mapping):
        return {k: rounded(v, sig, k) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, sig, key) for v in obj]
    return obj


def fmt_num(v: Any, sig: int = SIG_DIGITS) -> str:
    """A value as a short string for a table cell: floats to ``sig`` significant digits,
    intervals as ``[lo, hi]``, booleans yes/no, None as n/a."""
    if v is None:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return "n/a" if math.isnan(v) else f"{round_sig(v, sig):g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_num(x, sig) for x in v) + "]"
    return str(v)
