"""The evaluation report a person reads: report.md, report.html, report.json and PNG plots.

``write_report(out_dir, stats, items, sanity, meta)`` writes every file atomically (a temporary
file in the same folder, then ``os.replace``), plots first so a report never points at a missing
image. All text under evaluation is escaped (HTML) or neutralised (markdown table cells), so a
tweet cannot inject markup into the report.

``stats`` is ``compute_stats(...)`` plus ``"verdict": verdict(...)`` (both in core/stats.py). ``meta`` is free-form and shown as the header table; the keys this
module looks for: ``run_id``, ``base_model``, ``adapter_dir``, ``adapter_sha256``, ``judge_name``,
``judge_model``, ``judge_prompt_version``, ``judge_offline`` (bool: the report then says the judge
is offline and not an LLM), ``decoding`` (dict), ``human_agreement`` (dict from
``human_eval.judge_human_agreement``; the one key for it, ``HUMAN_AGREEMENT_KEY``), ``perplexity``
(dict), ``forgetting`` (dict). The plots come from ``core/plots.py`` (the same PNGs the UI shows).
"""

from __future__ import annotations

import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from replyassets.core.files import atomic_write

Block = tuple  # ("h1"|"h2"|"p"|"table"|"img"|"examples", ...)

# The one key under which ``meta`` carries the judge-human agreement (``eval_report`` writes it).
HUMAN_AGREEMENT_KEY = "human_agreement"
# The judge checked against real likes (core/preference.likes_agreement): one key, written by
# eval_report and read here.
JUDGE_LIKES_KEY = "judge_likes_agreement"


def judge_likes_flag(agreement: dict[str, Any] | None) -> str | None:
    """The verdict section's warning when the judge agrees with likes no better than chance
    (the interval reaches 0.5), or when there were no pairs to check it on; None otherwise."""
    if not isinstance(agreement, dict):
        return None
    n = agreement.get("pairs") or 0
    if not n:
        return "The judge could not be checked against likes: no test tweet has two replies with a clear like gap."
    if agreement.get("better_than_chance"):
        return None
    return (f"The judge agrees with real likes no better than chance: {fmt(agreement.get('agreement'))} "
            f"{_ci(agreement.get('ci_low'), agreement.get('ci_high'))} on {n} test tweets (0.5 = chance). "
            "Read its verdicts with that in mind.")


_atomic_write = atomic_write


REPORT_SIG_DIGITS = 4  # every figure of report.md/.html: 1872, 72, 193.5, 0.6311, 1.2e-05


