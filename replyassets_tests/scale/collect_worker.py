"""One production collection in its own process, as a raw_tweets step runs it: the Apify source
against the loopback server, checkpoints in the shared DuckDB file (through the storage lock).

    python -m replyassets_tests.scale.collect_worker DATABASE API_URL NAME TEXT

Prints one JSON line: the pairs' reply ids and how many tweets were fetched / resumed.
"""

from __future__ import annotations

import json
import sys

from replyassets.core.checkpoint import DuckDBCheckpointStore
from replyassets.core.collect import collect_partition
from replyassets.settings import CollectionSettings, QuerySpec
from replyassets.sources.apify import ApifySource
from replyassets_tests.scale.harness import APIFY_TOKEN


def main(database: str, api_url: str, name: str, text: str) -> None:
    source = ApifySource(APIFY_TOKEN, api_url=api_url, backoff_s=0.1)
    result = collect_partition(QuerySpec(name=name, text=text), source, CollectionSettings(),
                               checkpoint=DuckDBCheckpointStore(database))
    print(json.dumps({"reply_ids": sorted(result.pairs["reply_id"]), "fetched": result.fetched_tweets,
                      "resumed": result.resumed_tweets}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
