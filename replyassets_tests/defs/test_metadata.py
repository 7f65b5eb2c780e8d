"""What the asset pages show: metadata order, tables instead of JSON blobs, inline plots,
rounded numbers, histograms inside the data's range, column descriptions with their rules,
descriptions that survive markdown. Builders are called directly (no models, no training):
the end-to-end materialization is test_pipeline.py."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.typing import Series

from replyassets.core.markdown import ZWSP, breakable, histogram_bins
from replyassets.core.numbers import round_sig, rounded
from replyassets.core.plots import INLINE_MD_LIMIT
from replyassets.defs.column_schema import column_schema
from replyassets.defs.metadata import (
    histogram_md,
    mapping_table,
    records_table,
    table_md,
    tidy_metadata,
)

DATA_URI = "data:image/png;base64,"
MAX_SIG = 6


# --------------------------------------------------------------------------- helpers


def _floats(value):
    """Every float inside a metadata value (plain, float, JSON, table, nested)."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, float):
        yield value
    elif isinstance(value, dg.FloatMetadataValue):
        if value.value is not None:
            yield value.value
    elif isinstance(value, dg.JsonMetadataValue):
        yield from _floats(value.data)
    elif isinstance(value, dg.TableMetadataValue):
        for r in value.records:
            yield from _floats(dict(r.data))
    elif isinstance(value, dg.MetadataValue):
        return  # text, path, md, int, bool, null: no float inside
    elif isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _floats(v)


def assert_rounded(metadata: dict) -> None:
    too_long = {
        k: f for k, v in metadata.items() for f in _floats(v)
        if math.isfinite(f) and float(f"{f:.{MAX_SIG}g}") != f
    }
    assert not too_long, too_long


def _md_text(v) -> str:
    return v.value if isinstance(v, dg.MarkdownMetadataValue) else ""


# --------------------------------------------------------------------------- numbers


def test_rounding_helpers():
    assert round_sig(0.6311475409836066) == 0.631
    assert round_sig(1871.9646515521367) == 1870.0 and round_sig(1871.9646515521367, 4) == 1872.0
    assert round_sig(0.0) == 0.0 and math.isnan(round_sig(float("nan")))
    out = rounded({"win_rate": 0.6311475409836066, "wilcoxon_p": 0.049961234, "n": 61, "ok": True,
                   "ci": [0.057377049, 0.213114754], "x": np.float64(2.718281828)})
    assert out == {"win_rate": 0.631, "wilcoxon_p": 0.04996, "n": 61, "ok": True, "ci": [0.0574, 0.213], "x": 2.72}
    md = tidy_metadata({
        "a": 0.6311475409836066,
        "b": dg.MetadataValue.float(7.527329921722412),
        "c": dg.MetadataValue.json({"loss": [7.612463474273682]}),
        "d": records_table([{"k": "x", "v": 0.123456789}]),
        "e": "text", "f": 3, "g": True,
    })
    assert list(md) == list("abcdefg")
    assert md["a"] == 0.631 and md["b"].value == 7.53 and md["c"].data == {"loss": [7.61]}
    assert md["d"].records[0].data["v"] == 0.123 and md["g"] is True
    assert_rounded(md)


def test_tables_are_typed_and_escape_markup():
    t = records_table([{"name": "a", "n": 1, "x": 0.5, "ok": True}, {"name": "b", "n": 2, "x": None, "ok": None}])
    assert [(c.name, c.type) for c in t.schema.columns] == [("name", "string"), ("n", "int"), ("x", "float"), ("ok", "bool")]
    splits = mapping_table({"train": 480, "eval": 61, "test": 61}, key="split", value="pairs")
    assert [c.type for c in splits.schema.columns] == ["string", "int"]
    assert splits.records[0].data == {"split": "train", "pairs": 480}
    md = table_md([{"reply": "<script>x</script> | <run>", "score": 0.6311475409836066}]).value
    assert "<script>" not in md and "&lt;run&gt;" in md and "\\|" in md and "0.631" in md


# --------------------------------------------------------------------------- histograms


