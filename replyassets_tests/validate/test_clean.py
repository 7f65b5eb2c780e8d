from __future__ import annotations

import pytest

from replyassets.core.clean import (
    clean_text,
    collapse_word,
    has_email,
    has_phone,
    split_hashtag,
)
from replyassets.core.urls import has_url
from replyassets.settings import ValidationSettings


@pytest.mark.parametrize("raw, expected", [
    ("sooo", "so"), ("yesssss", "yes"), ("tooo", "too"), ("cooool", "cool"), ("goooood", "good"),
    ("reallllly", "really"), ("hmmmm", "hmm"), ("noooo", "no"), ("heyyy", "hey"), ("lolll", "lol"),
    ("pleaseee", "please"), ("whyyyy", "why"), ("omgggg", "omg"), ("SOOOO", "SO"), ("Sooo", "So"),
    ("zzzzzz", "zzz"),
])
def test_elongations_collapse_to_a_known_word(raw, expected):
    assert collapse_word(raw) == expected


@pytest.mark.parametrize("word", [
    "too", "cool", "www", "coffee", "bookkeeper", "committee", "aaa", "xxx", "zzz", "iii",
    "balloon", "success", "Mississippi", "address", "shhh"[:3], "see", "bee", "keep",
])
def test_real_words_are_untouched(word):
    assert collapse_word(word) == word
    assert clean_text(f"the {word} here") == f"the {word} here"


def test_elongation_in_sentences_and_punctuation_runs():
    assert clean_text("sooo true, me tooo!!!!!!") == "so true, me too!!!"
    assert clean_text("wait.......what??????") == "wait...what???"
    assert clean_text("aaa battery from www dot com is too cool") == "aaa battery from www dot com is too cool"
    assert clean_text("...") == "..." and clean_text("!!") == "!!"


@pytest.mark.parametrize("tag, words", [
    ("MachineLearning", "Machine Learning"), ("AI", "AI"), ("web3dev", "web3dev"),
    ("100DaysOfCode", "100 Days Of Code"), ("iPhone", "iPhone"), ("ChatGPT", "Chat GPT"),
    ("machine_learning", "machine learning"), ("OpenAI", "Open AI"), ("AIAgents", "AI Agents"),
    ("GPT4", "GPT4"), ("Web3Dev", "Web3 Dev"),
])
def test_hashtags_become_words(tag, words):
    assert split_hashtag(tag) == words
    assert clean_text(f"big news #{tag} today") == f"big news {words} today"


def test_hashtag_edge_cases_kept():
    assert clean_text("we are #1 again") == "we are #1 again"
    assert clean_text("C# and F# rock") == "C# and F# rock"
    assert clean_text("https://example.com/#/route stays") == "https://example.com/#/route stays"


def test_whitespace_zero_width_and_emoji():
    assert clean_text("a\u200bb  c\u00a0\u00a0d\t\te") == "ab c d e"
    assert clean_text("  line one  \r\n\r\n\r\n\r\n  line two  ") == "line one\n\nline two"
    assert clean_text("so\ufeff good\u00ad") == "so good"
    # a ZWJ inside an emoji sequence is kept; a stray one between letters is removed
    assert clean_text("dev 👨\u200d💻 life") == "dev 👨\u200d💻 life"
    assert clean_text("x\u200dy 🔥🔥 😂") == "xy 🔥🔥 😂"
    assert clean_text("Tom &amp; Jerry &gt; cats") == "Tom & Jerry > cats"
    assert clean_text(None) == "" and clean_text("   ") == ""


def test_handles_replaced_by_configurable_placeholder_and_reply_prefix_dropped():
    assert clean_text("@alice @bob_99 great point, @carol agrees") == "great point, @user agrees"
    custom = ValidationSettings(handle_placeholder="<user>")
    assert clean_text("ask @dan about it", custom) == "ask <user> about it"
    assert clean_text("@only") == ""


def test_contacts_are_masked_and_detected():
    text = "mail john.doe+x@example.co.uk or call +1 (555) 123-4567, or 555-123-4567, +442079460958"
    assert clean_text(text) == "mail [email] or call [phone], or [phone], [phone]"
    assert has_email("write to a.b@gmail.com") and not has_email("we use gmail at work")
    assert has_phone("call 020 7946 0958 now")
    for not_phone in ["in 2024-2025", "v1.2.3", "100x faster", "1,000,000 users", "12345", "3.14159",
                      "tweet 1839274659123 id"]:
        assert not has_phone(not_phone), not_phone


def test_url_detection():
    for url in ["https://t.co/abc", "see www.example.org", "github.com/foo/bar", "bit.ly/x1"]:
        assert has_url(url), url
    for not_url in ["Node.js is fine", "the README.md file", "e.g. this", "U.S. based", "gmail"]:
        assert not has_url(not_url), not_url
