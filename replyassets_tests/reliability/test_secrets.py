"""Secrets: with APIFY_API_TOKEN, ANTHROPIC_API_KEY and HF_TOKEN set to sentinel values, a full
run leaves no sentinel in logs, the Dagster event log and compute logs, event metadata, DuckDB
tables, reports, or any file under the data dir.

The run: the whole graph on a small queries file with the local profile, one raw_tweets
partition from the production source (apify-client against the loopback Apify API, token from
``dg.EnvVar``), and eval_report once more with the Anthropic judge (loopback Anthropic API, key
from ``dg.EnvVar``). Both fakes check that they received the sentinel, so the secrets were in play.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import pytest
import yaml

from replyassets_tests.fakes import FakeApifyServer
from replyassets_tests.reliability import tally
from replyassets_tests.reliability.hostile import make_dataset
from replyassets_tests.reliability.pipeline_proc import SMALL_SETTINGS
from replyassets_tests.reliability.project import (
    COLLECT,
    failure_messages,
    materialize,
    use_queries,
)

SENTINELS = {
    "APIFY_API_TOKEN": f"apify_api_SENTINEL{uuid.uuid4().hex[:16]}",
    "ANTHROPIC_API_KEY": f"sk-ant-SENTINEL{uuid.uuid4().hex[:16]}",
    "HF_TOKEN": f"hf_SENTINEL{uuid.uuid4().hex[:16]}",
}


def _needles() -> list[bytes]:
    out = []
    for s in SENTINELS.values():
        out += [s.encode("utf-8"), s.encode("utf-16-le"), s[::-1].encode()]
        out.append(s[len(s) // 2:].encode())  # a truncated token still leaks its tail
    return out


def scan_files(root: Path) -> list[str]:
    """Every file under ``root`` read as bytes (SQLite, DuckDB, safetensors, logs, reports)."""
    hits = []
    needles = _needles()
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        for n in needles:
            if n in data:
                hits.append(f"{path}: {n[:12]!r}...")
    return hits


def scan_duckdb(database: Path) -> list[str]:
    """Every VARCHAR (and JSON) column of every table, with a parameterized LIKE."""
    hits = []
    con = duckdb.connect(str(database), read_only=True)
    try:
        cols = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'JSON') OR data_type LIKE 'VARCHAR%' OR data_type LIKE '%[]'"
        ).fetchall()
        assert cols, "no text columns found: the scan is broken"
        for schema, table, col in cols:
            for name, s in SENTINELS.items():
                n = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE CAST("{col}" AS VARCHAR) LIKE ?',
                    ["%" + s[len(s) // 2:] + "%"],
                ).fetchall()[0][0]
                if n:
                    hits.append(f"{schema}.{table}.{col}: {name} in {n} rows")
    finally:
        con.close()
    return hits


def scan_events(instance) -> list[str]:
    """Every event of every run (messages, metadata, run config and tags), serialized."""
    from dagster._serdes import serialize_value

    hits = []
    for run in instance.get_runs():
        texts = [serialize_value(run)]
        for rec in instance.all_logs(run.run_id):
            texts.append(serialize_value(rec))
        blob = "\n".join(texts)
        for name, s in SENTINELS.items():
            if s[len(s) // 2:] in blob:
                hits.append(f"run {run.run_id[:8]}: {name}")
    return hits


def test_scanners_find_a_planted_sentinel(tmp_path):
    """The scanners can fail: a planted token is found in a file and in a DuckDB table."""
    (tmp_path / "a.log").write_bytes(b"\x00\x01 token=" + SENTINELS["HF_TOKEN"].encode() + b"\xff")
    db = tmp_path / "x.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t (a INT, b VARCHAR)")
    con.execute("INSERT INTO t VALUES (1, ?)", ["Bearer " + SENTINELS["APIFY_API_TOKEN"]])
    con.close()
    assert len(scan_files(tmp_path)) >= 1
    assert scan_duckdb(db) == ["main.t.b: APIFY_API_TOKEN in 1 rows"]


@pytest.mark.slow
def test_full_run_leaks_no_secret(dagster_project, monkeypatch, capfd, tmp_path):
    import dagster as dg

    from replyassets.defs.resources import JudgeResource, TweetSourceResource
    from replyassets.settings import EvaluationSettings
    from replyassets_tests.fakes.anthropic_server import FakeAnthropicServer

    p = dagster_project
    for k, v in SENTINELS.items():
        monkeypatch.setenv(k, v)
    queries = {"ai-agents": make_dataset(8, 6, seed=1), "devops": make_dataset(8, 6, seed=2, prefix="9")}
    sample = use_queries(p, monkeypatch, queries)
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(yaml.safe_dump({**SMALL_SETTINGS, "paths": {"sample_dir": str(sample)}}))
    monkeypatch.setenv("REPLYASSETS_SETTINGS", str(settings_file))

    # 1. the whole graph, local profile
    resources = p.resources()
    for q in queries:
        res = materialize(p, resources, COLLECT + ["validated_pairs"], q)
        assert res.success, failure_messages(res)
    downstream = ["deduped_pairs", "curated_set", "preference_pairs", "preference_kto", "reward_model",
                  "base_model", "lora_adapter", "eval_report"]
    res = materialize(p, resources, downstream)
    assert res.success, failure_messages(res)

    # 2. one partition from the production source, token from the environment
    with FakeApifyServer(token=SENTINELS["APIFY_API_TOKEN"]) as api:
        tweets = [i for i in queries["ai-agents"] if not i["isReply"]]
        api.add_search("ai agents", tweets)
        for t in tweets:
            api.add_replies(t["id"], [i for i in queries["ai-agents"] if i["isReply"] and i["conversationId"] == t["id"]])
        prod = dict(resources)
        prod["tweet_source"] = TweetSourceResource(kind="apify", apify_token=dg.EnvVar("APIFY_API_TOKEN"),
                                                   api_url=api.url, backoff_s=0.01)
        res = materialize(p, prod, COLLECT, "ai-agents", run_config={"ops": {"raw_tweets": {"config": {"refresh": True}}}})
        assert res.success, failure_messages(res)
        assert api.requests and all(r.authorized for r in api.requests), "the sentinel token was not used"

    # 3. eval_report judged by "Claude" (loopback), key from the environment
    with FakeAnthropicServer() as claude:
        prod = dict(resources)
        judge_settings = EvaluationSettings(judge="anthropic", judge_max_retries=0, judge_timeout_s=30)
        prod["judge"] = JudgeResource.from_settings(judge_settings, api_key=dg.EnvVar("ANTHROPIC_API_KEY"),
                                                    base_url=claude.base_url)
        res = materialize(p, prod, ["eval_report"])
        assert res.success, failure_messages(res)
        sent = claude.message_requests
        key = SENTINELS["ANTHROPIC_API_KEY"]
        assert sent and all(r["headers"].get("x-api-key") == key or r["headers"].get("authorization") == f"Bearer {key}"
                            for r in sent), "the sentinel key was not used"
        del sent, key  # the fake keeps headers in memory only; nothing of it is written anywhere

    out, err = capfd.readouterr()
    leaks = []
    for name, s in SENTINELS.items():
        if s[len(s) // 2:] in out + err:
            leaks.append(f"captured output: {name}")
    leaks += scan_events(p.instance)
    leaks += scan_duckdb(p.database)
    p.instance.dispose()
    leaks += scan_files(p.home)           # event log, run storage, compute logs
    leaks += scan_files(p.data)           # DuckDB file, adapters, reports, models
    scanned = sum(1 for _ in p.home.rglob("*")) + sum(1 for _ in p.data.rglob("*"))
    tally.add("secrets_leaked", len(leaks))
    assert scanned > 20, "nothing was written: the scan proves nothing"
    assert not leaks, leaks