@pytest.mark.parametrize("values", [
    [0, 0, 1, 2, 3, 50, 120],  # non-negative, skewed: pd.cut used to start below 0
    [0.0, 0.01, 0.02, 0.9, 0.97],  # a score in [0, 1]
    [3, 4, 4, 5],  # small integer range: one bin per value
    [7, 7, 7],  # one value
])
def test_histogram_bins_lie_within_the_data(values):
    v = np.asarray(values, dtype=float)
    counts, edges = histogram_bins(v, bins=10)
    assert edges[0] >= v.min() and edges[0] == v.min()
    assert edges[-1] <= v.max() and edges[-1] == v.max()
    assert counts.sum() == len(v)
    text = histogram_md(pd.Series(values), title="reply length <chars>").value
    first_row = text.split("```\n", 1)[1].splitlines()[0]
    assert "-" not in first_row.split()[0], first_row  # no negative first bin
    assert "<chars>" not in text and "&lt;chars&gt;" in text


def test_histogram_of_nothing():
    assert "no values" in histogram_md(pd.Series([], dtype=float), title="toxicity").value


# --------------------------------------------------------------------------- column schemas


class _Model(pa.DataFrameModel):
    score: Series[float] = pa.Field(in_range={"min_value": 0, "max_value": 1}, description="A score")
    likes: Series[int] = pa.Field(ge=0, description="Likes")
    share: Series[float] = pa.Field(ge=0, le=1, description="A share")
    split: Series[str] = pa.Field(isin=["train", "eval", "test"], description="Split")
    name: Series[str] = pa.Field(str_length={"min_value": 1}, description="Name")

    @pa.dataframe_check(description="names are unique per split")
    def unique_names(cls, df: pd.DataFrame) -> bool:
        return True


def test_column_descriptions_carry_the_rules_with_their_values():
    cols = {c.name: c.description for c in column_schema(_Model).columns}
    assert cols["score"].startswith("A score") and "between 0 and 1" in cols["score"]
    assert "in_range" not in cols["score"]
    assert ">= 0" in cols["likes"] and "greater_than" not in cols["likes"]
    assert "between 0 and 1" in cols["share"]
    assert "one of: train, eval, test" in cols["split"]
    assert "non-empty" in cols["name"]
    assert column_schema(_Model).constraints.other == ["names are unique per split"]


def test_every_stored_table_column_has_a_real_description():
    from replyassets import schemas

    for model in (schemas.RawPairs, schemas.Rejections, schemas.ValidatedPairs, schemas.DedupedPairs,
                  schemas.CuratedSet, schemas.ReviewDecisions):
        for col in column_schema(model).columns:
            assert col.description and not col.description.startswith("("), (model.__name__, col.name)
    cols = {c.name: c.description for c in column_schema(schemas.ValidatedPairs).columns}
    assert "between 0 and 1" in cols["toxicity"] and ">= 0" in cols["meaningful_words"]


@pytest.mark.slow
def test_descriptions_survive_markdown():
    """No ``<word>`` placeholder that markdown would swallow as an HTML tag."""
    from replyassets.definitions import defs

    tag = re.compile(r"<[A-Za-z][^>]*>")
    for a in defs.assets or []:
        specs = getattr(a, "specs", None) or []
        for spec in specs:
            d = spec.description or ""
            for m in tag.finditer(d):
                # allowed only inside a code span
                assert d[: m.start()].count("`") % 2 == 1, (spec.key, d)
        for check in getattr(a, "check_specs", None) or []:
            assert not tag.search(check.description or ""), check.name


# --------------------------------------------------------------------------- eval_report


@pytest.fixture(scope="module")
def eval_inputs(tmp_path_factory):
    from replyassets.core.report import write_report
    from replyassets.core.stats import sanity_stats
    from replyassets.settings import EvaluationSettings
    from replyassets_tests.evaluate.test_report_human import judged_items, report_stats

    df = judged_items(8)
    stats = report_stats(df, EvaluationSettings(bootstrap_resamples=100))
    sanity = sanity_stats(df["base_reply"].tolist(), df["adapter_reply"].tolist(), df["reference"].tolist())
    sanity["perplexity_test"] = {"base": 2017.2216794240578, "adapter": 1871.9646515521367, "warn_above": 1950.0}
    sanity["forgetting"] = {"base_ppl": 2013.4294673689158, "adapter_ppl": 1972.2122398380918,
                            "ratio": 0.9795288445913701, "threshold": 1.5, "warn": False}
    meta = {"run_id": "run-1", "judge_name": "offline-reference-judge", "judge_model": "offline-lexical",
            "judge_offline": True, "decoding": {"do_sample": True, "max_new_tokens": 48, "temperature": 0.7, "top_p": 0.9},
            "verdict": stats["verdict"]}
    paths = write_report(tmp_path_factory.mktemp("report"), stats, df, sanity, meta)
    return stats, sanity, meta, paths, df.to_dict("records")


