"""The champion moves only through its gate, and survives a failed challenger; a refusal is an
outcome (a green run that materializes the decision), and only a proven adapter ships (real
Dagster instance and DuckDB file). The evaluations are hand-made: ``eval_report`` rows (judged
items against the base model and the retrieval baseline, each with the adapter's generated text)
written to its table, and each ``lora_adapter`` a real folder with its content hash, stored by
the artifact IO manager. ``champion`` judges experiments against each other itself, from the
stored texts, with the offline judge: a challenger whose texts are the opponent's own ties with
it (an A/A comparison)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from replyassets_tests.defs.conftest import all_assets_and_checks


def judged(n_tweets: int, win_share: float, adapter: float, base: float, seed: int = 0) -> pd.DataFrame:
    """Judged rows, one per tweet: the adapter wins ``win_share`` of them, scores around the means."""
    rng = np.random.default_rng(seed)
    wins = int(round(n_tweets * win_share))
    outcomes = ["win"] * wins + ["loss"] * (n_tweets - wins)
    return pd.DataFrame({
        "item_id": [f"t{i}" for i in range(n_tweets)], "tweet_id": [f"t{i}" for i in range(n_tweets)],
        "outcome": outcomes, "position_flip": False,
        "adapter_score": np.clip(adapter + rng.normal(0, 0.8, n_tweets), 1, 10),
        "base_score": np.clip(base + rng.normal(0, 0.8, n_tweets), 1, 10),
        "adapter_len": 80, "base_len": 80,
    })


CURATED = "c" * 64


def figures(name: str, vs_base: pd.DataFrame, vs_retrieval: pd.DataFrame, texts: str | None = None,
            curated: str = CURATED) -> dict:
    """One experiment's evaluation: its judged items against the base model and the retrieval
    baseline, and its generated texts (``texts``: a name; two experiments with the same name
    wrote the same replies)."""
    return {"experiment": name, "base": vs_base, "retrieval": vs_retrieval, "texts": texts or name,
            "curated_set_hash": curated}


def adapter_folder(project, name: str) -> tuple[str, str]:
    """A (tiny) adapter folder for ``name`` and its content hash, as training records it."""
    from replyassets.training.checkpoints import dir_sha256

    folder = project.data / "adapters" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "name": name}))
    return str(folder), dir_sha256(folder)


def eval_rows(doc: dict, adapter_path: str, adapter_sha: str) -> pd.DataFrame:
    frames = []
    for role in ("base", "retrieval"):
        df = doc[role].copy()
        n = len(df)
        frames.append(df.assign(
            item_id=[f"{role}:{t}:0" for t in df["tweet_id"]], comparison=role, decoding_seed=0,
            tweet=[f"Tweet {t} about agents and tooling" for t in df["tweet_id"]],
            adapter_reply=[f"{doc['texts']} reply to {t}: agents need better tools" for t in df["tweet_id"]],
            base_reply=[f"{role} reply to {t}" for t in df["tweet_id"]], reference=None,
            experiment=doc["experiment"], adapter_path=adapter_path, adapter_sha256=adapter_sha,
            curated_set_hash=doc["curated_set_hash"], judge_name="offline", judge_model="offline",
            judge_likes_agreement=0.7, judge_likes_ci_low=0.6, judge_likes_ci_high=0.8, judge_likes_pairs=n,
            valid=True,
        ))
    return pd.concat(frames, ignore_index=True)


def record_report(project, name: str, doc: dict) -> None:
    """``name``'s adapter and its eval_report rows made from ``figures``."""
    store_evaluation(project, name, lambda path, sha: eval_rows(doc, path, sha), doc["curated_set_hash"])


