"""The README's asset table (``| asset | partitioned | what it holds | checks |``) lists exactly the
asset keys of ``replyassets.definitions.defs``: a new asset needs its row, a removed one loses it."""

from __future__ import annotations

import re

from replyassets.settings import PROJECT_ROOT

HEADER = "| asset | partitioned | what it holds | checks |"


def readme_assets(text: str) -> list[str]:
    lines = text.splitlines()
    assert HEADER in lines, f"README.md has no asset table (header {HEADER!r})"
    rows = []
    for line in lines[lines.index(HEADER) + 2:]:  # past the |---| line
        if not line.startswith("|"):
            break
        cell = line.split("|")[1].strip()
        m = re.fullmatch(r"`([a-z0-9_/]+)`", cell)
        assert m, f"README.md asset table: the first cell of {line!r} is not one `asset_key`"
        rows.append(m.group(1))
    return rows


def test_readme_asset_table_lists_every_asset_once():
    from replyassets.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    rows = readme_assets((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    assert sorted(set(rows)) == sorted(rows), f"README.md asset table: duplicate rows {sorted(r for r in rows if rows.count(r) > 1)}"
    assert not keys - set(rows), f"README.md asset table misses {sorted(keys - set(rows))}"
    assert not set(rows) - keys, f"README.md asset table has stale rows {sorted(set(rows) - keys)}"


def test_the_table_reader_sees_a_missing_row():
    text = f"intro\n\n{HEADER}\n|---|---|---|---|\n| `raw_tweets` | by query | x | |\n\nafter | not a row\n"
    assert readme_assets(text) == ["raw_tweets"]