@pytest.mark.slow
def test_eval_report_metadata_verdict_first_tables_and_plots(eval_inputs):
    from replyassets.defs.evaluate import eval_metadata

    stats, sanity, meta, paths, items = eval_inputs
    agreement = {"n": 8, "n_items": 8, "n_raters": 1, "percent_agreement": 0.625, "cohens_kappa": 0.4285714285714286}
    md = eval_metadata(stats=stats, decision=stats["verdict"], sanity=sanity, meta=meta, paths=paths,
                       sheet={"sheet": "s.csv", "key": "k.csv"}, agreement=agreement, items=items,
                       perplexity_warn=1950.0)
    keys = list(md)
    assert keys[0] == "verdict" and keys[2] == "criteria"
    v = stats["verdict"]
    assert md["verdict"].startswith(v["label"].upper() + " — ")
    assert f"{v['criteria_passed']} of {v['criteria_total']}" in md["verdict"] or "all " in md["verdict"]
    crit = md["criteria"]
    assert isinstance(crit, dg.TableMetadataValue)
    # four columns: the table fits the page's value column (the threshold and its note in one cell)
    assert [c.name for c in crit.schema.columns] == ["criterion", "pass", "value", "needs"]
    assert [r.data["criterion"].replace(ZWSP, "") for r in crit.records] == list(v["criteria"])
    assert [r.data["pass"] for r in crit.records] == [c["passed"] for c in v["criteria"].values()]
    # the outcomes plot right under the verdict and its criteria (the page's first screen; the
    # asset keeps the first three keys first), the other plots before the tables
    assert keys[:3] == ["verdict", "outcomes_plot", "criteria"]
    assert keys.index("win_rate") < keys.index("score_distribution") < keys.index("sanity")
    # every plot small enough for the UI to show without a click (a markdown value under 1,000
    # characters), the folder of the full-size ones beside them
    for key in ("outcomes_plot", "score_distribution", "length_distribution"):
        text = _md_text(md[key])
        assert text.startswith("![") and DATA_URI in text and len(text) < INLINE_MD_LIMIT, (key, len(text))
    assert keys.index("length_distribution") < keys.index("report_folder") < keys.index("sanity")
    assert md["report_folder"].value == str(Path(paths["report_md"]).parent)
    # the short keys explained on the page itself, shown without a click
    glossary = _md_text(md["glossary"])
    assert len(glossary) < INLINE_MD_LIMIT and all(k in glossary for k in ("power_d03", "lc_win_rate", "p_holm"))
    examples = md["examples"]  # a table; the note says who wrote the replies
    assert isinstance(examples, dg.TableMetadataValue) and "tiny local model" in md["examples_note"]
    assert not any("<think>" in str(v) for r in examples.records for v in r.data.values())
    for key in ("perplexity_test", "forgetting", "sanity", "decoding"):
        assert isinstance(md[key], dg.TableMetadataValue), key
    ppl = {r.data["test-reply perplexity"]: r.data["value"] for r in md["perplexity_test"].records}
    assert ppl["base"] == "2017" and ppl["adapter"] == "1872" and ppl["warn above (adapter)"] == "1950"
    agreement_table = md["judge_human_agreement"]
    assert isinstance(agreement_table, dg.TableMetadataValue)
    rows = {r.data["judge-human agreement"]: r.data["value"] for r in agreement_table.records}
    assert rows["cohens_kappa"] == "0.429" and rows["percent_agreement"] == "0.625" and rows["n"] == "8"
    assert not any(isinstance(x, dg.JsonMetadataValue) for x in md.values())   # no JSON blob left
    assert md["success"].value is bool(v["success"])
    assert_rounded(md)
    # markup from the tweets never reaches the page as HTML; the report's relative image links are gone
    for key, x in md.items():
        assert "<script" not in _md_text(x), key
    report = _md_text(md["report"])
    assert "](outcomes.png)" not in report and "plot: pairwise outcomes" in report
    assert "the `outcomes_plot` entry of this page" in report and "shown in this asset's metadata above" not in report


