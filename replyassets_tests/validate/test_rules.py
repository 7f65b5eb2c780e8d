"""Every rule on crafted edge cases. ``apply_rules`` takes the model scores as given so each
rule is checked alone; ``validate_pairs`` is then run end to end with the real scorers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replyassets.core.columns import PAIR_COLUMNS, split_reasons
from replyassets.core.validate import (
    RULES,
    VALIDATION_COLUMNS,
    apply_rules,
    clean_pairs,
    distributions,
    validate_pairs,
    validation_funnel,
    validation_funnel_rows,
)
from replyassets.settings import ValidationSettings
from replyassets_tests.validate.conftest import GOOD_REPLY, make_pairs


def run_rules(replies, settings=None, lang=0.99, tox=0.01, **overrides) -> pd.DataFrame:
    settings = settings or ValidationSettings()
    frame = clean_pairs(make_pairs(replies, **overrides), settings)
    n = len(frame)
    return apply_rules(frame, settings, np.full(n, lang), np.full(n, tox))


def reasons_of(reply, **kw):
    return split_reasons(run_rules([reply], **kw)["reasons"].iloc[0])


def test_a_good_reply_passes_every_rule():
    out = run_rules([GOOD_REPLY])
    assert bool(out["valid"].iloc[0]) and out["reasons"].iloc[0] == ""
    assert all(bool(out[f"rule_{c}"].iloc[0]) for c in RULES)
    assert list(out.columns) == list(PAIR_COLUMNS) + list(VALIDATION_COLUMNS)


def test_length_bounds_on_the_cleaned_reply():
    base = "careful debugging of async promise chains matters since event loops hide ordering bugs "
    ok_280 = (base * 4)[:280]
    out = run_rules([ok_280, ok_280 + "x", "short reply but clear words here"[:29]])
    assert out["reply_chars"].tolist() == [280, 281, 29]
    assert out["rule_length"].tolist() == [True, False, False]
    # elongation/mention cleanup happens before measuring
    padded = "@alice @bob @carol @dave " + "ok sooooooooooooo"
    assert not run_rules([padded])["rule_length"].iloc[0]


@pytest.mark.parametrize("reply, ok", [
    (GOOD_REPLY + " https://t.co/abc", False),
    (GOOD_REPLY + " see github.com/foo/bar", False),
    (GOOD_REPLY + " www.example.org", False),
    (GOOD_REPLY + " with Node.js and the README.md file", True),
    (GOOD_REPLY + " mail me at dev@example.com", True),  # contact data, not a URL
])
def test_url_rule(reply, ok):
    assert bool(run_rules([reply])["rule_url"].iloc[0]) is ok


def test_url_rule_uses_has_urls_flag():
    assert not run_rules([GOOD_REPLY], has_urls=True)["rule_url"].iloc[0]


@pytest.mark.parametrize("likes, ok", [(3, True), (2, False), (0, False), (500, True)])
def test_engagement(likes, ok):
    assert bool(run_rules([GOOD_REPLY], reply_likes=likes)["rule_engagement"].iloc[0]) is ok


@pytest.mark.parametrize("lang, ok", [(0.81, True), (0.8, False), (0.2, False)])
def test_language_threshold_is_strictly_above(lang, ok):
    assert bool(run_rules([GOOD_REPLY], lang=lang)["rule_language"].iloc[0]) is ok


@pytest.mark.parametrize("tox, ok", [(0.29, True), (0.3, False), (0.9, False)])
def test_toxicity_threshold_is_strictly_below(tox, ok):
    assert bool(run_rules([GOOD_REPLY], tox=tox)["rule_toxicity"].iloc[0]) is ok


@pytest.mark.parametrize("reply", [
    "gm everyone, debugging async issues in node needs careful attention to loops",
    "GM ser! debugging async issues in node needs careful attention to event loops",
    "wagmi, debugging async issues in node needs careful attention to event loops",
    "ngmi if you ignore async issues in node and careful attention to event loops",
    "stay locked in, debugging async issues in node needs careful attention",
    "Stay   Locked   In: debugging async issues in node needs careful attention",
    "huge airdrop coming, debugging async issues in node needs careful attention",
    "giveaway time: debugging async issues in node needs careful attention today",
    "dm me for debugging async issues in node, careful attention to event loops",
    "follow back pls, debugging async issues in node needs careful attention",
    "this token will 100x, debugging async issues in node needs careful attention",
    "to the moon! debugging async issues in node needs careful attention to loops",
    "evening fren, debugging async issues in node needs careful attention to loops",
    "#gm debugging async issues in node needs careful attention to event loops",
])
def test_spam_keywords_trip(reply):
    assert "spam" in reasons_of(reply)


@pytest.mark.parametrize("reply", [
    "the algorithm behind this series is serious work, my gmail filters agree completely",
    "German engineers reviewed the servers and the gem dependencies before the migration",
    "we made the query planner 100x faster by rewriting the join order and adding indexes",
    "gmt timestamps and a serializer bug broke our anonymous analytics pipeline for weeks",
    "the AI revolution needs better tooling for debugging distributed systems in production",
    "following the docs back to front finally helped me understand the scheduler design",
    "the moonshot project finally shipped its first reliable deploy pipeline this quarter",
])
def test_spam_false_positives_never_trip(reply):
    assert "spam" not in reasons_of(reply)


def test_extra_spam_keywords_from_settings():
    s = ValidationSettings(extra_spam_keywords=("buy my course",))
    assert "spam" in reasons_of(GOOD_REPLY + " and buy my course", settings=s)
    assert "spam" not in reasons_of(GOOD_REPLY + " and buy my course")


def test_meaningful_words_counts_unique_non_stop_words():
    out = run_rules([
        "gm fren",
        "this is what it is and it is what it is, you know, it is what it is",
        "debugging debugging debugging async async async node node node node loop loop",
        "debugging async node loop promise chain attention careful",  # exactly 8
        "debugging with @bob async node loop promise chain attention",  # 7 + placeholder
    ])
    counts = out["meaningful_words"].tolist()
    assert counts[0] == 2 and counts[1] == 1 and counts[2] == 4 and counts[3] == 8 and counts[4] == 7
    assert out["rule_meaningful_words"].tolist() == [False, False, False, True, False]


def test_generic_ratio():
    out = run_rules([
        "Congrats! Love this, thanks for sharing. Great post, so true",
        "so true, and debugging async issues in node requires attention to event loop ordering",
        "congrats on the launch of the new database migration tooling and the faster query planner",
        "thank you for sharing, amazing, this is so true, well said, awesome work on the tooling",
    ])
    ratio = out["generic_ratio"].to_numpy()
    assert ratio[0] == 1.0 and not out["rule_generic"].iloc[0]
    assert 0 < ratio[1] < 0.2 and out["rule_generic"].iloc[1]
    assert ratio[2] < 0.1 and out["rule_generic"].iloc[2]
    assert ratio[3] >= 0.5 and not out["rule_generic"].iloc[3]


def test_personal_data_reject_or_mask():
    reply = "email me at jane.doe@example.com or call 555-123-4567 about " + GOOD_REPLY.lower()
    rejected = run_rules([reply])
    assert "personal_data" in split_reasons(rejected["reasons"].iloc[0])
    masked = run_rules([reply], settings=ValidationSettings(contact_policy="mask"))
    assert bool(masked["rule_personal_data"].iloc[0])
    text = masked["reply_clean"].iloc[0]
    assert "[email]" in text and "[phone]" in text and "jane" not in text and "4567" not in text
    assert "personal_data" not in reasons_of(GOOD_REPLY + " in 2024-2025 with v1.2.3")


def test_handles_use_the_placeholder():
    out = run_rules(["@bob totally, " + GOOD_REPLY + " as @carol said"],
                    settings=ValidationSettings(handle_placeholder="@someone"))
    assert out["reply_clean"].iloc[0].startswith("totally, Debugging")
    assert out["reply_clean"].iloc[0].endswith("as @someone said")


def test_missing_fields_are_a_recorded_rejection_not_a_crash():
    pairs = make_pairs([GOOD_REPLY, None, GOOD_REPLY])
    pairs.loc[2, "reply_likes"] = None
    pairs = pairs.drop(columns=["tweet_author", "has_urls", "reply_created_at"])
    s = ValidationSettings()
    frame = clean_pairs(pairs, s)
    out = apply_rules(frame, s, np.full(3, 0.99), np.full(3, 0.0))
    assert out["valid"].tolist() == [True, False, False]
    assert split_reasons(out["reasons"].iloc[1])[:2] == ["missing_fields", "length"]
    assert split_reasons(out["reasons"].iloc[2]) == ["missing_fields", "engagement"]
    assert out["tweet_author"].isna().all()


def test_reasons_list_every_failed_rule_in_order():
    out = run_rules(["gm ser https://t.co/x"], lang=0.1, tox=0.9, reply_likes=0)
    assert split_reasons(out["reasons"].iloc[0]) == [
        "length", "url", "engagement", "language", "toxicity", "spam", "meaningful_words",
    ]


@pytest.mark.slow
def test_validate_pairs_end_to_end_with_real_scorers(settings, language_scorer, profanity_scorer):
    replies = [
        GOOD_REPLY,
        "ngl the way you explained closures finally made it click for me, been struggling with javascript for weeks 🔥",
        "la verdad no entiendo por qué todos usan microservicios para proyectos tan pequeños",
        "you are a fucking idiot and your stupid code is garbage, shut the fuck up already moron",
        "gm ser, wagmi, stay locked in frens, the airdrop is coming soon for all holders",
        GOOD_REPLY,
    ]
    out = validate_pairs(make_pairs(replies).set_index(pd.Index([10, 11, 12, 13, 14, 15])),
                         settings, language_scorer, profanity_scorer)
    assert len(out) == 6 and list(out.index) == list(range(6))
    assert out["valid"].tolist() == [True, True, False, False, False, True]
    assert "language" in split_reasons(out["reasons"].iloc[2])
    assert "toxicity" in split_reasons(out["reasons"].iloc[3])
    assert "spam" in split_reasons(out["reasons"].iloc[4])
    assert out["lang_confidence"].iloc[0] == out["lang_confidence"].iloc[5]
    assert out["lang_confidence"].between(0, 1).all() and out["toxicity"].between(0, 1).all()
    assert out["tweet_clean"].iloc[0] == "What is the hardest bug you ever fixed? Debugging"

    funnel = validation_funnel(out)
    assert funnel["rows_in"] == 6 and funnel["valid"] == 3 and funnel["rejected"] == 3
    assert funnel["rejected_by_rule"]["spam"] == 1 and funnel["rejected_by_rule"]["toxicity"] >= 1
    assert funnel["by_query"]["ai-agents"]["rows_in"] == 6
    rows, by_rule = validation_funnel_rows(out)
    assert by_rule == {k: v for k, v in funnel["rejected_by_rule"].items() if v}  # the same counts
    assert list(by_rule.values()) == sorted(by_rule.values(), reverse=True)
    assert rows[:2] == [{"stage": "pairs in", "count": 6}, {"stage": "valid", "count": 3}]
    assert rows[2:] == [{"stage": f"rejected: {k}", "count": v} for k, v in by_rule.items()]
    dist = distributions(out)
    assert sum(dist["length"]["counts"]) == 6 and len(dist["length"]["counts"]) == len(dist["length"]["edges"]) - 1
    assert sum(dist["lang_confidence"]["counts"]) == 6 and sum(dist["valid_toxicity"]["counts"]) == 3


def test_empty_input(settings, language_scorer, profanity_scorer):
    out = validate_pairs(pd.DataFrame(), settings, language_scorer, profanity_scorer)
    assert len(out) == 0 and list(out.columns) == list(PAIR_COLUMNS) + list(VALIDATION_COLUMNS)
    assert validation_funnel(out)["rows_in"] == 0
    assert validation_funnel_rows(out) == ([{"stage": "pairs in", "count": 0}, {"stage": "valid", "count": 0}], {})
    assert distributions(out)["length"]["n"] == 0


def test_validate_pairs_with_detoxify_backend(tmp_path, settings, language_scorer):
    from replyassets.scorers.toxicity import DetoxifyScorer
    from replyassets_tests.validate.conftest import build_tiny_detoxify_checkpoint

    ckpt, hf = build_tiny_detoxify_checkpoint(tmp_path, toxicity_bias=-3.0)  # toxicity ~0.047
    scorer = DetoxifyScorer(checkpoint=str(ckpt), huggingface_config_path=str(hf))
    out = validate_pairs(make_pairs([GOOD_REPLY]), settings, language_scorer, scorer)
    assert abs(out["toxicity"].iloc[0] - 0.0474) < 1e-3 and bool(out["valid"].iloc[0])
