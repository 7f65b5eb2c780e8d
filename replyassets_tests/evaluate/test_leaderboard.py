"""Leaderboard rows, the champion candidate, evaluation prompts and training slots (pure parts)."""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import ClassVar

import pandas as pd
import pytest

from replyassets.defs.leaderboard import choose_candidate, leaderboard_rows


def _report(win, lo, hi, p, curated="c1", retrieval=0.6, tweets=30):
    return {"curated_set_hash": curated, "p_raw": p, "verdict": {"label": "not shown better"},
            "stats": {"base": {"win_rate": win, "win_rate_ci_low": lo, "win_rate_ci_high": hi, "n_tweets": tweets,
                               "lc_win_rate": win},
                      "retrieval": {"win_rate": retrieval}}}


def test_one_row_per_experiment_with_holm_within_each_curated_set():
    reports = {
        "default": _report(0.62, 0.55, 0.70, 0.01),
        "r8": _report(0.58, 0.49, 0.66, 0.04),
        "twin": _report(0.52, 0.44, 0.60, 0.03),
        "old": _report(0.70, 0.60, 0.80, 0.02, curated="c0"),
    }
    adapters = {n: {"final_train_loss": 1.0, "final_eval_loss": 1.2, "recipe": n, "cost_usd": 0.0,
                    "train_tokens_per_s": 500.0} for n in [*reports, "untested"]}
    board = leaderboard_rows(reports, adapters, champion="default")
    assert sorted(board["experiment"]) == ["default", "old", "r8", "twin", "untested"]
    by = board.set_index("experiment")
    # Holm over the three experiments of curated set c1: 0.01*3, max(0.03*2, 0.03), max(0.04, 0.06)
    assert by.loc["default", "p_holm"] == pytest.approx(0.03)
    assert by.loc["twin", "p_holm"] == pytest.approx(0.06)
    assert by.loc["r8", "p_holm"] == pytest.approx(0.06)
    assert by.loc["old", "p_holm"] == pytest.approx(0.02) and by.loc["old", "comparisons"] == 1
    assert by.loc["default", "comparisons"] == 3
    assert bool(by.loc["default", "champion"]) and not by.loc["r8", "champion"]
    assert by.loc["untested", "verdict"] == "not evaluated" and pd.isna(by.loc["untested", "win_rate"])
    assert by.loc["r8", "win_rate_vs_retrieval"] == pytest.approx(0.6)
    # gate order, not the raw win rate: the champion, then the refused ones (here none passes
    # a check, so by the lower end of the interval), then the ones not evaluated
    assert list(board["experiment"]) == ["default", "old", "r8", "twin", "untested"]
    assert list(board["gate"]) == ["champion", "refused", "refused", "refused", "not evaluated"]
    assert by.loc["old", "gate_reason"].startswith("old does not beat the base model")
    # losses by objective, each labelled; no column mixes the scales
    assert {"eval_loss", "train_loss", "eval_perplexity"}.isdisjoint(board.columns)
    assert by.loc["r8", "method"] == "sft" and by.loc["r8", "sft_eval_loss"] == pytest.approx(1.2)
    assert by.loc["r8", "judge"] == "unknown" and pd.isna(by.loc["r8", "judge_likes_agreement"])


def test_losses_of_different_objectives_are_separate_columns():
    from replyassets.core.leaderboard import losses_by_objective

    sft = losses_by_objective({"method": "sft", "final_train_loss": 2.1, "final_eval_loss": 2.3, "eval_perplexity": 9.97})
    assert sft == {"method": "sft", "sft_train_loss": 2.1, "sft_eval_loss": 2.3, "sft_eval_perplexity": 9.97,
                   "dpo_eval_loss": None, "kto_eval_loss": None}
    assert losses_by_objective({"final_eval_loss": 2.3})["sft_eval_loss"] == 2.3  # before methods: SFT
    dpo = losses_by_objective({"method": "dpo", "final_train_loss": 0.69, "final_eval_loss": 0.61, "eval_perplexity": None})
    assert dpo["dpo_eval_loss"] == 0.61 and dpo["sft_eval_loss"] is None and dpo["sft_eval_perplexity"] is None
    kto = losses_by_objective({"method": "kto", "final_eval_loss": 0.5})
    assert kto["kto_eval_loss"] == 0.5 and kto["dpo_eval_loss"] is None
    both = losses_by_objective({
        "method": "sft+dpo", "final_train_loss": 0.68, "final_eval_loss": 0.66, "eval_perplexity": None,
        "stages": {"sft": {"final_train_loss": 2.0, "final_eval_loss": 2.2, "eval_perplexity": 9.03},
                   "dpo": {"final_train_loss": 0.68, "final_eval_loss": 0.66, "eval_perplexity": None}}})
    assert both == {"method": "sft+dpo", "sft_train_loss": 2.0, "sft_eval_loss": 2.2, "sft_eval_perplexity": 9.03,
                    "dpo_eval_loss": 0.66, "kto_eval_loss": None}
    assert losses_by_objective({})["method"] == ""


