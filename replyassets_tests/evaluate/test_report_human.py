from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import pandas as pd
import pytest

from replyassets.core.human_eval import (
    export_sheet,
    import_ratings,
    judge_human_agreement,
)
from replyassets.core.judging import judge_pairs
from replyassets.core.report import (
    HUMAN_AGREEMENT_KEY,
    ui_metadata,
    verdict_line,
    write_report,
)
from replyassets.core.stats import compute_stats, sanity_stats, verdict
from replyassets.judges.offline import OfflineJudge
from replyassets.settings import EvaluationSettings, ValidationSettings

XSS = "<script>alert('x')</script> | pipes | and\nnewlines"


def offline_judge() -> OfflineJudge:
    """The offline judge with the settings' defaults (the judge has none of its own)."""
    ev, v = EvaluationSettings(), ValidationSettings()
    return OfflineJudge(tie_margin=ev.offline_tie_margin, min_chars=v.min_chars, max_chars=v.max_chars)

def judged_items(n=8):
    items = []
    for i in range(n):
        items.append({
            "item_id": f"r{i}", "tweet": f"Tweet number {i} about shipping software on Fridays. {XSS if i == 0 else ''}",
            "reference": "Ship on Fridays only with good tests and a rollback button.",
            "base_reply": "ok" if i % 2 else "Fridays are fine with tests and rollback.",
            "adapter_reply": "Ship on Fridays with good tests and a rollback button, sure." if i % 3 else "nah",
        })
    return judge_pairs(offline_judge(), items, cache=None, concurrency=2)


def report_stats(df: pd.DataFrame, s: EvaluationSettings) -> dict:
    """What write_report takes: compute_stats plus its verdict under "verdict"."""
    stats = compute_stats(df, s)
    return {**stats, "verdict": verdict(stats, s)}


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_report_files(tmp_path):
    df = judged_items()
    s = EvaluationSettings(bootstrap_resamples=300)
    stats = report_stats(df, s)
    sanity = sanity_stats(df["base_reply"].tolist(), df["adapter_reply"].tolist(), df["reference"].tolist())
    sanity["perplexity_test"] = {"base": 12.5, "adapter": 9.1}
    meta = {"run_id": "run-1", "base_model": "tiny", "judge_name": "offline-reference-judge",
            "judge_model": "offline-lexical", "judge_offline": True, "decoding": {"temperature": 0.7}}
    paths = write_report(tmp_path / "rep", stats, df, sanity, meta)
    md = Path(paths["markdown"]).read_text(encoding="utf-8")
    html = Path(paths["report_html"]).read_text(encoding="utf-8")
    assert paths["report_md"] == paths["markdown"]
    assert "OFFLINE" in md and "OFFLINE" in html
    assert stats["verdict"]["label"] in md and stats["verdict"]["summary"] in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>" not in md
    assert "perplexity_test" in md and "Example replies" in md
    for name, p in paths["plots"].items():
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert name in md and name in html
    data = json.loads(Path(paths["json"]).read_text())
    assert data["stats"]["n_items"] == 8
    assert not [p for p in (tmp_path / "rep").iterdir() if p.name.startswith(".")]  # no temp files left
    md_meta = ui_metadata(stats, meta)
    assert md_meta["verdict"] == stats["verdict"]["label"] and "offline" in md_meta["judge"]
    # degenerate input still writes a report
    empty = report_stats(df.iloc[0:0], s)
    p2 = write_report(tmp_path / "empty", empty, df.iloc[0:0], sanity_stats([], []), {"judge_offline": False})
    assert "insufficient data" in Path(p2["markdown"]).read_text()


