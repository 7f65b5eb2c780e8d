"""The judges of ``evaluation.judges`` for one evaluation: each built (the reward model from its
asset value), each checked against held-out likes, their agreement with each other, and the one
that decides with the reason. Glue for ``eval_report``; the logic is in ``core/reward_model.py``
(``select_judge``) and ``core/preference.py`` (``likes_agreement``, ``judges_agreement``)."""

import json
from collections.abc import Iterable
from typing import Any

import dagster as dg
import pandas as pd

from replyassets.defs.resources import EmbedderResource, JudgeResource

JUDGES_KEY = "judges"


def reward_model_of(artifact: pd.DataFrame):
    """The ``RewardModel`` in the ``reward_model`` asset's value, and its held-out validation."""
    from replyassets.core.reward_model import RewardModel, RewardModelError

    if len(artifact) != 1:
        raise dg.Failure(f"reward_model holds {len(artifact)} rows, not one model: materialize reward_model again")
    row = artifact.iloc[0]
    try:
        model = RewardModel.from_json(str(row["model_json"]))
    except RewardModelError as exc:
        raise dg.Failure(description=f"reward_model: {exc}") from exc
    if model.sha256 != str(row["model_sha256"]):
        raise dg.Failure("reward_model: the stored model does not match its hash; materialize reward_model again")
    return model, json.loads(str(row["validation_json"]))


def build_panel(judge: JudgeResource, reward_model: pd.DataFrame, embedder: EmbedderResource, ev: Any,
                min_agreement_low: float, test_tweet_ids: Iterable[str]) -> dict[str, Any]:
    """Every judge of ``ev.judges`` by name, the deciding one's name and why, and the reward
    model's identity (``training_set_hash``, ``sha256``) and held-out validation.

    Refuses (``dg.Failure``) when the reward model trained on any of ``test_tweet_ids``."""
    from replyassets.core.reward_model import (
        RewardModelError,
        TrainedTweetError,
        select_judge,
    )
    from replyassets.defs.reward_model import embedding_encoder
    from replyassets.judges.reward_model import RewardModelJudge

    model, validation = reward_model_of(reward_model)
    try:
        model.refuse_trained(tweet_ids=test_tweet_ids)
    except TrainedTweetError as exc:
        raise dg.Failure(description=str(exc)) from exc
    try:
        primary, reason = select_judge(judge.kinds, validation, min_agreement_low)
    except RewardModelError as exc:
        raise dg.Failure(description=str(exc)) from exc
    judges = {}
    for name in judge.kinds:  # the resource's list: what the deployment configured (settings by default)
        if name == "reward_model":
            judges[name] = RewardModelJudge(model, embedding_encoder(embedder).encode)
        else:
            judges[name] = judge.build(name)
    return {"judges": judges, "primary": primary, "reason": reason,
            "reward_model": {"training_set_hash": model.training_set_hash, "sha256": model.sha256,
                             "heldout": validation}}


def prepare(judges: dict[str, Any], texts: Iterable[str]) -> None:
    """Embed every text once for the judges that embed (the reward model)."""
    texts = list(dict.fromkeys(str(t) for t in texts if isinstance(t, str)))
    for j in judges.values():
        if hasattr(j, "prepare"):
            j.prepare(texts)


def judges_against_likes(judges: dict[str, Any], cache, preference_pairs: pd.DataFrame, ev) -> dict[str, Any]:
    """Each judge on the test split's real replies with a clear like gap (one pair per tweet, both
    orders): its agreement with likes with an interval; and the judges' agreement with each other
    on those same items."""
    from replyassets.core.judging import JudgingFailed, judge_pairs
    from replyassets.core.preference import (
        judges_agreement,
        likes_agreement,
        likes_agreement_items,
    )
    from replyassets.judges.base import JudgeError

    items = likes_agreement_items(preference_pairs, split="test")
    prepare(judges, [*items["tweet"], *items["base_reply"], *items["adapter_reply"]])
    by_judge, judged = {}, {}
    for name, j in judges.items():
        if items.empty:
            by_judge[name] = likes_agreement(pd.DataFrame({"outcome": [], "position_flip": []}))
            continue
        try:
            judged[name] = judge_pairs(j, items[["item_id", "tweet", "base_reply", "adapter_reply"]].to_dict("records"),
                                       cache=cache, concurrency=ev.judge_concurrency,
                                       max_error_fraction=ev.max_judge_error_fraction, scores=False)
        except (JudgingFailed, JudgeError) as exc:
            raise dg.Failure(description=f"judge {name} on real replies against their likes failed: {exc}") from exc
        by_judge[name] = likes_agreement(judged[name], resamples=ev.bootstrap_resamples, seed=ev.generation_seed)
    return {"by_judge": by_judge, "between": judges_agreement(judged)}


def panel_sections(panel: dict[str, Any], likes: dict[str, Any]) -> list[dict]:
    """The report's sections: every judge against held-out likes, and against each other."""
    cols = ["judge", "decides", "agreement with likes", "interval low", "interval high", "test tweets"]
    rows = [[name, name == panel["primary"], v.get("agreement"), v.get("ci_low"), v.get("ci_high"), v.get("pairs")]
            for name, v in likes["by_judge"].items()]
    rm = panel["reward_model"]
    h = rm["heldout"]
    sections = [{
        "title": "Judges against held-out likes", "columns": cols, "rows": rows,
        "note": (f"Decides: {panel['primary']} ({panel['reason']}). One test pair per tweet, both orders. "
                 f"Reward model {rm['sha256'][:12]}, training set {rm['training_set_hash'][:16]}: on all test pairs "
                 f"{h.get('agreement')} [{h.get('ci_low')}, {h.get('ci_high')}] over {h.get('tweets')} tweets "
                 f"/ {h.get('pairs')} pairs (tweet-clustered bootstrap)."),
    }]
    if likes["between"]:
        bcols = ["judge_a", "judge_b", "items", "same_outcome", "opposite"]
        sections.append({"title": "Judges against each other", "columns": bcols,
                         "rows": [[r[c] for c in bcols] for r in likes["between"]],
                         "note": "On the same held-out pairs: the share of items with the same outcome, and with opposite ones."})
    return sections


def panel_summary(panel: dict[str, Any], likes: dict[str, Any]) -> dict[str, Any]:
    """What every report (comparisons.json, report.json) records of its judges."""
    return {"decides": panel["primary"], "reason": panel["reason"],
            "names": {n: {"name": j.name, "model": j.model_id} for n, j in panel["judges"].items()},
            "likes": likes["by_judge"], "between": likes["between"],
            "reward_model_training_set_hash": panel["reward_model"]["training_set_hash"],
            "reward_model_sha256": panel["reward_model"]["sha256"],
            "reward_model_heldout": panel["reward_model"]["heldout"]}