def test_eval_report_metadata_without_ratings(eval_inputs):
    from replyassets.defs.evaluate import NO_RATINGS, eval_metadata

    stats, sanity, meta, paths, _ = eval_inputs
    md = eval_metadata(stats=stats, decision=stats["verdict"], sanity=sanity, meta=meta, paths=paths)
    assert md["judge_human_agreement"] == NO_RATINGS and next(iter(md)) == "verdict"


# --------------------------------------------------------------------------- lora_adapter


def _reported(**over):
    curve = [
        {"step": 1, "train_loss": 7.612463474273682, "eval_loss": None, "gap": None},
        {"step": 10, "train_loss": 7.609890407986111, "eval_loss": None, "gap": None},
        {"step": 20, "train_loss": 7.5992485046386715, "eval_loss": 7.594725131988525, "gap": -0.004523372650146129},
    ]
    md = {
        "adapter_path": dg.MetadataValue.path("/adapters/x/adapter"),
        "adapter_sha256": "a" * 64,
        "final_train_loss": dg.MetadataValue.float(7.531108093261719),
        "final_eval_loss": dg.MetadataValue.float(7.527329921722412),
        "eval_perplexity": dg.MetadataValue.float(1858.1375014514038),
        "train_tokens_per_s": dg.MetadataValue.float(12345.678901),
        "loss_curve": dg.MetadataValue.json(curve),
        "training_config": dg.MetadataValue.json({"learning_rate": 0.0002, "warmup_ratio": 0.03333333333,
                                                  "lora": {"r": 16, "target_modules": ["q_proj", "v_proj"]}}),
        "sample_generations": dg.MetadataValue.json(
            [{"step": 20, "eval_loss": 7.594725131988525, "samples": [{"tweet_id": "t1", "reply": "<think>\n\n</think> hi | there"}]}]
        ),
        "sample_generations_table": dg.MetadataValue.md("| step | tweet | reply |\n|---:|---|---|\n| 20 | t1 | <think> hi |"),
        "launcher": "local",
    }
    md.update(over)
    return md, curve


def test_lora_adapter_metadata_loss_curve_first_as_an_inline_png():
    from replyassets.defs.train import adapter_metadata

    reported, _ = _reported()
    md = adapter_metadata(reported)
    # first the loss plot, with axes, short enough for the UI to show in the metadata table
    # (under 1,000 characters); the full-size PNG is a file (loss_curve_plot), not a hidden value
    assert list(md)[0] == "loss"
    inline = _md_text(md["loss"])
    assert inline.startswith("![loss") and DATA_URI in inline and len(inline) < INLINE_MD_LIMIT, len(inline)
    assert "loss_curve" not in md
    assert list(md)[1:4] == ["loss_objective", "final_eval_loss", "final_train_loss"]
    assert md["loss_objective"].startswith("SFT: final_*_loss is the cross-entropy")
    table = md["loss_curve_table"]
    assert isinstance(table, dg.TableMetadataValue) and [r.data["step"] for r in table.records] == [1, 10, 20]
    assert md["final_eval_loss"].value == 7.527 and md["eval_perplexity"].value == 1858.0
    assert md["adapter_sha256"] == "a" * 16 and md["adapter_path"].value == "/adapters/x/adapter"
    samples = md["sample_generations_table"]  # a table: generated "<think>" is not swallowed as HTML
    assert isinstance(samples, dg.TableMetadataValue)
    assert samples.records[0].data == {"step": 20, "eval_loss": 7.595, "tweet_id": "t1", "reply": "hi | there"}
    assert "sample_generations" not in md and "latest_samples" not in md  # the JSON, the duplicate: gone
    assert "tiny local model" in md["samples_note"]
    assert list(md).index("samples_note") + 1 == list(md).index("sample_generations_table")
    config = md["training_config"]
    assert isinstance(config, dg.TableMetadataValue)
    assert {r.data["setting"]: r.data["value"].replace(ZWSP, "") for r in config.records} == {
        "learning_rate": "0.0002", "warmup_ratio": "0.03333", "lora.r": "16", "lora.target_modules": '["q_proj", "v_proj"]'}
    assert not any(isinstance(x, dg.JsonMetadataValue) for x in md.values())   # no JSON blob left
    assert_rounded(md)


