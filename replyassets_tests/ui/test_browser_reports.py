"""What `make demo` leaves behind, seen in the Dagster UI in a real browser (Playwright driving
Debian's chromium; never a downloaded one).

The project is the session's ``sample_demo`` (ui/conftest.py): the full config/queries.yaml
(enough pairs for curated_set's blocking checks to pass); before the server starts,
`python -m replyassets.demo` materializes the whole graph (the LoRA training on the tiny model and
eval_report included) and one review decision is written.
Then, against a real `dg dev` (webserver + daemon), the tests
1. show lora_adapter's loss plot as a decoded PNG in the metadata table without a click
   (and the full-size loss curve's file beside it);
2. show eval_report's verdict line without scrolling;
3. show the review decision recorded by the daemon's observe_sources sensor on the
   review_decisions page (nothing else observes it once the server runs);
4. re-execute a `make demo` run of one raw_tweets partition from its run page, to success.
Screenshots of every step go to test-artifacts/ui/reports/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import re
import time

import pytest

from replyassets_tests.ui import test_browser as browser
from replyassets_tests.ui.conftest import (
    ARTIFACTS,
    SAMPLE_DEMO_GROUP,
    DagsterDev,
    runs_with_tag,
)
from replyassets_tests.ui.test_browser import (
    UI_TIMEOUT_MS,
    PlaywrightTimeoutError,
    goto,
    wait_for_run,
)

chromium_path = browser.chromium_path  # the fixture: Debian's chromium, or a failure naming why

pytestmark = [pytest.mark.browser, pytest.mark.slow, SAMPLE_DEMO_GROUP]

REPORTS = ARTIFACTS / "reports"
DEMO_TIMEOUT_S = 1500
SENSOR_TIMEOUT_S = 150
DEMO_TAG = ("replyassets/launched_by", "make-demo")
VERDICT = re.compile(r"^(SHOWN BETTER|NOT SHOWN BETTER|INCONCLUSIVE|NO VERDICT)\b")

SOURCE_EVENTS_QUERY = """
query SourceEvents($path: [String!]!, $after: String) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset {
      assetMaterializations(afterTimestampMillis: $after, limit: 10) {
        timestamp runId metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
      assetObservations(afterTimestampMillis: $after, limit: 10) {
        timestamp runId metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}
"""

SENSOR_TICKS_QUERY = """
{
  sensorOrError(sensorSelector: {repositoryLocationName: "replyassets", repositoryName: "__repository__",
                                 sensorName: "observe_sources"}) {
    __typename
    ... on Sensor { sensorState { status ticks(limit: 10) { status timestamp skipReason error { message } } } }
    ... on PythonError { message }
  }
}
"""

DEMO_RUNS_QUERY = """
query DemoRuns($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status jobName assetSelection { path } tags { key value } } }
    ... on PythonError { message }
  }
}
"""


SNAPSHOTS_QUERY = """
query Snapshots($runId: ID!) {
  runOrError(runId: $runId) { ... on Run { pipelineSnapshotId parentPipelineSnapshotId } }
  pipelineOrError(params: {repositoryLocationName: "replyassets", repositoryName: "__repository__",
                           pipelineName: "__ASSET_JOB"}) {
    __typename ... on Pipeline { pipelineSnapshotId }
  }
}
"""


def shot(page, name: str):
    return browser.shot(page, f"reports/{name}")


def step(page, server: DagsterDev, name: str):
    return browser.step(page, server, f"reports-{name}")


@pytest.fixture(scope="module")
def ui_project(sample_demo):
    """The session's `make demo` project (ui/conftest.py: the full config/queries.yaml)."""
    return sample_demo


@pytest.fixture(scope="module")
def ui_prepare(sample_demo):
    """What `sample_demo` put in place before the server started: the review decision."""
    return sample_demo.demo


@pytest.fixture(scope="module")
def dagster_ui(sample_demo_ui):
    return sample_demo_ui


@pytest.fixture(scope="module")
def page(chromium_path, dagster_ui, tmp_path_factory):
    REPORTS.mkdir(parents=True, exist_ok=True)
    for old in REPORTS.glob("*.png"):
        old.unlink()
    for old in ARTIFACTS.glob("FAILED-reports-*.png"):
        old.unlink()
    profile = tmp_path_factory.mktemp("chromium_profile_reports")
    with browser.chromium_page(chromium_path, profile) as pg:
        yield pg


def metadata_row(page, label: str):
    """The row of the latest event's metadata table whose first cell is ``label``."""
    return page.get_by_role("row").filter(
        has=page.get_by_role("cell", name=label, exact=True)
    ).first


# ----------------------------------------------------------------------------- the tests


def _decoded_image(page, image) -> tuple[list[int], dict]:
    image.wait_for(state="visible", timeout=30_000)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=30_000
    )
    return image.evaluate("img => [img.naturalWidth, img.naturalHeight]"), image.bounding_box()


