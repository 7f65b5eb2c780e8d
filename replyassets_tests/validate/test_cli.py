"""``replyassets validate FILE`` as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from replyassets_tests.validate.conftest import (
    GOOD_REPLY,
    build_tiny_detoxify_checkpoint,
    make_pairs,
)

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, stdin=None, tmp_path=None):
    env = {**os.environ, "REPLYASSETS_PROFILE": "local", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if tmp_path is not None:
        env["REPLYASSETS_DATA_DIR"] = str(tmp_path)
    return subprocess.run([sys.executable, "-m", "replyassets.cli", "validate", *args], check=False, cwd=ROOT,
                          capture_output=True, text=True, input=stdin, env=env, timeout=600)


@pytest.mark.slow
def test_cli_prints_every_row_with_verdict_scores_and_clean_text(tmp_path):
    pairs = make_pairs([
        GOOD_REPLY + " sooo true #MachineLearning",
        "gm ser, wagmi, stay locked in frens, the airdrop is coming soon for all holders",
        "la verdad no entiendo por qué todos usan microservicios para proyectos tan pequeños",
    ])
    lines = [json.dumps(r, default=str) for r in pairs.to_dict("records")]
    # a row with only a reply: optional fields missing -> a clear rejection, not a crash
    lines.append(json.dumps({"reply_id": "r9", "reply": GOOD_REPLY}))
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n\n")
    proc = run_cli(str(path), "--summary", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 4
    assert [r["valid"] for r in rows] == [True, False, False, False]
    assert rows[0]["reasons"] == [] and rows[0]["reply_clean"].endswith("so true Machine Learning")
    assert "spam" in rows[1]["reasons"] and "language" in rows[2]["reasons"]
    assert rows[3]["reasons"][:1] == ["missing_fields"] and "engagement" in rows[3]["reasons"]
    assert rows[3]["tweet"] is None and rows[3]["reply_clean"] == GOOD_REPLY
    for r in rows:
        assert isinstance(r["valid"], bool) and isinstance(r["reasons"], list)
        assert 0.0 <= r["lang_confidence"] <= 1.0 and 0.0 <= r["toxicity"] <= 1.0
        assert {"meaningful_words", "generic_ratio", "tweet_clean", "reply_id"} <= set(r)
    assert rows[0]["tweet_created_at"].startswith("2025-09-29T21:24:45")
    summary = json.loads(proc.stderr.strip().splitlines()[-1])
    assert summary["rows_in"] == 4 and summary["valid"] == 1


@pytest.mark.slow
def test_cli_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"reply": "ok"}\nnot json\n')
    proc = run_cli(str(bad))
    assert proc.returncode == 2 and f"{bad}:2: not valid JSON" in proc.stderr
    proc = run_cli(str(tmp_path / "missing.jsonl"))
    assert proc.returncode == 2 and "no such file" in proc.stderr
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"reply": GOOD_REPLY}) + "\n")
    proc = run_cli(str(good), "--toxicity", "detoxify", "--detoxify-checkpoint", str(tmp_path / "no.ckpt"))
    assert proc.returncode == 2 and "Detoxify checkpoint not found" in proc.stderr


@pytest.mark.slow
def test_cli_with_a_detoxify_checkpoint_from_stdin(tmp_path):
    ckpt, hf = build_tiny_detoxify_checkpoint(tmp_path, toxicity_bias=3.0)  # toxicity ~0.95
    proc = run_cli("-", "--toxicity", "detoxify", "--detoxify-checkpoint", str(ckpt),
                   "--detoxify-config", str(hf), stdin=json.dumps({"reply_id": "1", "reply": GOOD_REPLY}) + "\n")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert abs(row["toxicity"] - 0.9526) < 1e-3 and "toxicity" in row["reasons"]
