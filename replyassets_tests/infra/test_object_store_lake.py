"""The DuckLake backend with its data path on an object store: a loopback S3 server (moto's
real HTTP server, spoken to by DuckDB's httpfs and by boto3), the PostgreSQL catalog of the
other lake tests, credentials from the standard AWS environment variables only.

The IO manager writes and replaces partitions there, the Parquet files land in the bucket,
reads go through the same tables, an older snapshot reads back by version, and the secret
appears nowhere the platform writes.
"""

from __future__ import annotations

import importlib
import secrets
import uuid

import pandas as pd
import pytest

from replyassets.core import db
from replyassets_tests.defs.test_storage_backends import _materialize
from replyassets_tests.postgres import free_port


@pytest.fixture
def s3_server(monkeypatch):
    boto3 = importlib.import_module("boto3")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    key, secret = "lake-writer", secrets.token_urlsafe(24)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id=key, aws_secret_access_key=secret)
    client.create_bucket(Bucket="team-lake")
    try:
        yield client, secret
    finally:
        db.reset()
        server.stop()


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_ducklake_on_an_object_store(postgres_server, s3_server, monkeypatch):
    client, secret = s3_server
    monkeypatch.setenv(db.CATALOG_ENV, postgres_server.create_database(f"lake_{uuid.uuid4().hex[:12]}"))
    storage = db.Storage("ducklake", data_path="s3://team-lake/replyassets")

    # enough rows that DuckLake writes Parquet files rather than inlining them in the catalog
    a1 = pd.DataFrame({"query": "a", "x": range(0, 3000)})
    b1 = pd.DataFrame({"query": "b", "x": range(5000, 7000)})
    a2 = pd.DataFrame({"query": "a", "x": range(10000, 12000)})
    md_a1, _ = _materialize(storage, {"a": a1}, "a")
    _materialize(storage, {"b": b1}, "b")
    md_a2, _ = _materialize(storage, {"a": a2}, "a")  # replaces a's rows in one transaction

    objects = [o["Key"] for o in client.list_objects_v2(Bucket="team-lake").get("Contents", [])]
    assert objects and all(k.startswith("replyassets/") for k in objects)
    assert any(k.endswith(".parquet") for k in objects)

    with db.connect(storage) as con:
        now = con.execute("SELECT query, count(*), min(x), max(x) FROM main.parted GROUP BY 1 ORDER BY 1").fetchall()
        first = md_a1["lake_snapshot_id"]
        old = con.execute(f"SELECT query, count(*), min(x), max(x) FROM main.parted AT (VERSION => {first}) "
                          "GROUP BY 1").fetchall()
    assert now == [("a", 2000, 10000, 11999), ("b", 2000, 5000, 6999)]
    assert old == [("a", 3000, 0, 2999)]
    assert secret not in repr(md_a1) + repr(md_a2) + repr(storage.describe())


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_a_missing_bucket_is_a_clear_error_without_the_secret(postgres_server, s3_server, monkeypatch):
    _, secret = s3_server
    monkeypatch.setenv(db.CATALOG_ENV, postgres_server.create_database(f"lake_{uuid.uuid4().hex[:12]}"))
    storage = db.Storage("ducklake", data_path="s3://no-such-bucket/replyassets")
    with pytest.raises(Exception) as info:
        _materialize(storage, {"a": pd.DataFrame({"query": "a", "x": range(3000)})}, "a")
    message = str(info.value)
    assert "no-such-bucket" in message
    assert secret not in message
