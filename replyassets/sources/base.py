"""The tweet-source interface every collector backend implements (no Dagster here).

A source returns *raw* items in any export shape that ``replyassets.core.normalize``
understands (apidojo tweet-scraper, legacy apify/twitter-scraper, twitterapi.io items,
twscrape ``Tweet.json()``, the project's normalized pair rows). Normalizing and filtering
is the job of ``replyassets.core.collect.collect_partition``, not of the source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from replyassets.settings import CollectionSettings, QuerySpec


class SourceError(RuntimeError):
    """A source could not deliver items (unreadable file, exhausted retries, failed run).

    The message names the query and/or file and never contains a secret.
    """


@runtime_checkable
class TweetSource(Protocol):
    """Where tweets and their replies come from (replay files, Apify actors, ...)."""

    name: str

    def search_tweets(self, query: QuerySpec, settings: CollectionSettings) -> list[dict[str, Any]]:
        """Raw tweet items for ``query`` (any supported shape). Replies among them are not
        used as source tweets: ``collect_partition`` rejects them with reason ``is_reply``.
        Raise ``SourceError`` (naming the query) when the search itself fails."""
        ...

    def fetch_replies(
        self, query: QuerySpec, tweet: dict[str, Any], settings: CollectionSettings
    ) -> list[dict[str, Any]]:
        """Raw reply items of ``tweet``'s conversation. ``tweet`` is the normalized tweet
        record from ``normalize_item`` (keys ``id``, ``conversation_id``, ``author``, ...)."""
        ...

    def estimated_cost_usd(self) -> float:
        """Estimated money spent so far by this source object (0.0 for free sources)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Optional counters (calls, items, retries, ...) for asset metadata."""
        ...

    # Optional, for sources that hold a whole export (replay):
    #   unclaimed_replies(query, covered: Collection[str]) -> list of raw reply items that
    #   fetch_replies hands out for none of the ``covered`` tweet keys (ids and conversation
    #   ids of the kept tweets). collect_partition rejects each (orphan_reply,
    #   reply_to_reply, parent_filtered) so that no item of the export vanishes.
