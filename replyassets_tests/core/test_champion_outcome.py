"""The champion's decision as an outcome (decision first, every candidate's reason, short
markdown) and the one definition of "a proven adapter" (``core/champion.py``, no Dagster)."""

from __future__ import annotations

from replyassets.core.champion import MARKDOWN_LIMIT, decision_outcome, ship_problems
from replyassets.training.checkpoints import dir_sha256


def _d(name: str, promote: bool, reason: str) -> dict:
    return {"candidate": name, "promote": promote, "reason": reason, "checks": []}


def test_a_refusal_reads_as_the_decision_first_with_every_candidate_reason():
    out = decision_outcome([_d("r8", False, "stays with the base model: r8 does not beat the base model (x)"),
                            _d("default", False, "stays with the base model: default does not beat the "
                                                 "retrieval baseline (" + "y" * 900 + ")")], None)
    assert out["refused"] and out["promoted"] is None and out["champion"] is None
    assert out["decision"].startswith("stays with the base model: r8 does not beat the base model (x); default ")
    md = out["markdown"]
    assert md.startswith("**Champion stays with the base model.**") and len(md) <= MARKDOWN_LIMIT
    assert "- `r8` refused: r8 does not beat the base model (x)" in md and "- `default` refused: default" in md
    assert [c["outcome"] for c in out["candidates"]] == ["refused", "refused"]


def test_a_promotion_and_no_candidate():
    out = decision_outcome([_d("twin", False, "stays with default: twin does not beat the default recipe default"),
                            _d("r8", True, "promote r8: it beats the base model and the retrieval baseline"),
                            _d("r16", True, "promote r16: it beats the base model and the retrieval baseline")],
                           "default")
    assert not out["refused"] and out["promoted"] == "r8" and out["champion"] == "r8"
    assert out["decision"] == "promoted r8: it beats the base model and the retrieval baseline"
    assert [c["outcome"] for c in out["candidates"]] == ["refused", "promoted", "passes, ranked lower"]
    none = decision_outcome([], "default")
    assert not none["refused"] and none["decision"] == "stays with default: no evaluated experiment other than the champion"


def test_only_a_gate_promoted_unchanged_adapter_is_proven(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    row = {"experiment": "r8", "adapter_path": str(folder), "adapter_sha256": dir_sha256(folder),
           "reason": "promote r8: it beats the base model and the retrieval baseline"}
    assert ship_problems(None, dir_sha256) == []  # the base model serves: nothing to ship
    assert ship_problems(row, dir_sha256) == []
    assert ship_problems({**row, "reason": "set by hand"}, dir_sha256)[0].startswith("r8 was not promoted by the gate")
    assert "does not exist" in ship_problems({**row, "adapter_path": str(tmp_path / "gone")}, dir_sha256)[0]
    assert "no adapter hash" in ship_problems({**row, "adapter_sha256": ""}, dir_sha256)[0]
    (folder / "adapter_config.json").write_text('{"r": 64}')
    assert "changed since r8 was judged" in ship_problems(row, dir_sha256)[0]
