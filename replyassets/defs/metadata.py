"""Dagster metadata values for the UI: rounded metadata, typed tables, markdown tables,
histograms and JSON (the text itself comes from ``replyassets/core/markdown.py`` and
``replyassets/core/numbers.py``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from replyassets.core.markdown import histogram_text, markdown_table
from replyassets.core.numbers import (
    P_VALUE_SIG_DIGITS,
    SIG_DIGITS,
    fmt_num,
    is_p_value,
    round_sig,
    rounded,
)


# A content hash as a page shows it: its first 16 hex digits (the UI's metadata column is too
# narrow for 64 beside Dagster's own keys); the artifact and the tables keep the whole hash.
HASH_CHARS_SHOWN = 16


def shown_hashes(metadata: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """``metadata`` with each of ``keys`` that holds a longer hash cut to ``HASH_CHARS_SHOWN``."""
    for k in keys:
        v = metadata.get(k)
        v = v.value if isinstance(v, dg.TextMetadataValue) else v
        if isinstance(v, str) and len(v) > HASH_CHARS_SHOWN:
            metadata[k] = v[:HASH_CHARS_SHOWN]
    return metadata


def tidy_metadata(metadata: Mapping[str, Any], sig: int = SIG_DIGITS) -> dict[str, Any]:
    """Round every float of a metadata dict (plain floats, float / JSON / table metadata values)
    for display; keeps the keys' order and every other value as is."""
    out: dict[str, Any] = {}
    for k, v in metadata.items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (float, np.floating)):
            out[k] = round_sig(v, max(sig, P_VALUE_SIG_DIGITS) if is_p_value(k) else sig)
        elif isinstance(v, dg.FloatMetadataValue):
            out[k] = dg.MetadataValue.float(rounded(v.value, sig, k)) if v.value is not None else v
        elif isinstance(v, dg.JsonMetadataValue):
            out[k] = dg.MetadataValue.json(rounded(v.data, sig, k))
        elif isinstance(v, dg.TableMetadataValue):
            out[k] = dg.MetadataValue.table(
                records=[dg.TableRecord(rounded(dict(r.data), sig)) for r in v.records], schema=v.schema
            )
        elif isinstance(v, (dict, list)):
            out[k] = dg.MetadataValue.json(rounded(json.loads(json.dumps(v, default=str)), sig, k))
        else:
            out[k] = v
    return out


def ordered(metadata: Mapping[str, Any], first: Sequence[str]) -> dict[str, Any]:
    """``metadata`` with the keys in ``first`` leading, in that order (Dagster shows metadata in
    insertion order); every other key follows in its original order."""
    out = {k: metadata[k] for k in first if k in metadata}
    out.update((k, v) for k, v in metadata.items() if k not in out)
    return out


def table_md(rows: list[dict[str, Any]], columns: list[str] | None = None) -> dg.MetadataValue:
    """A small list of dicts as a markdown table for the UI."""
    return dg.MetadataValue.md(markdown_table(rows, columns))


_TABLE_TYPES = ((bool, "bool"), (int, "int"), (float, "float"))


def _column_type(values: list[Any]) -> str:
    present = [v.item() if isinstance(v, np.generic) else v for v in values if v is not None]
    if not present:
        return "string"
    for py, name in _TABLE_TYPES:
        if all(isinstance(v, py) and (py is bool or not isinstance(v, bool)) for v in present):
            return name
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float"
    return "string"


def records_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    sig: int = SIG_DIGITS,
) -> dg.MetadataValue:
    """Rows of dicts as a typed Dagster table (``MetadataValue.table``): a column whose values
    are all bool / int / float gets that type, anything else is shown as text; floats rounded."""
    cols = list(columns or (list(rows[0].keys()) if rows else []))
    descriptions = descriptions or {}
    types = {c: _column_type([r.get(c) for r in rows]) for c in cols}

    def cell(c: str, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, np.generic):
            v = v.item()
        if types[c] == "string":
            return fmt_num(v, sig) if not isinstance(v, str) else v
        if types[c] == "float":
            return v if isinstance(v, int) else rounded(float(v), sig, c)
        return v

    records = [dg.TableRecord({c: cell(c, r.get(c)) for c in cols}) for r in rows]
    schema = dg.TableSchema(columns=[dg.TableColumn(c, types[c], description=descriptions.get(c)) for c in cols])
    return dg.MetadataValue.table(records=records, schema=schema)


