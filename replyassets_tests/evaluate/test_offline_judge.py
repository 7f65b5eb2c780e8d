from __future__ import annotations

from replyassets.core.judging import judge_pairs
from replyassets.core.stats import compute_stats, verdict
from replyassets.judges.base import Judge
from replyassets.judges.factory import build_judge
from replyassets.judges.offline import OfflineJudge, lexical_similarity
from replyassets.settings import EvaluationSettings

TWEET = "Remote work is overrated and teams ship slower without an office."
REF = "Hard disagree: our remote team ships faster because we write things down instead of meeting all day."


def test_offline_judge_is_deterministic_reference_based_and_labelled():
    j = OfflineJudge()
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
    j = build_judge(EvaluationSettings(judge="offline"))
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