@pytest.mark.timeout(2400)  # the first test also pays for the module fixture: a whole `make demo`
def test_lora_adapter_page_shows_the_loss_curve_image(page, dagster_ui, ui_prepare):
    server = dagster_ui
    with step(page, server, "lora-adapter-page"):
        goto(page, server, "/assets/lora_adapter")
        page.get_by_text("Latest materialization").first.wait_for()
        row = metadata_row(page, "loss")
        row.wait_for()
        row.scroll_into_view_if_needed()
        shot(page, "01-lora-adapter-page")

    with step(page, server, "loss-sparkline-without-a-click"):
        # Dagster renders a markdown value in the metadata table only when it is under 1,000
        # characters (ui-core MetadataEntry); the "loss" sparkline is, so its image is on the
        # page as it loads: nothing is clicked here.
        assert row.get_by_text("[Show Markdown]").count() == 0, "the loss sparkline is behind [Show Markdown]"
        natural, box = _decoded_image(page, row.locator("img[src^='data:image/png;base64,']").first)
        shot(page, "02-lora-adapter-loss-sparkline")
        print(f"loss sparkline inline: natural {natural}, shown {box}")
        assert natural[0] > 0 and natural[1] > 0, natural
        assert box and box["width"] > 0 and box["height"] > 0, box
        viewport = page.viewport_size
        assert box["y"] + box["height"] > 0 and box["y"] < viewport["height"], (box, viewport)

    with step(page, server, "loss-curve-full-size"):
        # the full-size plot is a file in the adapter's folder, its path shown beside the plot
        # (no plot behind "[Show Markdown]")
        full = metadata_row(page, "loss_curve_plot")
        full.scroll_into_view_if_needed()
        assert full.get_by_text(re.compile(r"loss_curve\.png")).count() >= 1, full.inner_text()
        shot(page, "02b-lora-adapter-loss-curve-path")


def test_eval_report_page_shows_the_verdict_without_scrolling(page, dagster_ui, ui_prepare):
    server = dagster_ui
    with step(page, server, "eval-report-verdict"):
        goto(page, server, "/assets/eval_report")
        page.get_by_text("Latest materialization").first.wait_for()
        verdict = page.get_by_text(re.compile(r"^(SHOWN BETTER|NOT SHOWN BETTER|INCONCLUSIVE)( — .*)?$")).first
        verdict.wait_for(state="visible")
        shot(page, "03-eval-report-verdict")
        box = verdict.bounding_box()
        viewport = page.viewport_size
        scrolled = page.evaluate("() => [window.scrollX, window.scrollY]")
        text = verdict.inner_text()
        print(f"verdict shown: {text!r} at {box} (viewport {viewport}, scroll {scrolled})")
        assert VERDICT.match(text), text
        # the first row of the metadata table under its "Key | Timestamp | Value" header
        table = page.locator("table").filter(has=page.get_by_text("Key", exact=True)).first
        keys = [r.get_by_role("cell").first.inner_text().strip() for r in table.get_by_role("row").all()[:2]]
        assert keys == ["Key", "verdict"], keys
        assert scrolled == [0, 0], scrolled
        assert box is not None, "the verdict has no layout box"
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (box, viewport)
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (box, viewport)


def _decision_events(server: DagsterDev, after_s: float) -> list[tuple[str, dict]]:
    data = server.graphql(SOURCE_EVENTS_QUERY, {"path": ["review_decisions"], "after": str(int(after_s * 1000))})
    asset = data["assetOrError"]
    assert asset["__typename"] == "Asset", asset
    out = []
    for kind in ("assetObservations", "assetMaterializations"):
        for e in asset[kind]:
            meta = {m["label"]: m.get("intValue") for m in e["metadataEntries"]}
            out.append((kind, {"timestamp_s": float(e["timestamp"]) / 1000, "runId": e["runId"], **meta}))
    return out


def test_review_decisions_page_shows_the_sensor_observation(page, dagster_ui, ui_prepare):
    server = dagster_ui
    expected = ui_prepare["decisions"]
    # Nothing but the daemon's observe_sources sensor records review_decisions once the server
    # runs: an event after the server started, with the new count, is the sensor's.
    with step(page, server, "sensor-observation"):
        deadline = time.monotonic() + SENSOR_TIMEOUT_S
        events: list = []
        while time.monotonic() < deadline:
            events = [(k, e) for k, e in _decision_events(server, server.started_at)
                      if e["timestamp_s"] >= server.started_at and e.get("decisions") == expected]
            if {k for k, _ in events} == {"assetObservations", "assetMaterializations"}:
                break
            time.sleep(5)
        ticks = server.graphql(SENSOR_TICKS_QUERY)["sensorOrError"]
        print(f"review_decisions events after the server start: {events}\nobserve_sources ticks: {ticks}")
        assert {k for k, _ in events} == {"assetObservations", "assetMaterializations"}, (
            f"no observation and materialization of review_decisions with decisions={expected} within "
            f"{SENSOR_TIMEOUT_S}s of the server start; sensor: {ticks}"
        )
        # ...and the sensor's tick says what it recorded.
        said = [t.get("skipReason") or "" for t in ticks["sensorState"]["ticks"]]
        assert any(f"review_decisions (decisions: {expected})" in m for m in said), said

    with step(page, server, "review-decisions-page"):
        goto(page, server, "/assets/review_decisions")
        row = metadata_row(page, "decisions")
        row.wait_for()
        row.scroll_into_view_if_needed()
        shot(page, "04-review-decisions-observed")
        cells = [c.strip() for c in row.get_by_role("cell").all_inner_texts()]
        print(f"review_decisions row on the page: {cells}")
        # Key, Timestamp, Value
        assert cells[0] == "decisions" and cells[-1] == str(expected), cells
        page.get_by_text(re.compile(r"^Latest (observation|materialization)$")).first.wait_for()