def fmt(v: Any, digits: int = REPORT_SIG_DIGITS) -> str:
    """A figure as the report shows it: floats to ``digits`` significant digits in one style for
    every column (``72``, ``113``, ``193.5``; a tiny p-value as ``1.2e-05``, never ``0.000``),
    booleans yes/no, None and NaN as n/a, intervals as ``[lo, hi]``."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{float(f'{v:.{digits}g}'):g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x, digits) for x in v) + "]"
    return str(v)


def _ci(lo: Any, hi: Any) -> str:
    return "n/a" if lo is None or hi is None else f"[{fmt(lo)}, {fmt(hi)}]"


def _pass(p: Any) -> str:
    return "n/a" if p is None else ("PASS" if p else "FAIL")


# --------------------------------------------------------------------------- plots

def _plots(out_dir: Path, stats: dict[str, Any], items: pd.DataFrame) -> dict[str, Path]:
    """Write the plots of ``core.plots.report_plots`` (the same PNGs the UI embeds)."""
    from replyassets.core.plots import report_plots

    paths: dict[str, Path] = {}
    for name, png in report_plots(stats, items).items():
        _atomic_write(out_dir / name, png)
        paths[name] = out_dir / name
    return paths


# --------------------------------------------------------------------------- content

def _examples(items: pd.DataFrame, k: int) -> pd.DataFrame:
    if not len(items):
        return items
    parts = []
    for outcome, n in (("win", (k + 2) // 3), ("loss", (k + 2) // 3), ("tie", k), ("invalid", k)):
        parts.append(items[items["outcome"] == outcome].head(n))
    return pd.concat(parts).head(k)


def power_sentence(stats: dict[str, Any]) -> str:
    """The power of the paired test at this number of test tweets, and the tweets it would need."""
    d0 = stats.get("power_effect_size", 0.3)
    target = stats.get("power_target", 0.8)
    target_pct = f"{100 * float(target):.0f} %" if target is not None else "80 %"
    return (f"{fmt(stats.get('n_tweets', 0))} test tweets (the unit); the power to detect a paired effect "
            f"d = {float(d0 or 0.3):g} at this number is {fmt(stats.get('power_d03'))}; {fmt(stats.get('tweets_needed_d03'))} "
            f"tweets give {target_pct} power.")


def holm_sentence(meta: dict[str, Any]) -> str | None:
    """What the adjusted p of this report was adjusted over: the experiments evaluated on the same
    curated set when it ran (a later evaluation is not counted here; the leaderboard counts all)."""
    k = meta.get("comparisons_vs_base")
    if not k:
        return None
    names = [str(n) for n in meta.get("holm_experiments") or []]
    listed = f": {', '.join(names)}" if names else ""
    return (f"Adjusted p: Holm-Bonferroni adjusted over the {k} experiment{'s' if k != 1 else ''} evaluated on this "
            f"curated set so far (as of this report{listed}). Experiments evaluated later are not counted here; "
            "the leaderboard holds the adjustment over all of them, and the champion's gate uses that one.")


def settings_text(values: dict[str, Any]) -> str:
    """A small dict as ``key = value`` pairs (figures as ``fmt``): the decoding row reads as
    settings, not JSON."""
    return ", ".join(f"{k} = {fmt(v)}" for k, v in sorted(values.items()))


def _header_blocks(meta: dict[str, Any]) -> list[Block]:
    """The title, the judge and the run's identifying fields."""
    b: list[Block] = []
    offline = bool(meta.get("judge_offline"))
    judge_label = " / ".join(str(x) for x in (meta.get("judge_name", meta.get("judge", "judge")),
                                              meta.get("judge_model")) if x)
    if meta.get("judge_prompt_version"):  # named when known, never "(prompt ?)"
        judge_label += f" (prompt {meta['judge_prompt_version']})"
    b.append(("h1", "Evaluation report: adapter vs base model"))
    if offline and str(meta.get("judge_name", "")).startswith("reward-model"):
        kind = ("OFFLINE: a reward model learned from likes (Bradley-Terry, core/reward_model.py), not an LLM. "
                "Its numbers say which reply readers of such tweets would like more, as far as the train split's "
                "likes teach it; its agreement with held-out likes is in the section on judges.")
    elif offline:
        kind = ("OFFLINE: a deterministic reference-based similarity judge, not an LLM. Its numbers say how close "
                "replies come to the real high-engagement replies; they are not a quality judgement by a model.")
    else:
        kind = "online: an LLM judge through the Anthropic API, temperature 0, both orders."
    b.append(("p", f"Judge: {judge_label}, " + kind))
    head = [(k, fmt(meta[k]) if not isinstance(meta[k], dict) else settings_text(meta[k]))
            for k in ("run_id", "profile", "base_model", "adapter_dir", "adapter_path", "adapter_sha256",
                      "curated_set_hash", "judge", "judge_name", "judge_model", "judge_prompt_version",
                      "judge_offline", "decoding", "test_tweets", "generated_at") if k in meta]
    if head:
        b.append(("table", ["field", "value"], head))
    return b