def store_evaluation(project, name: str, make_rows, curated: str = CURATED) -> None:
    """``name``'s adapter (a real folder and its hash, stored through the artifact IO manager's
    layout) and its eval_report rows (``make_rows(adapter path, sha256)``; its partition of the
    table replaced), as lora_adapter and eval_report store them."""
    import duckdb

    from replyassets.core.artifact import Artifact

    path, sha = adapter_folder(project, name)
    artifact = project.data / "artifacts" / "lora_adapter" / f"{name}.json"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_text(Artifact(path=path, sha256=sha, kind="lora_adapter",
                                 attrs={"curated_set_hash": curated, "method": "sft",
                                        "recipe": "the profile's settings"}).to_json())
    rows = make_rows(path, sha)
    store_reward_model(project)
    con = duckdb.connect(str(project.database))
    try:
        con.register("rows", rows)
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'eval_report'").fetchone()[0]:
            con.execute("DELETE FROM main.eval_report WHERE experiment = ?", [name])
            con.execute("INSERT INTO main.eval_report BY NAME SELECT * FROM rows")
        else:
            con.execute("CREATE TABLE main.eval_report AS SELECT * FROM rows")
    finally:
        con.close()


def store_reward_model(project, ci_low: float = 0.4, weights: tuple[float, ...] = (0.0,) * 9) -> None:
    """A stored ``reward_model`` (champion's and leaderboard's input: they decide with the same
    judge as eval_report) on the surface features (``weights``: one per
    ``core.reward_model.SURFACE_FEATURES``); with the default ``ci_low`` its held-out interval is
    not above ``reward_model.min_agreement_low``, so the next judge of ``evaluation.judges``, the
    offline judge, decides. Kept when one is stored already."""
    import json

    import duckdb

    from replyassets.core.reward_model import RewardModel

    model = RewardModel(feature_set="surface", embedding_model="none", weights=tuple(weights), scale=(1.0,) * len(weights),
                        regularization=1.0, tie_margin=0.1, training_set_hash="t" * 64, training_pairs=0,
                        training_tweet_ids=(), training_tweet_keys=())
    validation = {"agreement": 0.5, "ci_low": ci_low, "ci_high": 0.6, "tweets": 10, "pairs": 10}
    row = pd.DataFrame([{"model_sha256": model.sha256, "training_set_hash": model.training_set_hash,
                         "model_json": model.to_json(), "validation_json": json.dumps(validation)}])
    with duckdb.connect(str(project.database)) as con:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'reward_model'").fetchone()[0]:
            con.register("row", row)
            con.execute("CREATE TABLE main.reward_model AS SELECT * FROM row")


def champion_round(project):
    import dagster as dg

    resources = project.resources()
    result = dg.materialize(all_assets_and_checks(), selection=["champion"], instance=project.instance,
                            resources=resources, raise_on_error=False)
    assert result.success  # a refusal is an outcome: the run is green either way
    board = dg.materialize(all_assets_and_checks(), selection=["leaderboard"], instance=project.instance,
                           resources=resources, raise_on_error=False)
    assert board.success  # the leaderboard sits downstream of the decision
    gate = [e for e in result.get_asset_check_evaluations() if e.check_name == "promotion_gate"]
    assert len(gate) == 1
    md = {k: v.value for k, v in project.instance.get_latest_materialization_event(dg.AssetKey("champion"))
          .asset_materialization.metadata.items()}
    return gate[0], md


def history(project) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(project.database), read_only=True) as con:
        return con.execute("SELECT experiment, reason FROM main.champion ORDER BY promoted_at").df()