def test_human_eval_round_trip(tmp_path):
    df = judged_items(10)
    out = export_sheet(df, tmp_path, seed=3)
    sheet = pd.read_csv(out["sheet"], dtype=str, keep_default_na=False)
    key = pd.read_csv(out["key"], dtype=str)
    assert list(sheet.columns) == ["pair_id", "tweet", "reply_1", "reply_2", "preferred", "rater_id", "comment"]
    assert "item_id" not in sheet.columns and not sheet.apply(lambda c: c.str.contains("adapter")).any().any()
    assert set(key["reply_1_source"]) == {"adapter", "base"}  # order randomised
    assert export_sheet(df, tmp_path / "again", seed=3)["n"] == 10
    assert pd.read_csv(tmp_path / "again" / "human_eval_sheet.csv", dtype=str).equals(pd.read_csv(out["sheet"], dtype=str))

    # a rater who agrees with the judge everywhere
    judge_by_item = dict(zip(df["item_id"], df["outcome"]))
    k = key.set_index("pair_id")
    rows = []
    for _, r in sheet.iterrows():
        o = judge_by_item[k.loc[r["pair_id"], "item_id"]]
        adapter_pos = "1" if k.loc[r["pair_id"], "reply_1_source"] == "adapter" else "2"
        base_pos = "2" if adapter_pos == "1" else "1"
        rows.append({**r, "rater_id": "alice", "preferred": {"win": adapter_pos, "loss": base_pos, "tie": "tie"}[o]})
    bad = [
        {"pair_id": "p-unknown", "preferred": "1", "rater_id": "alice"},
        {"pair_id": rows[0]["pair_id"], "preferred": "maybe", "rater_id": "bob"},
        {"pair_id": rows[1]["pair_id"], "preferred": "", "rater_id": "bob"},
        {**rows[2]},  # duplicate of alice's rating
    ]
    filled = tmp_path / "filled.csv"
    pd.DataFrame(rows + bad).to_csv(filled, index=False, quoting=csv.QUOTE_ALL)
    ratings, problems = import_ratings(filled, out["key"])
    assert len(ratings) == 10
    assert sorted(problems["reason"]) == sorted(["unknown_pair_id", "invalid_preferred:maybe", "missing_rating", "duplicate_rating"])
    agree = judge_human_agreement(df, ratings)
    assert agree["percent_agreement"] == 1.0 and agree["n"] == 10 and agree["n_raters"] == 1
    assert agree["cohens_kappa"] in (1.0, None)

    with pytest.raises(ValueError, match="pair_id"):
        bad_file = tmp_path / "bad.csv"
        bad_file.write_text("a,b\n1,2\n")
        import_ratings(bad_file, out["key"])


NO_RATINGS_LINE = "No human ratings imported yet"


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_report_with_agreement_shows_it_and_not_the_no_ratings_line(tmp_path):
    df = judged_items(6)
    stats = report_stats(df, EvaluationSettings(bootstrap_resamples=100))
    ratings = pd.DataFrame({"item_id": df["item_id"], "human_outcome": df["outcome"].where(df["outcome"] != "invalid", "tie"),
                            "rater_id": "alice"})
    agreement = judge_human_agreement(df, ratings)
    assert agreement["n"] == 6
    paths = write_report(tmp_path / "with", stats, df, {}, {"judge_offline": True, HUMAN_AGREEMENT_KEY: agreement})
    md = Path(paths["markdown"]).read_text(encoding="utf-8")
    html = Path(paths["html"]).read_text(encoding="utf-8")
    section = md.split("## Human raters", 1)[1].split("## Cost", 1)[0]
    assert "| percent_agreement | 1 |" in section and "| n_raters | 1 |" in section
    assert "judge (rows) / human (columns)" in section  # the confusion matrix
    assert NO_RATINGS_LINE not in md and NO_RATINGS_LINE not in html
    assert "percent_agreement" in html

    without = write_report(tmp_path / "without", stats, df, {}, {"judge_offline": True})
    without_md = Path(without["markdown"]).read_text(encoding="utf-8")
    assert NO_RATINGS_LINE in without_md
    # the sheet is already in the report's folder: the report says so and how to import it
    assert "human_eval_sheet.csv" in without_md and "human-eval import" in without_md
    assert "export_sheet" not in without_md
    # zero matched ratings is "no ratings", not an empty agreement table
    empty = write_report(tmp_path / "empty", stats, df, {}, {HUMAN_AGREEMENT_KEY: {"n": 0}})
    assert NO_RATINGS_LINE in Path(empty["markdown"]).read_text(encoding="utf-8")


def test_verdict_line():
    crit = {"a": {"passed": True}, "b": {"passed": True}, "c": {"passed": False}, "d": {"passed": None}}
    v = {"label": "not shown better", "criteria_passed": 2, "criteria_total": 4, "criteria": crit}
    assert verdict_line(v) == "NOT SHOWN BETTER — 2 of 4 criteria pass, 1 not computable"
    assert verdict_line({"label": "adapter better", "criteria_passed": 4, "criteria_total": 4}) == (
        "ADAPTER BETTER — all 4 criteria pass")
    assert verdict_line(None) == "NO VERDICT"