def _verdict_blocks(v: dict[str, Any], meta: dict[str, Any]) -> list[Block]:
    """The verdict, its criteria, the judge flag and the Holm note."""
    b: list[Block] = []
    b.append(("h2", f"Verdict: {v.get('label', 'n/a')}"))
    b.append(("p", v.get("summary", "No verdict computed.")))
    flag = judge_likes_flag(meta.get(JUDGE_LIKES_KEY))
    if flag:
        b.append(("p", f"JUDGE FLAG: {flag}"))
    crit = v.get("criteria", {})
    if crit:
        b.append(("table", ["criterion", "value", "threshold", "result", "note"],
                  [(k, fmt(c.get("value")), c.get("threshold", ""), _pass(c.get("passed")), c.get("note", ""))
                   for k, c in crit.items()]))
    holm = holm_sentence(meta)
    if holm:
        b.append(("p", holm))
    return b


def _pairwise_blocks(stats: dict[str, Any], plots: dict[str, Path]) -> list[Block]:
    """Wins, ties, losses and the win rates of the position-swapped judgement."""
    b: list[Block] = []
    b.append(("h2", "Pairwise judgement (position-swapped)"))
    b.append(("table", ["measure", "value"], [
        ("items judged (valid / invalid)", f"{stats.get('n_valid', 0)} / {stats.get('n_invalid', 0)}"),
        ("adapter wins / ties / losses", f"{stats.get('wins', 0)} / {stats.get('ties', 0)} / {stats.get('losses', 0)}"),
        ("win rate (ties count half)", fmt(stats.get("win_rate"))),
        ("95 % bootstrap interval", _ci(stats.get("win_rate_ci_low"), stats.get("win_rate_ci_high"))),
        ("length-controlled win rate", fmt(stats.get("lc_win_rate"))),
        ("length coefficient (>0: longer preferred)", fmt(stats.get("lc_length_coef"))),
        ("position-bias rate (verdict flipped with order)", fmt(stats.get("position_bias_rate"))),
        ("flags", ", ".join(stats.get("flags", [])) or "none"),
    ]))
    if "outcomes.png" in plots:
        b.append(("img", "outcomes.png", "pairwise outcomes"))
    return b


def _score_blocks(stats: dict[str, Any], plots: dict[str, Path]) -> list[Block]:
    """Per-reply scores, the paired tests and the power."""
    b: list[Block] = []
    b.append(("h2", "Per-reply scores (1-10)"))
    b.append(("table", ["measure", "base", "adapter"], [
        ("mean", fmt(stats.get("base_score_mean")), fmt(stats.get("adapter_score_mean"))),
        ("standard deviation", fmt(stats.get("base_score_std")), fmt(stats.get("adapter_score_std"))),
    ]))
    b.append(("table", ["test", "value"], [
        ("scored pairs", fmt(stats.get("n_scored"))),
        ("mean difference (adapter - base), 95 % CI",
         f"{fmt(stats.get('score_diff_mean'))} {_ci(stats.get('score_diff_ci_low'), stats.get('score_diff_ci_high'))}"),
        ("relative improvement", fmt(stats.get("relative_improvement"))),
        ("Wilcoxon signed-rank: W, p", f"{fmt(stats.get('wilcoxon_stat'))}, {fmt(stats.get('wilcoxon_p'))}"),
        ("Mann-Whitney U: U, p", f"{fmt(stats.get('mannwhitney_u'))}, {fmt(stats.get('mannwhitney_p'))}"),
        ("Cohen's d, 95 % CI", f"{fmt(stats.get('cohens_d'))} {_ci(stats.get('cohens_d_ci_low'), stats.get('cohens_d_ci_high'))}"),
        ("Cohen's dz (paired)", fmt(stats.get("cohens_dz"))),
    ]))
    b.append(("p", "Statistical power: " + power_sentence(stats)))
    if "scores.png" in plots:
        b.append(("img", "scores.png", "score distributions"))
    return b