@pytest.mark.slow
def test_experiments_are_compared_by_the_reward_model_when_it_qualifies(dagster_project):
    """A reward model whose held-out agreement with likes is above chance compares the
    experiments in ``champion`` (as it judges in ``eval_report``): here one that prefers longer
    replies, so a challenger writing longer replies than the champion beats it and is promoted;
    the page says which judge compared them and why, and its verdicts are the reward model's."""
    import duckdb

    from replyassets.core.reward_model import SURFACE_FEATURES

    p = dagster_project
    prefers_length = tuple(1.0 if f == "log_chars" else 0.0 for f in SURFACE_FEATURES)
    store_reward_model(p, ci_low=0.7, weights=prefers_length)  # before record_report's non-qualifying one
    p.instance.add_dynamic_partitions("experiment", ["default", "r8"])
    record_report(p, "default", figures("default", judged(60, 0.85, adapter=7.5, base=4.0, seed=1),
                                        judged(60, 0.8, 7.0, 5.0, seed=2)))
    gate, md = champion_round(p)
    assert md["champion"] == "default", md["decision"]
    assert md["compared_by"].startswith("reward_model (") and "lower end above" in md["compared_by"], md["compared_by"]

    # r8's replies are longer than the champion's: the reward model prefers each of them
    record_report(p, "r8", figures("r8", judged(60, 0.9, 7.8, 4.0, seed=4), judged(60, 0.85, 7.0, 5.0, seed=5),
                                   texts="r8, a much longer and more detailed reply than the champion writes,"))
    gate, md = champion_round(p)
    assert gate.passed and md["decision"].startswith("promoted r8: "), md["decision"]
    assert list(history(p)["experiment"]) == ["default", "r8"]
    board = latest_md(p, "leaderboard")
    assert board["compared_by"] == md["compared_by"]
    with duckdb.connect(str(p.database), read_only=True) as con:
        judges = {r[0] for r in con.execute("SELECT DISTINCT judge_name FROM main.judge_cache").fetchall()}
    assert judges == {"reward-model"}, judges


@pytest.mark.slow
def test_champion_is_promoted_through_the_gate_and_survives_a_failed_challenger(dagster_project):
    p = dagster_project
    p.instance.add_dynamic_partitions("experiment", ["default", "r8"])
    strong = judged(60, 0.85, adapter=7.5, base=4.0, seed=1)

    # Round 1: default beats the base model on every criterion and the retrieval baseline.
    record_report(p, "default", figures("default", strong, judged(60, 0.8, 7.0, 5.0, seed=2)))
    gate, md = champion_round(p)
    assert gate.passed, gate.description
    assert md["champion"] == "default" and md["decision"].startswith("promoted default: ")
    assert md["compared_by"].startswith("offline (") and "reward_model not used" in md["compared_by"], md
    assert list(history(p)["experiment"]) == ["default"]
    cards = list((p.data / "champions").glob("default-*/MODEL_CARD.md"))
    assert len(cards) == 1 and "Holm" in cards[0].read_text()

    # Round 2: r8 also beats the base model, but against the champion its interval holds 0.5:
    # it wrote the champion's replies (champion judges them against each other: ties).
    record_report(p, "r8", figures("r8", judged(60, 0.9, 7.8, 4.0, seed=4), judged(60, 0.85, 7.0, 5.0, seed=5),
                                   texts="default"))
    gate, md = champion_round(p)
    assert not gate.passed
    assert "r8" in gate.description and "champion" in gate.description
    assert md["champion"] == "default" and md["candidate"] == "r8"
    assert md["decision"].startswith("stays with default: r8 ") and "does not beat the champion default" in md["decision"]
    assert list(history(p)["experiment"]) == ["default"]  # the champion stays, history unchanged

    # Round 3: a challenger that cannot be compared with the champion (evaluated on another
    # curated set) is refused too.
    record_report(p, "r8", figures("r8", judged(60, 0.95, 8.5, 4.0, seed=6), judged(60, 0.9, 7.0, 5.0, seed=7),
                                   curated="d" * 64))
    gate, md = champion_round(p)
    assert not gate.passed and md["champion"] == "default"
    assert list(history(p)["experiment"]) == ["default"]


