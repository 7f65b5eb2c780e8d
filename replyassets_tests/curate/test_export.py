from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from replyassets.core.curate import content_hash, curate, export_training_files
from replyassets.settings import CurationSettings
from replyassets_tests.curate.data import make_deduped


@pytest.fixture(scope="module")
def curated():
    df = make_deduped(30, 4)
    df.loc[df.index[0], "tweet_clean"] = "Emoji 🚀 and \"quotes\" and a\nnewline"
    return curate(df, None, CurationSettings(target_pairs=1000))


def test_export_files_hashes_and_card(tmp_path, curated):
    settings = CurationSettings(target_pairs=1000)
    res = export_training_files(curated, tmp_path / "set", settings)
    names = {"train.jsonl", "eval.jsonl", "test.jsonl", "dataset_card.json", "dataset_card.md"}
    assert set(res["files"]) == names
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == sorted(names)  # no temp files left
    for f in res["files"].values():
        assert hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest() == f["sha256"]
    total = 0
    for split in ("train", "eval", "test"):
        lines = (tmp_path / "set" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == res["files"][f"{split}.jsonl"]["rows"] == (curated["split"] == split).sum() > 0
        total += len(lines)
        for line in lines:
            rec = json.loads(line)
            assert rec["split"] == split
            assert rec["messages"][0] == rec["prompt"][0] and rec["messages"][1] == rec["completion"][0]
            assert [m["role"] for m in rec["messages"]] == ["user", "assistant"]
            assert rec["text"] == (f"<|im_start|>user\n{rec['messages'][0]['content']}<|im_end|>\n<|im_start|>assistant\n"
                                   f"<think>\n\n</think>\n\n{rec['messages'][1]['content']}<|im_end|>")
            assert rec["id"] == rec["reply_id"]
    assert total == len(curated)
    card = json.loads((tmp_path / "set" / "dataset_card.json").read_text())
    assert card["content_hash"] == res["content_hash"] == content_hash(curated)
    assert card["splits"] == {s: int((curated["split"] == s).sum()) for s in ("train", "eval", "test")}
    assert card["unique_tweets"] == 30 and card["rows"] == len(curated)
    assert card["distributions"]["reply_likes"]["max"] == float(curated["reply_likes"].max())
    assert card["settings"]["seed"] == 42
    md = (tmp_path / "set" / "dataset_card.md").read_text()
    assert res["content_hash"] in md and "| reply_likes |" in md
    # same set -> same bytes
    again = export_training_files(curated.sample(frac=1, random_state=2), tmp_path / "again", settings)
    assert {k: v["sha256"] for k, v in again["files"].items()} == {k: v["sha256"] for k, v in res["files"].items()}


def test_export_rejects_unknown_split(tmp_path, curated):
    bad = curated.copy()
    bad.loc[bad.index[0], "split"] = "validation"
    with pytest.raises(ValueError, match="unknown split"):
        export_training_files(bad, tmp_path, CurationSettings())
    assert not any(tmp_path.iterdir())


def test_jsonl_loads_with_datasets_and_renders_through_qwen3_chat_template(tmp_path, curated):
    datasets = pytest.importorskip("datasets")
    from transformers import AutoTokenizer

    from replyassets.training.tiny_model import build_tiny_model

    res = export_training_files(curated, tmp_path / "set", CurationSettings())
    files = {s: res["files"][f"{s}.jsonl"]["path"] for s in ("train", "eval", "test")}
    ds = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "hf-cache"))
    assert {k: len(v) for k, v in ds.items()} == {s: int((curated["split"] == s).sum()) for s in files}
    assert {"messages", "prompt", "completion", "text", "reply_id", "tweet_id"} <= set(ds["train"].column_names)

    model_dir = build_tiny_model(tmp_path / "tiny", ds["train"]["text"], seed=0, vocab_size=400)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    for split in ("train", "test"):
        for row in ds[split].select(range(3)):
            rendered = tok.apply_chat_template(row["messages"], tokenize=False)
            # the real Qwen3 template puts the empty think block before the final reply
            assert rendered == row["text"] + "\n"
            prompt_only = tok.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True,
                                                  enable_thinking=False)
            assert row["text"].startswith(prompt_only)
            assert row["text"][len(prompt_only):] == row["completion"][0]["content"] + "<|im_end|>"
            ids = tok.apply_chat_template(row["messages"], tokenize=True, return_dict=True)["input_ids"]
            assert tok.decode(ids) == rendered