def _sanity_blocks(sanity: dict[str, Any], meta: dict[str, Any], plots: dict[str, Path]) -> list[Block]:
    """The sanity tier: per-model measures, perplexity and forgetting."""
    b: list[Block] = []
    b.append(("h2", "Sanity tier"))
    models = [m for m in ("base", "adapter", "reference") if isinstance(sanity.get(m), dict)]
    if models:
        keys = list(sanity[models[0]].keys())
        b.append(("table", ["measure", *models], [(k, *[fmt(sanity[m].get(k)) for m in models]) for k in keys]))
    extra = [k for k in sanity if k not in ("base", "adapter", "reference")]
    extra += [k for k in ("perplexity", "forgetting") if k in meta and k not in extra]
    for key in extra:
        d = sanity.get(key) or meta.get(key)
        if isinstance(d, dict) and d:
            b.append(("p", f"{key}:"))
            b.append(("table", ["measure", "value"], [(k, fmt(x)) for k, x in d.items()]))
    if "lengths.png" in plots:
        b.append(("img", "lengths.png", "reply lengths"))
    return b


def _likes_blocks(meta: dict[str, Any]) -> list[Block]:
    """The judge's agreement with real likes."""
    b: list[Block] = []
    likes = meta.get(JUDGE_LIKES_KEY)
    b.append(("h2", "The judge against real likes"))
    if isinstance(likes, dict) and likes.get("pairs"):
        b.append(("p", "On test tweets with two real replies and a clear like gap (the preference-pair rules: "
                       "like ratio, minimum likes, the more-liked reply posted no earlier), the judge chose "
                       "between the two replies in both orders without seeing likes, authors or a reference. "
                       "Agreement: 1 when it picks the reply readers liked more in both orders, 0.5 for a tie "
                       "or a split verdict; one pair per tweet; 0.5 = chance."))
        b.append(("table", ["measure", "value"], [
            ("tweets (one pair each)", fmt(likes.get("pairs"))),
            ("agreement with likes", fmt(likes.get("agreement"))),
            (f"{int(100 * float(likes.get('confidence') or 0.95))} % bootstrap interval",
             _ci(likes.get("ci_low"), likes.get("ci_high"))),
            ("agree / ties / disagree", f"{likes.get('agree', 0)} / {likes.get('ties', 0)} / {likes.get('disagree', 0)}"),
            ("verdict flipped with the order", fmt(likes.get("position_flips"))),
            ("better than chance", "yes" if likes.get("better_than_chance") else "NO"),
        ]))
    else:
        b.append(("p", "Not measured: no test tweet has two replies with a clear like gap."))
    return b


def _human_blocks(meta: dict[str, Any]) -> list[Block]:
    """The judge's agreement with human raters."""
    b: list[Block] = []
    ha = meta.get(HUMAN_AGREEMENT_KEY)
    b.append(("h2", "Human raters"))
    if isinstance(ha, dict) and ha.get("n"):
        b.append(("p", "Agreement between the judge's outcome and each human rating of the same pair:"))
        b.append(("table", ["measure", "value"], [(k, fmt(x)) for k, x in ha.items() if not isinstance(x, dict)]))
        confusion = ha.get("confusion_judge_rows_human_cols")
        if isinstance(confusion, dict) and confusion:
            cols = list(next(iter(confusion.values())).keys())
            b.append(("table", ["judge (rows) / human (columns)", *cols],
                      [(r, *[fmt(confusion[r].get(c)) for c in cols]) for r in confusion]))
    else:
        b.append(("p", "No human ratings imported yet. This report's folder holds the blinded sheet "
                       "(human_eval_sheet.csv) for raters and its key (human_eval_key.csv, keep it from them); "
                       "import a filled sheet with `replyassets human-eval import <sheet> --key human_eval_key.csv`, "
                       "then materialize eval_report again."))
    return b


def _cost_blocks(stats: dict[str, Any]) -> list[Block]:
    """Tokens and estimated cost."""
    b: list[Block] = []
    b.append(("h2", "Cost"))
    b.append(("table", ["measure", "value"], [
        ("tokens (this run, cache hits excluded)", fmt(stats.get("total_tokens"))),
        ("estimated cost, USD", fmt(stats.get("total_cost_usd"))),
    ]))
    return b