def mapping_table(
    mapping: Mapping[str, Any], key: str = "name", value: str = "value", sig: int = SIG_DIGITS
) -> dg.MetadataValue:
    """A flat dict as a two-column table: an int column when every value is an int (counts),
    else text (floats rounded, intervals as ``[lo, hi]``, nested values as compact JSON)."""
    def text(v: Any) -> str:
        if isinstance(v, str):
            return v
        if isinstance(v, Mapping) or (isinstance(v, (list, tuple)) and not all(
                isinstance(x, (int, float)) or x is None for x in v)):
            return json.dumps(rounded(v, sig), sort_keys=True, default=str)
        return fmt_num(v, sig)

    values = list(mapping.values())
    if values and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
        rows = [{key: str(k), value: int(v)} for k, v in mapping.items()]  # counts: an int column
    else:
        rows = [{key: str(k), value: text(v)} for k, v in mapping.items()]
    return records_table(rows, [key, value], sig=sig)


def funnel_table(funnel_rows: list[dict[str, Any]]) -> dg.MetadataValue:
    """Funnel rows ``{"stage": ..., "count": ...}`` as a typed Dagster table."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn("stage", "string"), dg.TableColumn("count", "int")]
    )
    records = [dg.TableRecord({"stage": str(r["stage"]), "count": int(r["count"])}) for r in funnel_rows]
    return dg.MetadataValue.table(records=records, schema=schema)


def histogram_md(values: pd.Series, bins: int = 10, title: str = "") -> dg.MetadataValue:
    """A text histogram (``replyassets.core.markdown.histogram_text``) as markdown metadata."""
    return dg.MetadataValue.md(histogram_text(values, bins, title))


def json_md(obj: Any) -> dg.MetadataValue:
    """A JSON metadata value (floats rounded for display)."""
    return dg.MetadataValue.json(rounded(json.loads(json.dumps(obj, default=str))))


def dotted(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping flattened to dotted keys (``{"lora": {"r": 16}}`` -> ``{"lora.r": 16}``)."""
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        if isinstance(v, Mapping) and v:
            out.update(dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def as_table(value: Any, key: str = "name", sig: int = SIG_DIGITS) -> Any:
    """A list or dict as something the asset page shows at a glance instead of a JSON blob: a
    list of dicts as a typed table (nested values dotted into columns), a dict as a two-column
    table (nested keys dotted), a list of plain values as comma-separated text; anything else
    (and a JSON metadata value's content) likewise; other values unchanged."""
    if isinstance(value, dg.JsonMetadataValue):
        value = value.data
    if isinstance(value, Mapping):
        return mapping_table(dotted(value), key=key, sig=sig) if value else "(none)"
    if isinstance(value, (list, tuple)):
        if not value:
            return "(none)"
        if all(isinstance(r, Mapping) for r in value):
            rows = [dotted(r) for r in value]
            cols = list(dict.fromkeys(c for r in rows for c in r))
            return records_table(rows, cols, sig=sig)
        return ", ".join(fmt_num(v, sig) if not isinstance(v, str) else v for v in value)
    return value


def without_json(metadata: Mapping[str, Any], sig: int = SIG_DIGITS) -> dict[str, Any]:
    """``metadata`` with every JSON value, dict and list turned into a table or text
    (``as_table``): what an asset page shows instead of "[Show JSON]"."""
    def blob(v: Any) -> bool:  # metadata values are tuples too: only JSON among them is a blob
        return isinstance(v, dg.JsonMetadataValue) or (
            isinstance(v, (Mapping, list, tuple)) and not isinstance(v, dg.MetadataValue))

    return {k: as_table(v, sig=sig) if blob(v) else v for k, v in metadata.items()}


def win_rates_md(board: pd.DataFrame) -> dg.MetadataValue:
    """Every experiment's win rate against the base model with its interval, as a plot small
    enough to show inline (the leaderboard's and the champion's pages)."""
    from replyassets.core.plots import win_rates_inline_md

    def num(v):
        return None if v is None or pd.isna(v) else float(v)

    return dg.MetadataValue.md(win_rates_inline_md([
        {"experiment": r.experiment, "win_rate": num(r.win_rate), "ci_low": num(r.win_rate_ci_low),
         "ci_high": num(r.win_rate_ci_high), "champion": bool(r.champion)}
        for r in board.itertuples()
    ]))