@pytest.mark.slow
def test_the_default_twin_leading_the_board_is_refused_and_the_default_promoted(dagster_project):
    import dagster as dg

    p = dagster_project
    p.instance.add_dynamic_partitions("experiment", ["default", "default-seed43"])
    retrieval = judged(60, 0.8, 7.0, 5.0, seed=2)
    record_report(p, "default", figures("default", judged(60, 0.85, adapter=7.5, base=4.0, seed=1), retrieval))
    # The twin (the same recipe, another seed) has the better interval against the base model,
    # but against the default its interval holds 0.5: noise, not a better recipe.
    record_report(p, "default-seed43", figures("default-seed43", judged(60, 0.95, adapter=8.5, base=4.0, seed=4),
                                               retrieval, texts="default"))
    gate, md = champion_round(p)
    assert gate.passed, gate.description
    assert md["champion"] == "default" and md["decision"].startswith("promoted default: ")
    refused = [r.data for r in md["candidates"].records if r.data["outcome"] == "refused"]
    assert [r["experiment"] for r in refused] == ["default-seed43"]
    assert "does not beat the default recipe default" in refused[0]["reason"]
    assert list(history(p)["experiment"]) == ["default"]
    # the page shows the gate measured at these 60 tweets: the A/A twin's false-promotion rate
    # with its bound, and the power at d = 0.3 and at the effect the best experiment shows
    calibration = md["gate_calibration"]
    assert len(calibration) < 1_000 and "60 test tweets" in calibration and "A/A twin" in calibration
    assert "power at d = 0.3" in calibration and "(default)" in calibration
    assert md["false_promotion_upper95"] <= 0.07 and 0 < md["gate_power_best_d"] <= 1
    # the leaderboard, downstream of the decision: the champion first, then the refused twin
    board = p.instance.get_latest_materialization_event(dg.AssetKey("leaderboard")).asset_materialization.metadata
    assert [(r.data["experiment"], r.data["standing"].split(":")[0]) for r in board["summary"].records] == [
        ("default *", "champion"), ("default-seed43", "refused")]
    # ...and make demo's closing table, read back from the stored leaderboard in the same order
    from replyassets.demo import leaderboard_markdown_of
    from replyassets.settings import get_settings

    lines = leaderboard_markdown_of(get_settings()).splitlines()
    assert lines[2].startswith("| default | champion |") and lines[3].startswith("| default-seed43 | refused |")


def latest_md(project, key: str) -> dict:
    import dagster as dg

    event = project.instance.get_latest_materialization_event(dg.AssetKey(key))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()} if event else {}


def checks_of(project, run_id: str) -> dict:
    import dagster as dg

    return {r.asset_check_evaluation.check_name: r.asset_check_evaluation
            for r in project.instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)}