def _section_blocks(meta: dict[str, Any]) -> list[Block]:
    """Sections the caller adds."""
    b: list[Block] = []
    # Sections the caller adds (the comparisons with every baseline, the leaderboard at the
    # time of this evaluation): {"title", "columns", "rows", "note"}.
    for section in meta.get("sections") or []:
        b.append(("h2", str(section["title"])))
        if section.get("note"):
            b.append(("p", str(section["note"])))
        b.append(("table", [str(c) for c in section["columns"]],
                  [tuple(fmt(v) for v in row) for row in section["rows"]]))
    return b


def _blocks(stats: dict[str, Any], items: pd.DataFrame, sanity: dict[str, Any], meta: dict[str, Any],
            plots: dict[str, Path], n_examples: int) -> list[Block]:
    v = stats.get("verdict") or meta.get("verdict") or {}
    return [
        *_header_blocks(meta),
        *_verdict_blocks(v, meta),
        *_pairwise_blocks(stats, plots),
        *_score_blocks(stats, plots),
        *_sanity_blocks(sanity, meta, plots),
        *_likes_blocks(meta),
        *_human_blocks(meta),
        *_cost_blocks(stats),
        *_section_blocks(meta),
        ("h2", "Example replies"),
        ("examples", _examples(items, n_examples)),
    ]


def _md_cell(x: Any) -> str:
    s = str(x).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")
    return html.escape(s, quote=False).replace("&lt;br&gt;", "<br>")


