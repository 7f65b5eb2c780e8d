from __future__ import annotations

import pytest

from replyassets.core.judging import judge_pairs
from replyassets.core.stats import compute_stats, verdict
from replyassets.judges.base import Judge
from replyassets.judges.factory import build_judge
from replyassets.judges.offline import OfflineJudge, lexical_similarity
from replyassets.settings import EvaluationSettings, ValidationSettings

TWEET = "Remote work is overrated and teams ship slower without an office."
REF = "Hard disagree: our remote team ships faster because we write things down instead of meeting all day."


def test_offline_judge_is_deterministic_reference_based_and_labelled():
    j = build_judge(EvaluationSettings(judge="offline"), ValidationSettings())
    assert isinstance(j, OfflineJudge)
    assert isinstance(j, Judge) and j.offline and "offline" in j.name and "offline" in j.model_id
    close = "Disagree: our remote team ships faster since we write things down instead of meetings."
    unrelated = "I had pasta for lunch today and it was pretty good honestly."
    v = j.compare(TWEET, close, unrelated, reference=REF)
    assert v.winner == "A" and v.valid
    assert j.compare(TWEET, unrelated, close, reference=REF).winner == "B"  # no position bias
    assert j.compare(TWEET, close, close, reference=REF).winner == "tie"
    assert j.compare(TWEET, close, unrelated, reference=REF) == v
    s_close, s_bad = j.score(TWEET, close, REF).value, j.score(TWEET, unrelated, REF).value
    assert 1 <= s_bad < s_close <= 10
    assert j.score(TWEET, "", REF).value == 1.0
    # length penalty: the same words repeated to 900 chars score lower than once
    assert j.score(TWEET, (close + " ") * 10, REF).value < s_close
    assert lexical_similarity("abc def", "abc def") == 1.0 and lexical_similarity("", "x") == 0.0


def test_offline_end_to_end_with_stats():
    j = build_judge(EvaluationSettings(judge="offline"), ValidationSettings())
    items = [
        {"item_id": str(i), "tweet": TWEET, "reference": REF,
         "base_reply": "lol ok", "adapter_reply": "Hard disagree, our remote team ships faster: we write things down."}
        for i in range(6)
    ]
    df = judge_pairs(j, items, cache=None, concurrency=2)
    assert (df["outcome"] == "win").all() and not df["position_flip"].any()
    assert (df["api_calls"] == 0).all() and df["judge_offline"].all()
    es = EvaluationSettings(judge="offline", bootstrap_resamples=500)
    st = compute_stats(df, es)
    assert st["win_rate"] == 1.0 and verdict(st, es)["criteria"]["interval_excludes_zero"]["passed"]


def test_offline_judge_takes_its_limits_from_the_settings():
    """The length penalty uses validation.min_chars / max_chars and the tie margin
    evaluation.offline_tie_margin (the judge has no defaults of its own)."""
    reply = "Hard disagree: our remote team ships faster because we write everything down. " * 2
    assert 100 < len(reply.strip()) < 280
    default = build_judge(EvaluationSettings(judge="offline"), ValidationSettings())
    strict = build_judge(EvaluationSettings(judge="offline", offline_tie_margin=0.5), ValidationSettings(max_chars=100))
    assert (default.min_chars, default.max_chars) == (ValidationSettings().min_chars, ValidationSettings().max_chars)
    assert strict.max_chars == 100 and strict.tie_margin == 0.5
    assert default.quality(TWEET, reply, REF)[1]["len"] == 1.0
    assert strict.quality(TWEET, reply, REF)[1]["len"] == 100 / len(reply.strip())
    assert strict.prompt_version != default.prompt_version  # cached verdicts are not shared
    with pytest.raises(ValueError, match="validation.min_chars <= validation.max_chars"):
        OfflineJudge(tie_margin=0.02, min_chars=0, max_chars=280)
    with pytest.raises(ValueError, match=r"validation.min_chars \(300\) is above validation.max_chars \(280\)"):
        ValidationSettings(min_chars=300, max_chars=280)