@pytest.mark.slow
def test_a_refusal_is_an_outcome_and_only_a_proven_champion_ships(dagster_project):
    """Runs as ``make demo`` reads them back (the demo's own ``run_outcome`` / ``outcome_lines``):
    the gate refusing every candidate is a green run that materializes the decision with every
    candidate's reason, and nothing ships; a promoted adapter ships beside its model card; an
    adapter changed since it was judged is stopped by the blocking ``proven_champion`` check and
    by ``champion_export`` itself."""
    import dagster as dg

    from replyassets import demo

    p = dagster_project
    p.instance.add_dynamic_partitions("experiment", ["default", "r8"])
    retrieval = judged(60, 0.8, 7.0, 5.0, seed=2)
    weak = judged(60, 0.5, adapter=5.0, base=5.0, seed=1)
    record_report(p, "default", figures("default", weak, retrieval))
    record_report(p, "r8", figures("r8", weak, retrieval, texts="default"))

    def round_(*keys: str) -> demo.RunOutcome:
        # dg.materialize with this project's resources (demo.AssetRunner would load the
        # definitions module's resources, bound to the settings of the first test that loaded it)
        runs = [dg.materialize(all_assets_and_checks(), selection=list(sel), instance=p.instance,
                               resources=p.resources(), raise_on_error=False, tags=demo.TAGS)
                for sel in (keys, ["leaderboard"])]
        assert runs[1].success  # downstream of the decision, whatever it was
        return demo.run_outcome(p.instance, p.instance.get_run_by_id(runs[0].run_id), ", ".join(keys))

    # 1. The gate refuses both: the run is green, champion materialized the refusal, nothing ships.
    refused = round_("champion", "champion_export")
    assert refused.success and refused.ok and refused.error_checks == [], refused
    assert demo.outcome_lines(refused, 1.0, "missing")[0].startswith("  ok   champion, champion_export"), refused
    assert demo.summary_counts([refused]) == "1 run; 0 failed ERROR checks; 0 partitions produced nothing"
    md = latest_md(p, "champion")
    assert md["decision"].startswith("stays with the base model: "), md["decision"]
    assert "default does not beat the base model" in md["decision"] and "r8 does not beat" in md["decision"]
    assert md["decision_md"].startswith("**Champion stays with the base model.**") and len(md["decision_md"]) < 1_000
    assert [(r.data["experiment"], r.data["outcome"]) for r in md["candidates"].records] == [
        ("default", "refused"), ("r8", "refused")]
    assert md["champion"] == "none" and md["promoted"] == "none"
    checks = checks_of(p, refused.run_id)
    gate = checks["promotion_gate"]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN and not gate.blocking
    assert gate.description == md["decision"]
    assert checks["proven_champion"].passed and checks["proven_champion"].blocking
    assert latest_md(p, "champion_export")["shipped"] == "nothing to ship: the base model serves"
    # the demo's closing lines: the decision as an outcome, each candidate's reason, what shipped
    from replyassets.settings import get_settings

    closing = demo.result_lines(p.instance, get_settings())
    at = closing.index("Champion: stays with the base model")
    assert closing[at + 1].startswith("  default refused: default does not beat the base model"), closing
    assert closing[at + 2].startswith("  r8 refused: r8 does not beat the base model"), closing
    assert closing[at + 3:] == ["Shipped : nothing to ship: the base model serves", "=" * 72], closing
    assert not (p.data / "champions").exists()

    # 2. default now beats everything: promoted, and its adapter ships beside its model card.
    record_report(p, "default", figures("default", judged(60, 0.85, adapter=7.5, base=4.0, seed=3), retrieval))
    promoted = round_("champion", "champion_export")
    assert promoted.success and promoted.ok, promoted
    md = latest_md(p, "champion")
    assert md["decision"].startswith("promoted default: it beats the base model"), md["decision"]
    assert md["champion"] == "default" and checks_of(p, promoted.run_id)["promotion_gate"].passed
    shipped = latest_md(p, "champion_export")
    assert shipped["champion"] == "default" and shipped["shipped"].startswith("default (adapter sha256 ")
    folder = Path(shipped["path"])
    assert (folder / "MODEL_CARD.md").is_file() and (folder / "adapter" / "adapter_config.json").is_file()

    # 3. The champion's adapter changes after it was judged: it is no longer proven. The blocking
    #    check fails the run (something broke) and champion_export does not run; asked alone, the
    #    export refuses too.
    exports = len(p.instance.fetch_materializations(dg.AssetKey("champion_export"), limit=100).records)
    Path(md["champion_adapter"], "adapter_config.json").write_text('{"r": 64}')
    broken = round_("champion", "champion_export")
    assert not broken.success
    assert [(c.check, c.blocking, c.error) for c in broken.error_checks] == [("proven_champion", True, True)]
    assert "changed since default was judged" in broken.error_checks[0].message
    assert demo.outcome_lines(broken, 1.0, "stale")[0].startswith("  FAILED champion, champion_export")
    assert len(p.instance.fetch_materializations(dg.AssetKey("champion_export"), limit=100).records) == exports
    alone = round_("champion_export")
    assert not alone.success and "not shipped: the adapter" in dict(alone.step_failures)["champion_export"]