def _render_md(blocks: list[Block]) -> str:
    out: list[str] = []
    for blk in blocks:
        kind = blk[0]
        if kind == "h1":
            out.append(f"# {_md_cell(blk[1])}\n")
        elif kind == "h2":
            out.append(f"## {_md_cell(blk[1])}\n")
        elif kind == "p":
            out.append(_md_cell(blk[1]) + "\n")
        elif kind == "table":
            headers, rows = blk[1], blk[2]
            out.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            out.append("|" + "---|" * len(headers))
            out.extend("| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows)
            out.append("")
        elif kind == "img":
            out.append(f"![{blk[2]}]({blk[1]})\n")
        elif kind == "examples":
            ex = blk[1]
            if not len(ex):
                out.append("No items.\n")
            for _, r in ex.iterrows():
                out.append(f"### Item {_md_cell(r['item_id'])}: adapter {r['outcome']}\n")
                out.append("| | text | score |\n|---|---|---|")
                out.append(f"| tweet | {_md_cell(r.get('tweet', ''))} | |")
                out.append(f"| base | {_md_cell(r.get('base_reply', ''))} | {fmt(r.get('base_score'))} |")
                out.append(f"| adapter | {_md_cell(r.get('adapter_reply', ''))} | {fmt(r.get('adapter_score'))} |")
                if r.get("reference"):
                    out.append(f"| real reply | {_md_cell(r.get('reference', ''))} | |")
                out.append("")
    return "\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.8em 0;max-width:100%}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f3f3f3}.ex td{max-width:420px;white-space:pre-wrap;word-break:break-word}img{max-width:100%}"""


def _render_html(blocks: list[Block]) -> str:
    e = html.escape
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title>",
           f"<style>{_CSS}</style></head><body>"]
    for blk in blocks:
        kind = blk[0]
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{e(str(blk[1]))}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{e(str(blk[1]))}</p>")
        elif kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in blk[1]) + "</tr>")
            out.extend("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in blk[2])
            out.append("</table>")
        elif kind == "img":
            out.append(f"<p><img src='{e(blk[1])}' alt='{e(blk[2])}'></p>")
        elif kind == "examples":
            ex = blk[1]
            if not len(ex):
                out.append("<p>No items.</p>")
            out.append("<table class='ex'><tr><th>item</th><th>tweet</th><th>base</th><th>adapter</th>"
                       "<th>real reply</th><th>outcome</th><th>scores (base / adapter)</th></tr>")
            for _, r in ex.iterrows():
                out.append("<tr>" + "".join(f"<td>{e(str(x))}</td>" for x in (
                    r["item_id"], r.get("tweet", ""), r.get("base_reply", ""), r.get("adapter_reply", ""),
                    r.get("reference", ""), r["outcome"], f"{fmt(r.get('base_score'))} / {fmt(r.get('adapter_score'))}",
                )) + "</tr>")
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return None
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        try:
            return _jsonable(x.item())
        except (ValueError, AttributeError):
            return str(x)
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def write_report(out_dir: Path, stats: dict[str, Any], items: pd.DataFrame, sanity: dict[str, Any],
                 meta: dict[str, Any], *, n_examples: int = 10) -> dict[str, Any]:
    """Write report.md, report.html, report.json and plots under ``out_dir``; return their paths.

    Returns ``{"dir", "markdown"|"report_md", "html"|"report_html", "json"|"report_json",
    "plots": {name: path}}`` (paths as str). The verdict is read from ``stats["verdict"]`` or
    ``meta["verdict"]``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "generated_at": meta.get("generated_at") or datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")}
    items = items if items is not None else pd.DataFrame(columns=["item_id", "outcome"])
    plots = _plots(out_dir, stats, items)
    blocks = _blocks(stats, items, sanity or {}, meta, plots, n_examples)
    md, htm, js = out_dir / "report.md", out_dir / "report.html", out_dir / "report.json"
    _atomic_write(js, json.dumps(_jsonable({"stats": stats, "sanity": sanity, "meta": meta}), indent=2,
                                 sort_keys=True, allow_nan=False).encode())
    _atomic_write(md, _render_md(blocks).encode("utf-8", "replace"))
    _atomic_write(htm, _render_html(blocks).encode("utf-8", "replace"))
    return {"dir": str(out_dir), "markdown": str(md), "html": str(htm), "json": str(js),
            "report_md": str(md), "report_html": str(htm), "report_json": str(js),
            "plots": {k: str(v) for k, v in plots.items()}}


def verdict_line(v: dict[str, Any] | None) -> str:
    """The verdict in one readable line: ``NOT SHOWN BETTER — 2 of 3 criteria pass`` (the required ones)."""
    v = v or {}
    label = str(v.get("label") or "no verdict").upper()
    total = int(v.get("criteria_total") or 0)
    if not total:
        return label
    n_pass = int(v.get("criteria_passed") or 0)
    unknown = sum(1 for c in (v.get("criteria") or {}).values() if c.get("passed") is None and c.get("required", True))
    line = f"{label} — " + (f"all {total} criteria pass" if n_pass == total else f"{n_pass} of {total} criteria pass")
    return line + (f", {unknown} not computable" if unknown else "")


def ui_metadata(stats: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Flat key numbers for the Dagster UI (plain str/int/float/bool; None where not computable)."""
    meta = meta or {}
    v = stats.get("verdict") or meta.get("verdict") or {}
    keys = ("n_items", "n_valid", "n_invalid", "wins", "ties", "losses", "win_rate", "win_rate_ci_low",
            "win_rate_ci_high", "lc_win_rate", "position_bias_rate", "base_score_mean", "adapter_score_mean",
            "relative_improvement", "wilcoxon_p", "mannwhitney_p", "cohens_d", "cohens_d_ci_low",
            "cohens_d_ci_high", "total_tokens", "total_cost_usd", "insufficient_data")
    out: dict[str, Any] = {k: stats.get(k) for k in keys}
    out["verdict"] = v.get("label")
    out["verdict_passed"] = bool(v.get("passed", False))
    out["verdict_summary"] = v.get("summary")
    out["criteria_passed"] = f"{v.get('criteria_passed', 0)}/{v.get('criteria_total', 0)}"
    out["flags"] = ", ".join(stats.get("flags", []))
    judge_offline = bool(meta.get("judge_offline"))
    out["judge"] = f"{meta.get('judge_name', meta.get('judge', '?'))} ({'offline' if judge_offline else 'online'}) {meta.get('judge_model', '')}".strip()
    return out
