"""Controls, end to end through the decision layer (issue 22, item 6).

Real ``eval_report`` rows, judged by the offline judge (``judge_pairs``, both orders) and stored
by eval_report's own ``generation_table``, for experiments whose generations are controls:

* ``r8`` (the PLANTED experiment): its replies are the held-out reference replies (a planted
  better model);
* ``default``: generic replies with a few topical words (an ordinary recipe);
* ``default-seed43``: the same generator with another seed (the A/A twin of the default);
* later, ``sft-dpo`` (the WORSE experiment): word salad (a worse challenger).

(The experiments are names of ``config/experiments.yaml``: the champion's model card reads the
promoted recipe.)

``champion`` (then ``leaderboard``) is materialized on them in a real Dagster instance: it
judges the experiments against each other from the stored generations. The planted model is
promoted, the twin is not, and the worse challenger does not displace the champion.
"""

from __future__ import annotations

import random

import pandas as pd
import pytest

from replyassets_tests.defs.test_champion import (
    CURATED,
    champion_round,
    history,
    store_evaluation,
)

PLANTED, TWIN, WORSE = "r8", "default-seed43", "sft-dpo"

N_TWEETS = 60
VOCAB = [f"{a}{b}" for a in ("data", "model", "agent", "code", "tool", "graph", "cache", "query", "token", "layer")
         for b in ("flow", "base", "set", "line", "stack", "node", "path", "map", "port", "kit")]
GENERIC = ["Great point, thanks for sharing this with everyone.", "I agree, this is really useful for my work.",
           "Interesting take, I will try this out this week.", "This matches what I have seen in practice too."]


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def controls() -> dict:
    rng = random.Random(7)
    tweets = {f"t{i:03d}": f"Question {i}: how do you handle {_words(rng, 4)} in production?" for i in range(N_TWEETS)}
    refs = {t: f"We moved {_words(rng, 6)} behind a queue and it halved the latency." for t in tweets}
    ids = sorted(tweets)
    base = {t: " ".join(["the"] * 3 + _words(rng, 2).split()) for t in ids}  # short, repetitive
    retrieval = {t: refs[ids[(k + 1) % len(ids)]] for k, t in enumerate(ids)}  # another tweet's best reply

    def generic(seed: int) -> dict[str, str]:
        r = random.Random(seed)
        return {t: f"{r.choice(GENERIC)} {_words(r, 3)} and {_words(r, 3)}." for t in ids}

    return {"tweets": tweets, "refs": refs, "base": base, "retrieval": retrieval,
            "texts": {PLANTED: dict(refs), "default": generic(42), TWIN: generic(43),
                      WORSE: {t: _words(random.Random(t), 2) for t in ids}}}


def judged_rows(name: str, c: dict, path: str, sha: str) -> pd.DataFrame:
    """eval_report's table for ``name``: its replies judged against the base model's and the
    retrieval baseline's by the offline judge, as eval_report stores them."""
    from replyassets.core.judging import judge_pairs
    from replyassets.defs.evaluate import generation_table
    from replyassets.defs.resources import JudgeResource
    from replyassets.settings import get_settings

    judge = JudgeResource.from_settings(get_settings().evaluation).build()
    judged_by = {}
    for role in ("base", "retrieval"):
        items = [{"item_id": f"{role}:{t}:0", "tweet": c["tweets"][t], "base_reply": c[role][t],
                  "adapter_reply": c["texts"][name][t], "reference": c["refs"][t]} for t in sorted(c["tweets"])]
        judged = judge_pairs(judge, items)
        parts = judged["item_id"].str.split(":", expand=True)
        judged_by[role] = judged.assign(comparison=role, tweet_id=parts[1], decoding_seed=parts[2].astype(int))
    likes = {"agreement": 0.7, "ci_low": 0.6, "ci_high": 0.8, "pairs": N_TWEETS}
    return generation_table(judged_by, likes, experiment=name, run_id="controls", base_path="tiny-base",
                            adapter_path=path, adapter_sha256=sha, curated_set_hash=CURATED, decoding="{}")


@pytest.mark.slow
def test_planted_model_is_promoted_the_twin_is_not_and_a_worse_challenger_does_not_displace_it(dagster_project):
    p = dagster_project
    c = controls()
    p.instance.add_dynamic_partitions("experiment", ["default", TWIN, PLANTED, WORSE])
    for name in ("default", TWIN, PLANTED):
        store_evaluation(p, name, lambda path, sha, name=name: judged_rows(name, c, path, sha))

    gate, md = champion_round(p)
    assert gate.passed, gate.description
    assert md["champion"] == PLANTED and md["decision"].startswith(f"promoted {PLANTED}: "), md["decision"]
    outcomes = {r.data["experiment"]: (r.data["outcome"], r.data["reason"]) for r in md["candidates"].records}
    assert outcomes[TWIN][0] == "refused", outcomes
    assert list(history(p)["experiment"]) == [PLANTED]

    # A later, worse challenger: judged against the champion from the stored generations, refused.
    store_evaluation(p, WORSE, lambda path, sha: judged_rows(WORSE, c, path, sha))
    gate, md = champion_round(p)
    assert not gate.passed
    assert md["champion"] == PLANTED and md["decision"].startswith(f"stays with {PLANTED}: "), md["decision"]
    outcomes = {r.data["experiment"]: (r.data["outcome"], r.data["reason"]) for r in md["candidates"].records}
    assert outcomes[WORSE][0] == "refused" and outcomes[TWIN][0] == "refused", outcomes
    assert f"does not beat the champion {PLANTED}" in outcomes[WORSE][1], outcomes
    assert list(history(p)["experiment"]) == [PLANTED]