def test_kappa_matches_sklearn():
    sklearn = importlib.import_module("sklearn.metrics")
    from replyassets.core.human_eval import cohens_kappa

    a = ["win", "win", "tie", "loss", "loss", "win", "tie", "win"]
    b = ["win", "tie", "tie", "loss", "win", "win", "loss", "win"]
    assert cohens_kappa(a, b) == pytest.approx(sklearn.cohen_kappa_score(a, b))
    assert cohens_kappa(["win"] * 3, ["win"] * 3) is None
    judge = pd.DataFrame({"item_id": [str(i) for i in range(8)], "outcome": a})
    ratings = pd.DataFrame({"item_id": [str(i) for i in range(8)], "human_outcome": b, "rater_id": "r"})
    agree = judge_human_agreement(judge, ratings)
    assert agree["percent_agreement"] == pytest.approx(5 / 8)
    assert agree["cohens_kappa"] == pytest.approx(sklearn.cohen_kappa_score(a, b))


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_report_states_power_and_what_the_adjusted_p_counts(tmp_path):
    from replyassets.core.stats import paired_power, required_units

    df = judged_items(12).assign(tweet_id=[f"t{i}" for i in range(12)])
    s = EvaluationSettings(bootstrap_resamples=300)
    stats = compute_stats(df, s, unit_col="tweet_id")
    stats = {**stats, "verdict": verdict(stats, s, adjusted_p=min(1.0, 2 * (stats["wilcoxon_p"] or 0.5)),
                                         comparisons=2)}
    meta = {"judge_offline": True, "comparisons_vs_base": 2, "holm_experiments": ["default", "r8"]}
    paths = write_report(tmp_path / "rep", stats, df, {}, meta)
    md = Path(paths["markdown"]).read_text(encoding="utf-8")
    html = Path(paths["report_html"]).read_text(encoding="utf-8")
    power = paired_power(0.3, 12, s.alpha)
    needed = required_units(0.3, 0.8, s.alpha)
    assert 0 < power < 0.5 and 80 <= needed <= 100
    stated = (f"Statistical power: 12 test tweets (the unit); the power to detect a paired effect d = 0.3 at "
              f"this number is {float(f'{power:.4g}'):g}; {needed} tweets give 80 % power.")
    assert stated in md and stated in html
    # the statistics section holds it (after the score tests, before the sanity tier)
    assert md.index("## Per-reply scores") < md.index(stated) < md.index("## Sanity tier")
    holm = ("Adjusted p: Holm-Bonferroni adjusted over the 2 experiments evaluated on this curated set so far "
            "(as of this report: default, r8). Experiments evaluated later are not counted here; the leaderboard "
            "holds the adjustment over all of them")
    assert holm in md and holm in html
    # the first report of a curated set counts one experiment, and says so
    first = write_report(tmp_path / "first", stats, df, {}, {**meta, "comparisons_vs_base": 1,
                                                              "holm_experiments": ["default"]})
    assert ("adjusted over the 1 experiment evaluated on this curated set so far (as of this report: default)"
            in Path(first["markdown"]).read_text(encoding="utf-8"))


def test_report_figures_share_one_style_of_four_significant_digits():
    """One column never mixes "72.000", "113.0" and "193.5"; a tiny p-value is not "0.000"."""
    from replyassets.core.report import fmt

    assert [fmt(x) for x in (72.0, 113.0, 193.5, 1871.9646)] == ["72", "113", "193.5", "1872"]
    assert fmt(0.6311475409836066) == "0.6311" and fmt(1.234e-05) == "1.234e-05" and fmt(0.0) == "0"
    assert fmt(None) == "n/a" and fmt(float("nan")) == "n/a" and fmt([0.25, 0.75]) == "[0.25, 0.75]"


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_report_header_reads_as_text_not_json(tmp_path):
    """The judge line names no unknown prompt ("(prompt ?)"); the decoding row is settings, not JSON."""
    df = judged_items(4)
    stats = report_stats(df, EvaluationSettings(bootstrap_resamples=100))
    meta = {"judge_name": "offline-reference-judge", "judge_model": "offline-lexical", "judge_offline": True,
            "decoding": {"temperature": 0.7, "top_p": 0.9, "seeds": [42, 43]}}
    md = Path(write_report(tmp_path / "r", stats, df, {}, meta)["markdown"]).read_text(encoding="utf-8")
    assert "Judge: offline-reference-judge / offline-lexical, OFFLINE" in md and "prompt ?" not in md
    assert "| decoding | seeds = [42, 43], temperature = 0.7, top_p = 0.9 |" in md
    named = Path(write_report(tmp_path / "n", stats, df, {}, {**meta, "judge_prompt_version": "rubric-v1"})["markdown"])
    assert "offline-lexical (prompt rubric-v1)" in named.read_text(encoding="utf-8")
