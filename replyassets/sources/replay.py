"""Replay source: tweets and replies from local export files (the ``local`` profile).

Each ``QuerySpec.replay`` entry names a file relative to ``sample_dir`` (a path that
escapes ``sample_dir`` is refused with ``SourceError``). Files may be:

* a JSON document: an array of items, a webhook wrapper ``{"tweets": [...]}``, or one item;
* JSONL: one item (or one array / wrapper) per line.

Any shape ``replyassets.core.normalize`` reads may appear, mixed freely; normalized pair
rows are split into their tweet and reply. ``search_tweets`` returns the items that are not
replies (plus items too broken to tell, so that the collection records their rejection);
``fetch_replies`` returns the replies whose conversation id or in-reply-to id is the
tweet's id, in file order; ``unclaimed_replies`` returns the replies no kept tweet claimed
(their parent is not in the files, is a reply, or was filtered out), which the collection
rejects as ``orphan_reply`` / ``reply_to_reply`` / ``parent_filtered``: every item of the
files ends up a pair or a rejected row.

Damaged files, decided as follows:

* a file that is missing, unreadable, not UTF-8 (JSON documents) or whose JSON is broken
  before any item could be read: ``SourceError`` naming the file;
* a JSON array cut short (a truncated download): the complete items before the cut are
  used and one marker, a :class:`~replyassets.core.normalize.DamagedInput` object with code
  ``truncated_json``, is added, which the normalizer turns into a rejection with that reason;
* a JSONL line that is not valid JSON (or not UTF-8): a ``DamagedInput`` with code
  ``bad_json_line`` and the file and line number; the other lines are used.

Markers are objects, never dicts: an export item that carries keys such as
``_replay_error`` is an ordinary item and is judged by what it holds.

Replay is free: ``estimated_cost_usd()`` is 0 and the spend caps of CollectionSettings
(``max_replies_per_tweet``...) are not applied.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from replyassets.core.normalize import DamagedInput, normalize_item, unwrap_items
from replyassets.settings import CollectionSettings, QuerySpec
from replyassets.sources.base import SourceError

MAX_FILE_BYTES = 512 * 1024 * 1024
_SNIPPET = 200


def _marker(code: str, file: str, line: int | None, snippet: str) -> DamagedInput:
    return DamagedInput(code=code, file=file, line=line, text=snippet[:_SNIPPET])


def read_items(path: Path, display: str | None = None) -> list[Any]:
    """All raw items of one export file (see the module doc for damaged files)."""
    display = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SourceError(f"replay file {display}: {size} bytes is over the {MAX_FILE_BYTES} byte limit")
        data = path.read_bytes()
    except SourceError:
        raise
    except OSError as exc:
        raise SourceError(f"replay file {display}: cannot read ({exc.strerror or exc})") from exc
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _read_jsonl(data, display)
    return _read_json(data, display)


def _read_jsonl(data: bytes, display: str) -> list[Any]:
    items: list[Any] = []
    for lineno, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            items.append(_marker("bad_json_line", display, lineno, raw.decode("utf-8", "replace")))
            continue
        items.extend(unwrap_items(doc))
    return items


def _read_json(data: bytes, display: str) -> list[Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"replay file {display}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if not text.strip():
        return []
    try:
        return list(unwrap_items(json.loads(text)))
    except RecursionError as exc:
        raise SourceError(f"replay file {display}: JSON nested too deeply") from exc
    except ValueError as exc:
        salvaged = _salvage_array(text)
        if salvaged is None:
            raise SourceError(f"replay file {display}: invalid JSON ({exc})") from exc
        items, pos = salvaged
        return items + [_marker("truncated_json", display, None, f"cut at char {pos}: " + text[pos:pos + 100])]


def _salvage_array(text: str) -> tuple[list[Any], int] | None:
    """The complete items of a JSON array cut short, and where reading stopped; None when
    the text is not an array or not even one item could be read."""
    dec = json.JSONDecoder()
    i = len(text) - len(text.lstrip())
    if i >= len(text) or text[i] != "[":
        return None
    i += 1
    items: list[Any] = []
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n or text[i] == "]":
            break
        try:
            obj, i = dec.raw_decode(text, i)
        except (ValueError, RecursionError):
            break
        items.extend(unwrap_items([obj]))
    if not items:
        return None
    return items, i


class ReplaySource:
    """A TweetSource over local export files named by each query's ``replay`` list."""

    name = "replay"

    def __init__(self, sample_dir: str | Path) -> None:
        self.sample_dir = Path(sample_dir).resolve()
        self._files: dict[Path, list[Any]] = {}
        self._index: dict[str, tuple[list[Any], dict[str, list[int]], list[Any]]] = {}
        self._calls = {"search_tweets": 0, "fetch_replies": 0, "files_read": 0, "items_read": 0}

    # ------------------------------------------------------------------ files
    def resolve(self, rel: str) -> Path:
        if not isinstance(rel, str) or not rel.strip():
            raise SourceError(f"replay path {rel!r}: empty")
        p = Path(rel)
        if p.is_absolute():
            raise SourceError(f"replay path {rel!r}: must be relative to {self.sample_dir}")
        full = (self.sample_dir / p).resolve()
        if full != self.sample_dir and self.sample_dir not in full.parents:
            raise SourceError(f"replay path {rel!r} escapes the sample folder {self.sample_dir}")
        return full

    def _load(self, rel: str) -> list[Any]:
        path = self.resolve(rel)
        if path not in self._files:
            self._files[path] = read_items(path, rel)
            self._calls["files_read"] += 1
            self._calls["items_read"] += len(self._files[path])
        return self._files[path]

    def _query_index(self, query: QuerySpec):
        idx = self._index.get(query.name)
        if idx is not None:
            return idx
        if not query.replay:
            raise SourceError(f"query {query.name!r}: no replay files configured (QuerySpec.replay is empty)")
        tweets: list[Any] = []
        replies: list[Any] = []
        by_parent: dict[str, list[int]] = {}
        for rel in query.replay:
            for item in self._load(rel):
                rec, _ = normalize_item(item, source=self.name)
                if rec is None or not rec["is_reply"]:
                    tweets.append(item)
                    continue
                pos = len(replies)
                replies.append(item)
                parents = {rec["in_reply_to_id"], rec["conversation_id"]} - {None}
                for parent in parents:
                    by_parent.setdefault(parent, []).append(pos)
        idx = (tweets, by_parent, replies)
        self._index[query.name] = idx
        return idx

    # ------------------------------------------------------------------ protocol
    def search_tweets(self, query: QuerySpec, settings: CollectionSettings) -> list[dict]:
        self._calls["search_tweets"] += 1
        tweets, _, _ = self._query_index(query)
        return list(tweets)

    def fetch_replies(self, query: QuerySpec, tweet: dict, settings: CollectionSettings) -> list[dict]:
        self._calls["fetch_replies"] += 1
        _, by_parent, replies = self._query_index(query)
        positions: set[int] = set()
        for key in {tweet.get("id"), tweet.get("conversation_id")} - {None}:
            positions.update(by_parent.get(key, ()))
        return [replies[i] for i in sorted(positions)]

    def unclaimed_replies(self, query: QuerySpec, covered: Collection[str]) -> list[Any]:
        """The replies of ``query``'s files that ``fetch_replies`` hands out for none of the
        ``covered`` tweet keys (the ids and conversation ids of the kept tweets), in file
        order: orphans, replies to replies, replies to tweets the filters rejected.
        ``collect_partition`` turns each into a rejection, so nothing in the files vanishes."""
        _, by_parent, replies = self._query_index(query)
        claimed: set[int] = set()
        for key in covered:
            claimed.update(by_parent.get(key, ()))
        return [item for i, item in enumerate(replies) if i not in claimed]

    def estimated_cost_usd(self) -> float:
        return 0.0

    def stats(self) -> dict[str, Any]:
        return dict(self._calls)
