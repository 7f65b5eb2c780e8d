"""Shared constants and small helpers for the asset modules."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from replyassets.core import db
from replyassets.settings import Settings, get_settings

# Steps that work on the tables for long (read, compute, write) run in this pool (dagster.yaml
# limits it to 1), so they queue in Dagster rather than wait on the file lock of
# replyassets/core/db.py, which alone keeps concurrent writers correct (and which the ducklake
# backend does not need). Collection (raw_tweets) is not in it: it waits on its source and writes
# only briefly, each write serialized by that lock.
DUCKDB_POOL = "duckdb"
OWNERS = ["team:ml-data"]
QUERY_PARTITIONS = dg.DynamicPartitionsDefinition(name="query")
# One partition per named training recipe of config/experiments.yaml (replyassets/experiments.py).
EXPERIMENT_PARTITIONS = dg.DynamicPartitionsDefinition(name="experiment")


def settings() -> Settings:
    return get_settings()


def storage(s: Settings | None = None) -> db.Storage:
    """Where the tables live (``storage.backend``: the DuckDB file or the DuckLake)."""
    return db.storage_from_settings(s or settings())


def frame_hash(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    """Order-independent content hash of a frame (used as the Dagster data version).

    Floats enter as 10 significant digits, so the same inputs give the same version in any process.
    """
    cols = sorted(columns or list(df.columns))
    if df.empty:
        return hashlib.sha256(("|".join(cols)).encode()).hexdigest()
    sub = df[cols].copy()
    for c in cols:
        if pd.api.types.is_float_dtype(sub[c]):
            # Scores (language confidence, toxicity, similarity) differ in the last bits from one
            # process to another; canonical 10-significant-digit text keeps the version stable.
            sub[c] = sub[c].map(lambda v: "\x00" if pd.isna(v) else f"{v + 0.0:.10g}").astype("string")
        else:
            sub[c] = sub[c].astype("string").fillna("\x00")
    row_hashes = pd.util.hash_pandas_object(sub, index=False).sort_values().to_numpy()
    return hashlib.sha256(row_hashes.tobytes() + "|".join(cols).encode()).hexdigest()


# --------------------------------------------------------------------------- numbers

SIG_DIGITS = 3  # what a person reads in the UI; the exact figures stay in the files (report.json, result.json)
P_VALUE_SIG_DIGITS = 4  # p-values sit next to a threshold (alpha): one digit more


def _is_p_value(key: Any) -> bool:
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
        return round_sig(obj, max(sig, P_VALUE_SIG_DIGITS) if _is_p_value(key) else sig)
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


def tidy_metadata(metadata: Mapping[str, Any], sig: int = SIG_DIGITS) -> dict[str, Any]:
    """Round every float of a metadata dict (plain floats, float / JSON / table metadata values)
    for display; keeps the keys' order and every other value as is."""
    out: dict[str, Any] = {}
    for k, v in metadata.items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (float, np.floating)):
            out[k] = round_sig(v, max(sig, P_VALUE_SIG_DIGITS) if _is_p_value(k) else sig)
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


# --------------------------------------------------------------------------- markdown and tables


