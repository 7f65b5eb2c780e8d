from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import pytest

from replyassets.core.curate import (
    content_hash,
    curate,
    export_curated_set,
    export_training_files,
)
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
    datasets = importlib.import_module("datasets")
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


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in sorted(folder.iterdir())}


def test_a_curated_folder_is_named_by_everything_in_it_and_never_rewritten(tmp_path, curated):
    """The same rows with another setting give other dataset card bytes, so another folder: the
    folder an earlier materialization recorded keeps its bytes. The same rows and settings again
    reuse the folder without touching a file."""
    root = tmp_path / "curated"
    first = export_curated_set(curated, root, CurationSettings(target_pairs=1000))
    folder = Path(first["out_dir"])
    assert folder.parent == root and sorted(p.name for p in folder.iterdir()) == sorted(first["files"])
    before = _snapshot(folder)

    other = export_curated_set(curated, root, CurationSettings(target_pairs=1000, min_pairs=5))
    assert other["content_hash"] == first["content_hash"]          # the same rows ...
    assert other["out_dir"] != first["out_dir"]                    # ... but other bytes: another folder
    assert other["files"]["dataset_card.json"]["sha256"] != first["files"]["dataset_card.json"]["sha256"]
    assert other["files"]["train.jsonl"]["sha256"] == first["files"]["train.jsonl"]["sha256"]
    assert _snapshot(folder) == before

    again = export_curated_set(curated.sample(frac=1, random_state=3), root, CurationSettings(target_pairs=1000))
    assert again == first and _snapshot(folder) == before          # reused, not one file written again
    assert sorted(p.name for p in root.iterdir()) == sorted({Path(first["out_dir"]).name, Path(other["out_dir"]).name})


def test_a_curated_folder_is_completed_but_an_altered_one_is_refused(tmp_path, curated):
    root = tmp_path / "curated"
    settings = CurationSettings(target_pairs=1000)
    first = export_curated_set(curated, root, settings)
    folder = Path(first["out_dir"])
    (folder / "dataset_card.md").unlink()                          # a crash before the last file
    kept = _snapshot(folder)
    assert export_curated_set(curated, root, settings) == first
    assert {k: v for k, v in _snapshot(folder).items() if k != "dataset_card.md"} == kept
    (folder / "train.jsonl").write_bytes(b"edited by hand\n")
    with pytest.raises(ValueError, match="train.jsonl"):
        export_curated_set(curated, root, settings)
    assert (folder / "train.jsonl").read_bytes() == b"edited by hand\n"
