"""What ``make demo`` prints about a run: failed ERROR checks (blocking or not) with their asset,
partition and message, partitions that produced nothing, and the summary's counts; and the quiet
console (library output goes to the log file).

The runs are real runs on a real (ephemeral) Dagster instance, read back by the demo's own code.
"""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from replyassets import demo

ROOT = Path(__file__).resolve().parents[2]
PARTS = dg.StaticPartitionsDefinition(["empty", "full"])


@dg.asset(
    partitions_def=PARTS,
    check_specs=[
        dg.AssetCheckSpec("non_empty", asset="pairs"),
        dg.AssetCheckSpec("style", asset="pairs"),
    ],
)
def pairs(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    n = 0 if context.partition_key == "empty" else 3
    return dg.MaterializeResult(
        metadata={"dagster/partition_row_count": n},
        check_results=[
            dg.AssetCheckResult(check_name="non_empty", passed=n > 0, severity=dg.AssetCheckSeverity.ERROR,
                                description=f"{n} pairs from 37736 items"),
            dg.AssetCheckResult(check_name="style", passed=False, severity=dg.AssetCheckSeverity.WARN,
                                description="a warning the console does not carry"),
        ],
    )


@dg.asset(check_specs=[dg.AssetCheckSpec("schema_ok", asset="gated", blocking=True)])
def gated() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"dagster/row_count": 5},
        check_results=[dg.AssetCheckResult(check_name="schema_ok", passed=False, description="column x is missing")],
    )


@dg.asset(check_specs=[dg.AssetCheckSpec("promotion_gate", asset="champion"),
                        dg.AssetCheckSpec("proven_champion", asset="champion", blocking=True)])
def champion() -> dg.MaterializeResult:
    """As replyassets/defs/champion.py: a refusal warns (non-blocking), it is an outcome."""
    return dg.MaterializeResult(
        metadata={"decision": "stays with the base model: r8 does not beat the base model"},
        check_results=[dg.AssetCheckResult(check_name="promotion_gate", passed=False,
                                           severity=dg.AssetCheckSeverity.WARN,
                                           description="stays with the base model: r8 does not beat the base model"),
                       dg.AssetCheckResult(check_name="proven_champion", passed=True,
                                           description="the base model serves: nothing to ship")],
    )


def _outcome(instance, assets, label: str, partition: str | None = None) -> demo.RunOutcome:
    result = dg.materialize(assets, instance=instance, partition_key=partition, raise_on_error=False,
                            tags=demo.TAGS)
    return demo.run_outcome(instance, instance.get_run_by_id(result.run_id), label)


def test_failed_error_checks_and_empty_partitions_are_printed_and_counted():
    with dg.DagsterInstance.ephemeral() as instance:
        empty = _outcome(instance, [pairs], "pairs [empty]", "empty")
        full = _outcome(instance, [pairs], "pairs [full]", "full")
        blocked = _outcome(instance, [gated], "gated")
        refused = _outcome(instance, [champion], "champion")

    # A successful run whose non-blocking ERROR check failed and whose partition wrote 0 rows:
    # not "ok"; the check is printed with its asset, partition and message; the WARN one is not.
    lines = demo.outcome_lines(empty, 1.0, "empty: missing")
    assert empty.success and empty.produced_nothing
    assert lines[0].startswith("  WARN pairs [empty] (1.0s, run "), lines
    assert "1 failed ERROR check(s)" in lines[0] and "produced nothing (0 rows: pairs)" in lines[0], lines
    assert lines[1:] == ["       CHECK FAILED pairs[empty] non_empty (non-blocking, ERROR): 0 pairs from 37736 items"]

    # The same asset with rows and only a failed WARN check: "ok", one line.
    assert demo.outcome_lines(full, 2.0, "full: missing") == [
        f"  ok   pairs [full] (2.0s, run {full.run_id[:8]}) — full: missing"]

    # A failed blocking ERROR check fails the run: FAILED, with the check.
    lines = demo.outcome_lines(blocked, 1.0, "missing")
    assert not blocked.success and not blocked.ok
    assert lines[0].startswith("  FAILED gated "), lines
    assert "       CHECK FAILED gated schema_ok (blocking, ERROR): column x is missing" in lines, lines
    assert lines[1] == ("       gated: dagster._core.errors.DagsterAssetCheckFailedError: 1 blocking asset check "
                        "failed with ERROR severity: gated: schema_ok"), lines

    # The promotion gate refusing is the champion's outcome, not a failure: a green run, "ok",
    # no CHECK FAILED line, and not counted; the decision is in the closing lines.
    assert refused.success and refused.ok and refused.error_checks == []
    assert demo.outcome_lines(refused, 1.0, "missing") == [
        f"  ok   champion (1.0s, run {refused.run_id[:8]}) — missing"]
    assert demo.closing_lines("| a |\n|---|", "stays with the base model: r8 does not beat the base model",
                              "nothing to ship: the base model serves")[-4:] == [
        "", "Champion: stays with the base model: r8 does not beat the base model",
        "Shipped : nothing to ship: the base model serves", "=" * 72]

    assert demo.summary_counts([empty, full]) == "2 runs; 1 failed ERROR check; 1 partition produced nothing"
    assert demo.summary_counts([empty, full, blocked, refused]) == (
        "4 runs; 2 failed ERROR checks; 1 partition produced nothing")


QUIET_PROGRAM = """
import logging, subprocess, sys, warnings
from pathlib import Path
from replyassets import demo

log = demo.quiet_console(Path(sys.argv[1]))
demo._say(f"log at {log}")
warnings.warn("a library FutureWarning", FutureWarning)
logging.getLogger("some.library").warning("a library log line")
print("a library print")
print("a library error", file=sys.stderr)
subprocess.run([sys.executable, "-c", "import sys; print('child out'); print('child err', file=sys.stderr)"], check=True)
demo._out("the summary line")
"""


def test_quiet_console_sends_library_output_to_the_log(tmp_path):
    proc = subprocess.run([sys.executable, "-c", QUIET_PROGRAM, str(tmp_path / "logs")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    [log] = (tmp_path / "logs").glob("demo-*.log")
    console = proc.stdout.splitlines()
    assert len(console) == 2, proc.stdout
    assert console[0].endswith(f"log at {log}") and console[1] == "the summary line", console
    assert proc.stderr == ""
    text = log.read_text()
    for line in ("FutureWarning: a library FutureWarning", "some.library: a library log line", "a library print",
                 "a library error", "child out", "child err", "the summary line"):
        assert line in text, (line, text)