def md_escape(text: Any) -> str:
    """Text that survives markdown and its HTML: ``<``/``>``/``&`` as entities (``<run>`` is not
    swallowed as a tag), ``|`` escaped (table cells), newlines as spaces."""
    s = "" if text is None else str(text)
    s = "".join(ch if ch >= " " or ch in "\r\n\t" else "\ufffd" for ch in s)  # no control characters
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def table_md(rows: list[dict[str, Any]], columns: list[str] | None = None) -> dg.MetadataValue:
    """A small list of dicts as a markdown table for the UI."""
    if not rows:
        return dg.MetadataValue.md("_(none)_")
    cols = columns or list(rows[0].keys())
    out = ["| " + " | ".join(md_escape(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return dg.MetadataValue.md("\n".join(out))


def _cell(v: Any) -> str:
    s = "" if v is None else (fmt_num(v) if isinstance(v, (float, np.floating)) else str(v))
    return md_escape(s[:200])


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
    """A text histogram (renders in the UI without images). The bins split the data's own
    ``[min, max]`` into equal widths (the first edge is the minimum, the last the maximum), so
    a non-negative quantity never shows a negative bin; integer data with a small range gets one
    row per value."""
    v = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    title_md = f"**{md_escape(title)}**"
    if v.empty:
        return dg.MetadataValue.md(f"{title_md}: no values")
    counts, edges = histogram_bins(v.to_numpy(), bins)
    peak = max(int(counts.max()), 1)
    summary = (f"{title_md} (n={len(v)}, min={v.min():.3g}, max={v.max():.3g}, mean={v.mean():.3g}, "
               f"median={v.median():.3g})")
    lines = [summary, "", "```"]
    integer = bool(np.all(v.to_numpy() == np.round(v.to_numpy())))
    per_value = integer and len(counts) > 1 and len(counts) == edges[-1] - edges[0] + 1  # one bin per value
    for i, n in enumerate(counts):
        bar = "#" * round(30 * n / peak)
        if per_value:
            label = f"{edges[0] + i:>21g}"
        else:
            label = f"[{edges[i]:>9.4g}, {edges[i + 1]:<9.4g}" + ("]" if i == len(counts) - 1 else ")")
        lines.append(f"{label} {int(n):>6} {bar}")
    lines.append("```")
    return dg.MetadataValue.md("\n".join(lines))


def histogram_bins(values: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges over exactly ``[min(values), max(values)]`` in equal-width bins (the last
    bin includes the maximum); integer data with a range narrower than ``bins`` gets one bin per
    integer value; one bin when all values are equal."""
    v = np.asarray(values, dtype=float)
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return np.array([len(v)]), np.array([lo, hi])
    n = bins
    if bool(np.all(v == np.round(v))):
        n = min(bins, int(hi - lo) + 1)
    return np.histogram(v, bins=n, range=(lo, hi))


def json_md(obj: Any) -> dg.MetadataValue:
    """A JSON metadata value (floats rounded for display)."""
    return dg.MetadataValue.json(rounded(json.loads(json.dumps(obj, default=str))))


# --------------------------------------------------------------------------- column schemas


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


def column_schema(model) -> dg.TableSchema:
    """A Pandera DataFrameModel as a Dagster TableSchema (``dagster/column_schema`` metadata):
    each column's description followed by its rules with their values (``between 0 and 1``,
    ``>= 0``, ``one of: train, eval, test``); the model's frame-level checks as table
    constraints."""
    schema = model.to_schema()
    columns = []
    for name, col in schema.columns.items():
        desc = (getattr(col, "description", None) or "").strip()
        rules = describe_checks(col.checks or [])
        text = desc + (f" (rule: {'; '.join(rules)})" if rules else "")
        columns.append(
            dg.TableColumn(
                name=name,
                type=str(col.dtype),
                description=text.strip() or None,
                constraints=dg.TableColumnConstraints(nullable=bool(col.nullable), unique=bool(col.unique)),
            )
        )
    frame_rules = [str(c.description or c.name) for c in (schema.checks or [])]
    return dg.TableSchema(
        columns=columns, constraints=dg.TableConstraints(other=frame_rules) if frame_rules else None
    )


def derived_code_version(*modules: str, settings_paths: tuple[str, ...] = ()) -> str:
    """The asset's code version: a hash of the code it runs and the settings it reads.

    See ``replyassets/core/code_version.py``. Computed when the definitions load, with the
    active profile's settings, so a changed threshold or changed logic marks the asset stale.
    """
    from replyassets.core.code_version import code_version

    return code_version(modules, get_settings(), settings_paths)


def latest_materialization(instance: dg.DagsterInstance, key: str, partition: str | None = None):
    """The latest ``AssetMaterialization`` of ``key`` (and ``partition``), or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    return records[0].asset_materialization if records else None
