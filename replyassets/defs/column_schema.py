"""Pandera DataFrameModels as Dagster TableSchemas (``dagster/column_schema`` metadata)."""

from __future__ import annotations

import dagster as dg

from replyassets.core.check_text import describe_checks


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