def test_lora_adapter_page_shows_preference_stages_as_tables_and_only_its_methods_settings():
    """sft+dpo's reward curve, final eval metrics and stages are tables, not JSON; an SFT run's
    training config lists no dpo.* / kto.* settings, a DPO run's its dpo.* ones."""
    from replyassets.defs.train import adapter_metadata

    config = {"method": "sft", "learning_rate": 0.0002, "dpo": {"beta": 0.1}, "kto": {"beta": 0.2}}
    reported, _ = _reported(
        training_config=dg.MetadataValue.json(config),
        reward_curve=dg.MetadataValue.json([{"step": 4, "rewards/margins": 0.123456789}]),
        reward_curve_table=dg.MetadataValue.md("| step | margins |"),
        final_eval_metrics=dg.MetadataValue.json({"eval_loss": 0.6931471805599453, "eval_rewards/accuracies": 0.5}),
        stages=dg.MetadataValue.json({"sft": {"final_eval_loss": 2.2}, "dpo": {"final_eval_loss": 0.66}}),
        latest_samples=dg.MetadataValue.json({"step": 20, "samples": []}),
    )
    md = adapter_metadata(reported)
    assert not any(isinstance(x, dg.JsonMetadataValue) for x in md.values())
    for key in ("reward_curve", "final_eval_metrics", "stages", "training_config"):
        assert isinstance(md[key], dg.TableMetadataValue), key
    assert "reward_curve_table" not in md and "latest_samples" not in md
    assert [r.data["stage"] for r in md["stages"].records] == ["sft", "dpo"]
    assert md["reward_curve"].records[0].data == {"step": 4, "rewards/margins": 0.1235}
    settings_shown = {r.data["setting"] for r in md["training_config"].records}
    assert settings_shown == {"method", "learning_rate"}
    dpo = adapter_metadata(_reported(training_config=dg.MetadataValue.json({**config, "method": "dpo"}))[0])
    assert {r.data["setting"] for r in dpo["training_config"].records} == {"method", "learning_rate", "dpo.beta"}
    assert_rounded(md)


def test_lora_adapter_page_names_each_loss_by_its_objective():
    """An sft+dpo adapter shows its SFT stage's cross-entropy and perplexity and its DPO loss,
    each labelled, and no unlabelled ``eval_perplexity`` null; a DPO adapter no null perplexity."""
    from replyassets.defs.train import adapter_metadata

    stages = {"sft": {"final_train_loss": 2.01, "final_eval_loss": 2.2, "eval_perplexity": 9.025},
              "dpo": {"final_train_loss": 0.68, "final_eval_loss": 0.66, "eval_perplexity": None}}
    reported, _ = _reported(
        method=dg.MetadataValue.text("sft+dpo"), final_train_loss=dg.MetadataValue.float(0.68),
        final_eval_loss=dg.MetadataValue.float(0.66), eval_perplexity=dg.MetadataValue.null(),
        train_perplexity=dg.MetadataValue.null(), stages=dg.MetadataValue.json(stages),
        sft_final_eval_loss=dg.MetadataValue.float(2.2), dpo_final_eval_loss=dg.MetadataValue.float(0.66))
    md = adapter_metadata(reported)
    assert {"eval_perplexity", "train_perplexity", "final_eval_loss", "final_train_loss",
            "sft_final_eval_loss", "dpo_final_eval_loss"}.isdisjoint(md)
    value = {k: getattr(v, "value", v) for k, v in md.items()}
    assert value["sft_eval_loss"] == 2.2 and value["sft_eval_perplexity"] == 9.025
    assert value["sft_train_loss"] == 2.01 and value["dpo_eval_loss"] == 0.66
    assert "sft_* is the SFT stage's cross-entropy" in md["loss_objective"]
    assert list(md).index("loss_objective") < list(md).index("dpo_eval_loss") < list(md).index("adapter_path")
    dpo, _ = _reported(method=dg.MetadataValue.text("dpo"), final_eval_loss=dg.MetadataValue.float(0.61),
                       eval_perplexity=dg.MetadataValue.null())
    page = adapter_metadata(dpo)
    assert "eval_perplexity" not in page and "final_eval_loss" not in page
    assert getattr(page["dpo_eval_loss"], "value", page["dpo_eval_loss"]) == 0.61
    assert page["loss_objective"].startswith("DPO:")
    # the leaderboard reads the labelled page back
    from replyassets.core.leaderboard import losses_by_objective

    assert losses_by_objective(value) | {"method": "sft+dpo"} == {
        "method": "sft+dpo", "sft_train_loss": 2.01, "sft_eval_loss": 2.2, "sft_eval_perplexity": 9.025,
        "dpo_eval_loss": 0.66, "kto_eval_loss": None}


