"""Order-independent content hashes of data frames (the assets' Dagster data versions)."""

from __future__ import annotations

import hashlib

import pandas as pd


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