def test_each_row_names_its_judge_and_its_agreement_with_likes():
    from replyassets.core.leaderboard import judge_columns

    rep = {**_report(0.6, 0.52, 0.7, 0.01), "judge": {"name": "anthropic", "model": "claude-sonnet-4-6"},
           "judge_likes_agreement": {"agreement": 0.71, "ci_low": 0.6, "ci_high": 0.8, "pairs": 40}}
    offline = {**_report(0.6, 0.52, 0.7, 0.01), "judge": {"name": "offline", "model": "offline"},
               "judge_likes_agreement": {"agreement": 0.5, "ci_low": 0.4, "ci_high": 0.6, "pairs": 40}}
    board = leaderboard_rows({"r8": rep, "r16": offline}, {}, champion=None).set_index("experiment")
    assert board.loc["r8", "judge"] == "anthropic (claude-sonnet-4-6)" and board.loc["r16", "judge"] == "offline"
    assert board.loc["r8", "judge_likes_agreement"] == pytest.approx(0.71)
    assert board.loc["r8", "judge_likes_ci_low"] == pytest.approx(0.6)
    assert judge_columns({})["judge"] == ""


def test_row_order_and_champion_marker_follow_the_gate_not_the_raw_win_rate():
    """Real statistics: the default beats everything; its A/A twin has the higher raw win rate
    against the base model but does not beat the default. The board puts the default first as the
    candidate the gate promotes, and the champion marker stays where the gate put it."""
    from replyassets.core.stats import compute_stats
    from replyassets.settings import EvaluationSettings
    from replyassets_tests.defs.test_champion import judged

    ev = EvaluationSettings(bootstrap_resamples=500)

    def rep(vs_base, vs_default=None):
        stats = {"base": compute_stats(vs_base, ev), "retrieval": compute_stats(judged(60, 0.8, 7.0, 5.0, seed=2), ev)}
        if vs_default is not None:
            stats["default"] = compute_stats(vs_default, ev)
        return {"curated_set_hash": "c1", "stats": stats, "p_raw": stats["base"]["wilcoxon_p"],
                "verdict": {"label": "adapter better"},
                "opponents": {"default": "default"} if vs_default is not None else {}}

    reports = {"default": rep(judged(60, 0.85, 7.5, 4.0, seed=1)),
               "default-seed43": rep(judged(60, 0.95, 8.5, 4.0, seed=4), judged(60, 0.5, 6.0, 6.0, seed=3))}
    board = leaderboard_rows(reports, {}, champion=None)
    assert board.set_index("experiment")["win_rate"].idxmax() == "default-seed43"  # the raw leader
    assert list(board["experiment"]) == ["default", "default-seed43"]
    assert list(board["gate"]) == ["promote", "refused"] and not board["champion"].any()
    assert "does not beat the default recipe default" in board.loc[1, "gate_reason"]
    # once the default is champion, it is marked and the twin still ranks below it
    again = leaderboard_rows(reports, {}, champion="default")
    assert list(again["experiment"]) == ["default", "default-seed43"] and list(again["champion"]) == [True, False]
    assert list(again["gate"]) == ["champion", "refused"]


def test_candidate_is_the_best_non_champion():
    board = leaderboard_rows({"default": _report(0.62, 0.55, 0.70, 0.01), "r8": _report(0.58, 0.49, 0.66, 0.04),
                              "twin": _report(0.60, 0.52, 0.69, 0.03)}, {}, champion="default")
    assert choose_candidate(board, "default") == "twin"
    assert choose_candidate(board, None) == "default"
    assert choose_candidate(board.iloc[0:0], None) is None