def test_lora_adapter_loss_curve_from_result_json_when_not_reported(tmp_path):
    from replyassets.defs.train import adapter_metadata

    reported, curve = _reported()
    del reported["loss_curve"]
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"loss_curve": curve}))
    md = adapter_metadata({**reported, "result_json": dg.MetadataValue.path(str(result))})
    assert DATA_URI in _md_text(md["loss"])
    assert "nothing to plot" in _md_text(adapter_metadata(_reported(loss_curve=dg.MetadataValue.json([]))[0])["loss"])
    assert Path(result).exists()


def test_breakable_lets_a_cell_wrap_long_tokens_and_reads_the_same():
    """Paths, hashes and snake_case names get zero-width break points, so a table cell wraps them
    instead of widening its table past the page; short words are left alone."""
    for text in ("interval_excludes_zero", "/tmp/x/data/curated/train.jsonl", "a" * 40, "short words only"):
        out = breakable(text)
        assert out.replace(ZWSP, "") == text
        assert all(len(part) <= 16 for word in out.split() for part in word.split(ZWSP)), out
    assert breakable("short words only") == "short words only" and breakable(None) == ""


def test_a_report_folder_takes_the_short_run_id_and_never_another_runs(tmp_path):
    from replyassets.defs.evaluate import report_folder

    run, retry_of_run = "12c4ff66-cdc8-464e-b03a-6a57d775a1b2", "12c4ff66-cdc8-464e-b03a-6a57d775a1b2"
    first = report_folder(tmp_path, run)
    assert first == tmp_path / "12c4ff66" and first.is_dir()
    (first / "report.md").write_text("first run's report")
    assert report_folder(tmp_path, retry_of_run) == first  # a retry of the run writes where it wrote
    other = "12c4ff66-0000-4000-8000-000000000000"  # another run with the same first 8 characters
    assert report_folder(tmp_path, other) == tmp_path / other
    assert (first / "report.md").read_text() == "first run's report"


def test_report_files_name_each_file_with_what_it_holds(tmp_path):
    from replyassets.defs.evaluate import REPORT_FILES, report_files_md

    folder = tmp_path / "12c4ff66"
    paths = {k: str(folder / f) for k, f in (("report_md", "report.md"), ("report_html", "report.html"),
                                                ("report_json", "report.json"))}
    sheet = {"sheet": str(folder / "human_eval_sheet.csv"), "key": str(folder / "human_eval_key.csv"), "n": 3}
    md = report_files_md(paths, sheet).value
    rows = md.splitlines()[2:]
    assert [r.split("`")[1] for r in rows] == ["report.html", "report.md", "report.json", "comparisons.json",
                                               "human_eval_sheet.csv", "human_eval_key.csv"]
    assert all(what in md for _, what in REPORT_FILES) and str(tmp_path) not in md  # names, not paths
    assert "human_eval" not in report_files_md(paths, None).value  # no sheet, no row for it


def test_pages_show_hashes_short_and_leave_other_values(tmp_path):
    from replyassets.defs.metadata import HASH_CHARS_SHOWN, shown_hashes

    full = "ba0f0504fc9f61afcf83a2b4474677af9dd82f92e9311acbab7dcd5963150d30"
    md = shown_hashes({"curated_set_hash": full, "adapter_sha256": dg.MetadataValue.text(full), "experiment": full,
                       "reward_model_sha256": ""}, ("curated_set_hash", "adapter_sha256", "reward_model_sha256"))
    assert md["curated_set_hash"] == md["adapter_sha256"] == full[:HASH_CHARS_SHOWN]
    assert md["experiment"] == full and md["reward_model_sha256"] == ""