def _demo_run_of_one_partition(server: DagsterDev) -> dict:
    data = server.graphql(DEMO_RUNS_QUERY, {"filter": {"tags": [{"key": DEMO_TAG[0], "value": DEMO_TAG[1]}]}})
    runs = data["runsOrError"]
    assert runs["__typename"] == "Runs", runs
    for run in runs["results"]:
        selection = {"/".join(k["path"]) for k in run["assetSelection"] or []}
        tags = {t["key"]: t["value"] for t in run["tags"]}
        if "raw_tweets" in selection and tags.get("dagster/partition") and run["status"] == "SUCCESS":
            return {**run, "selection": selection, "partition": tags["dagster/partition"]}
    raise AssertionError(f"no successful make-demo run of one raw_tweets partition among {len(runs['results'])} runs")


def test_a_make_demo_run_is_re_executed_from_the_ui(page, dagster_ui, ui_prepare):
    server = dagster_ui
    with step(page, server, "demo-run-page"):
        parent = _demo_run_of_one_partition(server)
        print(f"make-demo run {parent['runId']}: job {parent['jobName']}, assets {sorted(parent['selection'])}, "
              f"partition {parent['partition']}")
        goto(page, server, f"/runs/{parent['runId']}")
        page.get_by_text("Success", exact=True).first.wait_for()
        page.get_by_text(f"partition: {parent['partition']}").first.wait_for()
        # The run header's "<n> assets" tag: "View list" opens the list of the run's assets.
        page.get_by_text(f"{len(parent['selection'])} assets", exact=True).first.click()
        page.get_by_text("View list", exact=True).first.click()
        assets = page.get_by_role("dialog").first
        assets.wait_for()
        for asset in sorted(parent["selection"]):
            assets.get_by_text(asset, exact=True).first.wait_for()
        shot(page, "05-make-demo-run-assets")
        page.keyboard.press("Escape")
        assets.wait_for(state="hidden")
        shot(page, "06-make-demo-run")

    with step(page, server, "re-execute"):
        button = page.get_by_role("button", name=re.compile(r"Re-execute all")).first
        button.wait_for()
        # The UI matches the run to the loaded job by the snapshot the run's job was subset from;
        # without a match the button carries a warning icon and the tooltip 'The loaded version
        # of "__ASSET_JOB" may be different than the one used for the original run.'
        button.hover()
        page.wait_for_timeout(1_500)
        tooltips = [t for t in page.locator("[role=tooltip], .bp5-tooltip").all_inner_texts() if t.strip()]
        snap = server.graphql(SNAPSHOTS_QUERY, {"runId": parent["runId"]})
        print(f"re-execute button {button.inner_text()!r}, tooltips {tooltips}, snapshots {snap}")
        shot(page, "07-re-execute-button")
        loaded = snap["pipelineOrError"]
        assert loaded["__typename"] == "Pipeline", loaded
        assert snap["runOrError"]["parentPipelineSnapshotId"] == loaded["pipelineSnapshotId"], snap
        assert not [t for t in tooltips if "may be different" in t or "could not be found" in t], tooltips
        button.click()
        dialog = page.get_by_role("dialog")
        with contextlib.suppress(PlaywrightTimeoutError):
            dialog.first.wait_for(timeout=5_000)
            shot(page, "08-re-execute-dialog")
            print(f"re-execute dialog: {dialog.first.inner_text()!r}")
            dialog.first.get_by_role("button", name=re.compile(r"^(Confirm|Re-execute|Launch)")).last.click()
        deadline = time.monotonic() + 60
        children: list = []
        while time.monotonic() < deadline and not children:
            children = runs_with_tag(server, "dagster/parent_run_id", parent["runId"])
            time.sleep(1)
        assert len(children) == 1, children
        child_id = children[0]["runId"]
        page.wait_for_url(re.compile(rf"/runs/{child_id}"), timeout=UI_TIMEOUT_MS)
        shot(page, "09-re-executed-run")

    with step(page, server, "re-executed-run-success"):
        status = wait_for_run(server, child_id)
        goto(page, server, f"/runs/{child_id}")
        page.get_by_text("Success", exact=True).first.wait_for()
        page.get_by_text(f"partition: {parent['partition']}").first.wait_for()
        shot(page, "10-re-executed-run-success")
        assert status == "SUCCESS", f"{status}:\n{server.log_tail()}"
        tags = {t["key"]: t["value"] for t in children[0]["tags"]}
        assert tags.get("dagster/partition") == parent["partition"], tags
        assert tags.get("dagster/root_run_id") == parent["runId"], tags