def test_evaluation_tweets_are_exactly_the_test_split_by_id():
    from replyassets.core.curate import tweet_split
    from replyassets.core.eval_prompts import evaluation_tweets
    from replyassets.settings import CurationSettings

    settings = CurationSettings()
    ids = [f"t{i}" for i in range(400)]
    collected = pd.DataFrame({"tweet_id": ids * 2, "tweet_clean": [f"tweet number {i}" for i in range(400)] * 2})
    test_ids = [t for t in ids if tweet_split(t, settings) == "test"]
    train_ids = [t for t in ids if tweet_split(t, settings) == "train"]
    curated = pd.DataFrame({"tweet_id": [test_ids[0], train_ids[0]], "split": ["test", "train"], "rank": [1, 2],
                            "train_reply": ["a real reply", "another"]})
    out = evaluation_tweets(collected, curated, settings, limit=10_000)
    assert set(out["tweet_id"]) == set(test_ids) and out["tweet_id"].is_unique
    assert out.iloc[0]["tweet_id"] == test_ids[0] and out.iloc[0]["reference"] == "a real reply"  # curated first
    assert out["reference"].iloc[1:].isna().all()
    assert all("tweet number" in p for p in out["prompt"])
    assert len(evaluation_tweets(collected, curated, settings, limit=5)) == 5
    # A tweet the curated set put in train (small sets may move one) is never a prompt, and a
    # curated test tweet always is, whatever its id alone would say.
    moved = curated.assign(split=["train", "test"])
    out = evaluation_tweets(collected, moved, settings, limit=10_000)
    assert test_ids[0] not in set(out["tweet_id"]) and train_ids[0] in set(out["tweet_id"])
    assert out.iloc[0]["tweet_id"] == train_ids[0]


