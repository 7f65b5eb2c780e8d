"""Production tweet source: Apify actors through the official ``apify-client`` (no Dagster here).

Flow per partition (one named query):

1. ``search_tweets``: one run of the search actor (default ``apidojo/tweet-scraper``) with the
   query text plus the tweet filters as X search operators (``min_faves:``, ``min_retweets:``,
   ``-filter:retweets``, ``-filter:quote``, ``lang:``) and the same filters as the actor's own
   input fields; ``maxItems`` capped so a run cannot overspend; the run's default dataset read
   with ``iterate_items`` (never more items than the cap).
2. ``fetch_replies``: per kept tweet, one run of the reply actor (default: the same actor)
   searching ``conversation_id:<id>``, capped at ``max_replies_per_tweet``.

Spend guard: every run gets ``maxItems`` both in its input and as the platform's ``maxItems``
run option (pay-per-result actors are never charged above it), and all runs of one query share
the partition budget ``CollectionSettings.max_items_per_partition`` (items read by this object).
Once the budget is spent, further reply fetches return ``[]`` and ``stats()`` says so.

Cost estimate: ``items read x price_per_1000_items / 1000``. The default price, $0.25 per 1,000
tweets, is the prototype's estimate (docs/design.md, "Baselines"). Actor prices
change: the apidojo tweet-scraper's store page listed $0.40 per 1,000 tweets in 2025, so set
``price_per_1000_items`` to your actor's current price.

Faults: HTTP 429 and 5xx, timeouts, connection resets, malformed response bodies and actor runs
that end FAILED / ABORTED / TIMED-OUT are retried up to ``max_retries`` times with exponential
backoff (``backoff_s * 2**k``; ``sleep`` is injectable), then a :class:`SourceError` names the
query and the last failure. The client's own retry loop is switched off so the policy lives in
one place. A transient failure while waiting for a run or reading its dataset resumes that run /
that offset; only a failed run starts a new run. Other 4xx (bad token, unknown actor) fail at
once.

The API token is only ever handed to ``ApifyClient``; it is never logged, and it is scrubbed from
every message this module produces (errors, warnings, ``repr``, ``stats``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from apify_client import ApifyClient
from apify_client.errors import ApifyApiError, ApifyClientError

from replyassets.sources.base import SourceError

try:  # the HTTP transport apify-client 3.4 uses by default
    import impit as _impit

    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (_impit.HTTPError,)
except ImportError:  # pragma: no cover
    _TRANSPORT_ERRORS = ()

if TYPE_CHECKING:  # pragma: no cover
    from replyassets.settings import CollectionSettings, QuerySpec

log = logging.getLogger(__name__)

DEFAULT_ACTOR_ID = "apidojo/tweet-scraper"
DEFAULT_API_URL = "https://api.apify.com"
# Seed log: "Apify: ~$0.25 per 1,000 tweets" (see module docstring).
DEFAULT_PRICE_PER_1000_ITEMS = 0.25
TOKEN_ENV = "APIFY_API_TOKEN"
FAILED_RUN_STATUSES = ("FAILED", "ABORTED", "TIMED-OUT")
_MAX_MESSAGE = 400


class _RetryableFailure(Exception):
    """A failure worth another attempt (rate limit, server error, timeout, failed run, ...)."""


class ApifySource:
    """A :class:`~replyassets.sources.base.TweetSource` backed by Apify actor runs.

    Create one object per partition run (the item budget and the cost are counted per object
    and per query name).
    """

    name = "apify"

    def __init__(
        self,
        token: str,
        actor_id: str = DEFAULT_ACTOR_ID,
        *,
        reply_actor_id: str | None = None,
        api_url: str | None = None,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        run_timeout_s: int = 600,
        request_timeout_s: float = 30.0,
        wait_poll_s: float = 60.0,
        price_per_1000_items: float = DEFAULT_PRICE_PER_1000_ITEMS,
        sort: str = "Top",
        memory_mbytes: int | None = None,
        page_size: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ValueError(f"an Apify API token is required (set {TOKEN_ENV})")
        for label, actor in (("actor_id", actor_id), ("reply_actor_id", reply_actor_id or actor_id)):
            if not isinstance(actor, str) or not actor.strip() or " " in actor:
                raise ValueError(f"{label} must be an actor id like 'apidojo/tweet-scraper', got {actor!r}")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if backoff_s < 0 or run_timeout_s <= 0 or request_timeout_s <= 0 or wait_poll_s < 0:
            raise ValueError("backoff_s, wait_poll_s must be >= 0; run_timeout_s, request_timeout_s > 0")
        if price_per_1000_items < 0:
            raise ValueError("price_per_1000_items must be >= 0")
        if not 1 <= page_size <= 250_000:
            raise ValueError("page_size must be between 1 and 250000")
        self._token = token
        self.actor_id = actor_id
        self.reply_actor_id = reply_actor_id or actor_id
        self.api_url = api_url or DEFAULT_API_URL
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.run_timeout_s = int(run_timeout_s)
        self.request_timeout_s = float(request_timeout_s)
        self.wait_poll_s = float(wait_poll_s)
        self.price_per_1000_items = float(price_per_1000_items)
        self.sort = sort
        self.memory_mbytes = memory_mbytes
        self.page_size = int(page_size)
        self._sleep = sleep
        request_timeout = timedelta(seconds=self.request_timeout_s)
        self._client = ApifyClient(
            token,
            api_url=self.api_url,
            max_retries=0,  # retries are ours (injectable backoff, run-level retries)
            timeout_short=request_timeout,
            timeout_medium=request_timeout,
            timeout_long=request_timeout,
            timeout_max=timedelta(seconds=self.request_timeout_s + self.wait_poll_s + 1),
        )
        self._items = 0
        self._items_by_query: dict[str, int] = {}
        self._runs = 0
        self._failed_runs = 0
        self._retries = 0
        self._requests_failed = 0
        self._budget_exhausted: set[str] = set()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_env(cls, env_var: str = TOKEN_ENV, **kwargs: Any) -> ApifySource:
        """Build from the token in ``$APIFY_API_TOKEN``; ``kwargs`` go to the constructor."""
        token = os.environ.get(env_var, "").strip()
        if not token:
            raise SourceError(
                f"{env_var} is not set: the production profile collects tweets through Apify and needs an "
                f"API token (Apify Console > Settings > API & Integrations), e.g. `export {env_var}=...`"
            )
        return cls(token, **kwargs)

    def __repr__(self) -> str:
        return (
            f"ApifySource(actor_id={self.actor_id!r}, reply_actor_id={self.reply_actor_id!r}, "
            f"api_url={self.api_url!r}, token=<redacted>)"
        )

    # ------------------------------------------------------------------ TweetSource

    def search_tweets(self, query: QuerySpec, settings: CollectionSettings) -> list[dict[str, Any]]:
        cap = min(int(settings.max_tweets_per_query), self._remaining(query, settings))
        if cap <= 0:
            self._budget_exhausted.add(query.name)
            log.warning("query %r: item budget of %d spent, no search run", query.name, settings.max_items_per_partition)
            return []
        term = build_search_term(query.text, settings)
        run_input = {
            "searchTerms": [term],
            "maxItems": cap,
            "sort": self.sort,
            "tweetLanguage": settings.tweet_lang,
            "minimumFavorites": int(settings.tweet_min_likes),
            "minimumRetweets": int(settings.tweet_min_retweets),
            "includeSearchTerms": False,
        }
        return self._collect(query, "tweet search", self.actor_id, run_input, cap)

    def fetch_replies(
        self, query: QuerySpec, tweet: dict[str, Any], settings: CollectionSettings
    ) -> list[dict[str, Any]]:
        conversation = tweet.get("conversation_id") or tweet.get("id")
        conversation = str(conversation).strip() if conversation is not None else ""
        if not conversation.isdigit():
            raise SourceError(
                f"query {query.name!r}: cannot fetch replies of a tweet without a numeric conversation id "
                f"(got {conversation[:40]!r})"
            )
        cap = min(int(settings.max_replies_per_tweet), self._remaining(query, settings))
        if cap <= 0:
            if query.name not in self._budget_exhausted:
                log.warning(
                    "query %r: item budget of %d spent; remaining tweets get no replies",
                    query.name,
                    settings.max_items_per_partition,
                )
            self._budget_exhausted.add(query.name)
            return []
        run_input = {
            "searchTerms": [f"conversation_id:{conversation}"],
            "maxItems": cap,
            "sort": "Latest",
            "includeSearchTerms": False,
        }
        return self._collect(query, f"replies of conversation {conversation}", self.reply_actor_id, run_input, cap)

    def estimated_cost_usd(self) -> float:
        return round(self._items * self.price_per_1000_items / 1000.0, 6)

    def stats(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "actor_id": self.actor_id,
            "reply_actor_id": self.reply_actor_id,
            "actor_runs": self._runs,
            "failed_runs": self._failed_runs,
            "retries": self._retries,
            "failed_requests": self._requests_failed,
            "items_fetched": self._items,
            "items_by_query": dict(self._items_by_query),
            "budget_exhausted_queries": sorted(self._budget_exhausted),
            "price_per_1000_items": self.price_per_1000_items,
            "estimated_cost_usd": self.estimated_cost_usd(),
        }

    def check_connection(self) -> str:
        """Cheap credentials check (``GET /v2/users/me``); returns the account's username."""
        try:
            user = self._client.user().get(timeout=timedelta(seconds=self.request_timeout_s))
        except Exception as exc:  # noqa: BLE001 - turned into a clear, token-free error
            raise SourceError(f"Apify connection check failed: {self._describe(exc)}") from None
        if user is None:
            raise SourceError("Apify connection check failed: the API did not return the token's user")
        return str(getattr(user, "username", "") or "")

    # ------------------------------------------------------------------ internals

    def _remaining(self, query: QuerySpec, settings: CollectionSettings) -> int:
        return int(settings.max_items_per_partition) - self._items_by_query.get(query.name, 0)

    def _collect(
        self, query: QuerySpec, what: str, actor_id: str, run_input: dict[str, Any], cap: int
    ) -> list[dict[str, Any]]:
        """Run ``actor_id`` with ``run_input`` and read up to ``cap`` items, with retries."""
        run_id: str | None = None  # a started run we are waiting for
        dataset_id: str | None = None  # the dataset of a SUCCEEDED run we are reading
        items: list[Any] = []
        last = "no attempt made"
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                self._retries += 1
                delay = self.backoff_s * (2 ** (attempt - 1))
                log.warning(
                    "query %r: Apify %s attempt %d/%d failed (%s); retrying in %.2fs",
                    query.name, what, attempt, attempts, last, delay,
                )
                self._sleep(delay)
            try:
                if dataset_id is None:
                    if run_id is None:
                        run_id = self._start(actor_id, run_input, cap)
                    status, dataset_id = self._wait(run_id)
                    if status != "SUCCEEDED":
                        self._failed_runs += 1
                        run_id, dataset_id = None, None  # the next attempt starts a new run
                        raise _RetryableFailure(f"actor run ended {status}")
                for item in self._iter_items(dataset_id, offset=len(items), limit=cap - len(items)):
                    items.append(item)
                    self._count_item(query.name)  # counted as read: charged even if a later step fails
                    if len(items) >= cap:
                        break
                break
            except _RetryableFailure as exc:
                last = self._scrub(str(exc))
            except ApifyApiError as exc:
                self._requests_failed += 1
                status_code = getattr(exc, "status_code", 0) or 0
                last = self._describe(exc)
                if status_code != 429 and status_code < 500:
                    raise SourceError(
                        f"query {query.name!r}: Apify {what} with actor {actor_id!r} was refused: {last}"
                        + (" (check APIFY_API_TOKEN)" if status_code in (401, 403) else "")
                    ) from None
            except (ApifyClientError, ValueError, KeyError, TimeoutError, OSError, *_TRANSPORT_ERRORS) as exc:
                # ValueError covers malformed JSON (InvalidResponseBodyError) and invalid Run objects.
                self._requests_failed += 1
                last = self._describe(exc)
        else:
            raise SourceError(
                f"query {query.name!r}: Apify {what} with actor {actor_id!r} failed after {attempts} "
                f"attempt(s); last failure: {last}"
            )
        log.info("query %r: Apify %s returned %d item(s)", query.name, what, len(items))
        return items

    def _count_item(self, query_name: str) -> None:
        self._items += 1
        self._items_by_query[query_name] = self._items_by_query.get(query_name, 0) + 1

    def _start(self, actor_id: str, run_input: dict[str, Any], cap: int) -> str:
        run = self._client.actor(actor_id).start(
            run_input=run_input,
            max_items=cap,
            memory_mbytes=self.memory_mbytes,
            run_timeout=timedelta(seconds=self.run_timeout_s),
            timeout=timedelta(seconds=self.request_timeout_s),
        )
        self._runs += 1
        return run.id

    def _wait(self, run_id: str) -> tuple[str, str]:
        """Wait for the run to end (at most ``run_timeout_s`` plus a grace period); status, dataset id."""
        deadline = time.monotonic() + self.run_timeout_s + 60
        run_client = self._client.run(run_id)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                try:  # best effort: do not leave a paid run going
                    run_client.abort(timeout=timedelta(seconds=self.request_timeout_s))
                except Exception as exc:  # noqa: BLE001
                    log.warning("could not abort Apify run %s: %s", run_id, self._describe(exc))
                return "TIMED-OUT", ""
            wait = min(self.wait_poll_s, remaining)
            run = run_client.wait_for_finish(
                wait_duration=timedelta(seconds=wait),
                timeout=timedelta(seconds=wait + self.request_timeout_s),
            )
            if run is None:
                raise _RetryableFailure(f"actor run {run_id} was not found")
            if run.status in ("SUCCEEDED", *FAILED_RUN_STATUSES):
                return str(run.status), str(run.default_dataset_id)
            if self.wait_poll_s == 0:
                self._sleep(0.05)

    def _iter_items(self, dataset_id: str, *, offset: int, limit: int) -> Iterator[Any]:
        if limit <= 0:
            return iter(())
        return self._client.dataset(dataset_id).iterate_items(
            offset=offset,
            limit=limit,
            chunk_size=min(limit, self.page_size),
            timeout=timedelta(seconds=self.request_timeout_s),
        )

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, ApifyApiError):
            status = getattr(exc, "status_code", "?")
            kind = getattr(exc, "type", None)
            text = f"HTTP {status}" + (f" {kind}" if kind else "") + f": {exc.message or ''}"
        else:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            text = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        text = text.replace(self._token, "<redacted>") if self._token else text
        return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def build_search_term(text: str, settings: CollectionSettings) -> str:
    """The X search string: the query text plus the tweet filters as search operators.

    Operators the user already wrote in the query text are not added twice. Upper engagement
    bounds have no search operator; the collection filters apply them.
    """
    lowered = text.lower()
    ops = []
    if "min_faves:" not in lowered:
        ops.append(f"min_faves:{int(settings.tweet_min_likes)}")
    if "min_retweets:" not in lowered:
        ops.append(f"min_retweets:{int(settings.tweet_min_retweets)}")
    if "filter:retweets" not in lowered and "filter:nativeretweets" not in lowered:
        ops.append("-filter:retweets")
    if "filter:quote" not in lowered:
        ops.append("-filter:quote")
    if "lang:" not in lowered and settings.tweet_lang:
        ops.append(f"lang:{settings.tweet_lang}")
    return " ".join([text.strip(), *ops])