@pytest.mark.slow
@pytest.mark.parametrize(("limit", "overlap"), [(1, False), (2, True)])
def test_training_slots_limit_concurrency_across_processes(tmp_path, limit, overlap):
    from replyassets_tests.evaluate import slot_worker

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=slot_worker.hold_and_meet, args=(tmp_path, limit, barrier, 15.0, q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    met = [q.get(timeout=5) for _ in procs]
    # Both holders met inside their slots only when two slots exist.
    assert all(met) is overlap and any(met) is overlap, met


def test_a_killed_holder_frees_its_slot(tmp_path):
    from replyassets.core.slots import slot

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    from replyassets_tests.evaluate import slot_worker

    holder = ctx.Process(target=slot_worker.hold_and_tell, args=(tmp_path, q))
    holder.start()
    assert q.get(timeout=60) == "acquired"
    holder.kill()
    holder.join(10)
    with slot(tmp_path, 1, poll_s=0.05):  # would wait forever if the lock outlived its process
        pass


class _FakeWorker:
    """Stands in for ``dg.PipesSubprocessClient``: its ``run`` is a training of ``seconds``."""

    seconds = 0.8
    ran: ClassVar[list[tuple[float, float]]] = []

    def __init__(self, **_kwargs):
        pass

    def run(self, **_kwargs):
        import dagster as dg

        t0 = time.time()
        time.sleep(self.seconds)
        _FakeWorker.ran.append((t0, time.time()))
        return type("Invocation", (), {"get_materialize_result": lambda _self: dg.MaterializeResult(metadata={"x": 1})})()


@pytest.mark.parametrize(("limit", "overlap"), [(1, False), (2, True)])
def test_local_launcher_records_when_each_training_ran_inside_its_slot(tmp_path, monkeypatch, limit, overlap):
    """Two trainings launched at once through the local launcher: their recorded spans (the
    adapter's train_started_at / train_ended_at) overlap only when two slots exist, and never
    include the wait for a slot."""
    import threading
    from types import SimpleNamespace

    import dagster as dg

    import replyassets.settings
    from replyassets.defs.launchers import TrainingLauncher, training_span

    monkeypatch.setattr(replyassets.settings, "get_settings", lambda *a, **k: SimpleNamespace(
        data_dir=tmp_path, training=SimpleNamespace(local_max_concurrent=limit)))
    monkeypatch.setattr(dg, "PipesSubprocessClient", _FakeWorker)
    monkeypatch.setattr(_FakeWorker, "ran", [])
    context = SimpleNamespace(log=SimpleNamespace(info=lambda _msg: None))
    launcher = TrainingLauncher(kind="local")
    barrier, results = threading.Barrier(2), {}

    def launch(i):
        barrier.wait()
        launched = time.time()
        result = launcher.launch(context, {"output_dir": str(tmp_path / f"out{i}")})
        results[i] = (result, training_span(result.metadata, launched, time.time()))

    threads = [threading.Thread(target=launch, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 1]
    assert all(r.metadata["x"] == 1 for r, _ in results.values())  # the worker's metadata is kept
    spans = sorted(span for _, span in results.values())
    ran = sorted(_FakeWorker.ran)
    assert len(ran) == 2
    for (start, end), (t0, t1) in zip(spans, ran, strict=True):
        assert start <= t0 and t1 <= end  # the span holds the worker's run ...
        assert end - start < _FakeWorker.seconds + 0.5  # ... and not the wait for a slot
    assert (spans[1][0] < spans[0][1]) is overlap, spans
    # without a recorded span (kubernetes, docker) the launch call's own span is used
    assert training_span({}, 1.0, 2.0) == (1.0, 2.0)


def test_adapter_cost_is_the_hourly_price_times_the_training_hours(monkeypatch):
    """cost_usd in lora_adapter's metadata: training.hourly_cost_usd x the hours the training
    ran (its recorded span); 0 with the local profile, whose machine costs nothing per hour."""
    import replyassets.defs.train as train
    from replyassets.settings import get_settings

    local = get_settings()
    assert local.training.hourly_cost_usd == 0.0
    md = train.experiment_metadata("default", 1_000.0, 1_000.0 + 1800)
    assert md["cost_usd"] == 0.0 and md["train_wall_seconds"] == 1800.0
    gpu = local.model_copy(update={"training": local.training.model_copy(update={"hourly_cost_usd": 3.2})})
    monkeypatch.setattr(train, "settings", lambda: gpu)
    md = train.experiment_metadata("default", 1_000.0, 1_000.0 + 1800)  # half an hour at $3.20/h
    assert md["cost_usd"] == pytest.approx(1.6)
    assert md["train_started_at"].value == 1_000.0 and md["train_ended_at"].value == 2_800.0
    assert train.experiment_metadata("r8", 0.0, 90.0)["cost_usd"] == pytest.approx(round(90 / 3600 * 3.2, 4))
    assert train.experiment_metadata("default", 50.0, 40.0)["cost_usd"] == 0.0  # a clock step back costs nothing


def test_experiments_on_one_curated_set_share_test_tweets_and_decoding_seeds():
    """Every experiment's eval_report (and so every row of its comparisons) draws the same test
    tweets and the same decoding seeds from one curated set: the recipes differ, the test does not."""
    from replyassets.core.curate import tweet_split
    from replyassets.core.eval_prompts import decoding_seeds, evaluation_tweets
    from replyassets.experiments import load_experiments
    from replyassets.settings import PROJECT_ROOT, load_settings

    s = load_settings("local")
    exps = load_experiments(PROJECT_ROOT / "config" / "experiments.yaml", s)
    assert len(exps) >= 4
    ids = [f"t{i}" for i in range(600)]
    collected = pd.DataFrame({"tweet_id": ids, "tweet_clean": [f"tweet number {i}" for i in ids]})
    test_ids = [t for t in ids if tweet_split(t, s.curation) == "test"]
    curated = pd.DataFrame({"tweet_id": test_ids[:3], "split": "test", "rank": [1, 2, 3], "train_reply": "r"})
    plans = {}
    for exp in exps:
        ev = exp.evaluation_settings(s.evaluation.model_copy(update={"decoding_seeds": 2, "max_test_tweets": 25}))
        tweets = evaluation_tweets(collected, curated, s.curation, ev.max_test_tweets)
        plans[exp.name] = (tuple(tweets["tweet_id"]), tuple(decoding_seeds(ev)))
    assert len(set(plans.values())) == 1, plans
    tweet_ids, seeds = plans["default"]
    assert len(tweet_ids) == 25 and set(tweet_ids) <= set(test_ids)
    assert seeds == (s.evaluation.generation_seed, s.evaluation.generation_seed + 1)


def test_demo_output_ends_with_the_leaderboard_and_the_champion_decision():
    from replyassets.core.leaderboard import leaderboard_markdown
    from replyassets.demo import closing_lines

    board = leaderboard_rows({"default": _report(0.62, 0.55, 0.70, 0.01), "default-seed43": _report(0.64, 0.56, 0.72, 0.02)},
                             {}, champion="default")
    table = leaderboard_markdown(board)
    decision = "stays with default: default-seed43 does not beat the default recipe default (...)"
    lines = closing_lines(table, decision)
    assert lines[-3:] == ["", f"Champion: {decision}", "=" * 72]
    header = lines.index("Leaderboard (win rate against the base model, the test tweet as unit):")
    rows = lines[header + 1:-3]
    assert rows == table.splitlines() and len(rows) == 4  # header, rule, one row per experiment
    # the champion first (the twin is refused: gate order, whatever its raw win rate)
    assert rows[2].startswith("| default | champion |") and "| yes |" in rows[2]
    assert rows[3].startswith("| default-seed43 | refused |")
    # nothing evaluated yet: the closing rule alone
    assert closing_lines(None, None) == ["=" * 72]
