"""A tiny Qwen3 model and small train/eval JSONL files in the export's row shape, built once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

TOPICS = ["agents", "startups", "scaling laws", "open source", "GPUs", "data quality", "evaluation", "fine-tuning"]
PROMPT = "Generate an engaging Twitter reply to:\n\n{tweet}"


def make_row(i: int, tweet: str | None = None, reply: str | None = None) -> dict:
    t = TOPICS[i % len(TOPICS)]
    tweet = tweet or f"Hot take #{i}: {t} will change everything in 2026. Thoughts?"
    reply = reply or f"Strong point on {t}, but the real bottleneck is {TOPICS[(i * 3) % len(TOPICS)]} and nobody measures it."
    user = {"role": "user", "content": PROMPT.format(tweet=tweet)}
    asst = {"role": "assistant", "content": reply}
    text = (
        f"<|im_start|>user\n{user['content']}<|im_end|>\n<|im_start|>assistant\n"
        f"<think>\n\n</think>\n\n{reply}<|im_end|>\n"
    )
    return {
        "messages": [user, asst],
        "prompt": [user],
        "completion": [asst],
        "text": text,
        "reply_id": f"r{i}",
        "tweet_id": f"t{i}",
    }


def rejected_reply(i: int) -> str:
    """A reply in a style the chosen ones (make_row's) never have: short, lowercase, dismissive."""
    return f"lol no. {TOPICS[(i * 5) % len(TOPICS)]} is just hype, whatever"


def make_pair(i: int) -> dict:
    """A DPO row: chosen = make_row's reply, rejected = rejected_reply (they differ systematically)."""
    row = make_row(i)
    return {
        "prompt": row["prompt"],
        "chosen": row["completion"],
        "rejected": [{"role": "assistant", "content": rejected_reply(i)}],
        "tweet_id": row["tweet_id"],
        "pair_id": f"p{i}",  # extra keys are ignored
    }


def make_kto_row(i: int, label: bool) -> dict:
    """A KTO row: a desirable reply (make_row's style) or an undesirable one (rejected_reply)."""
    row = make_row(i)
    reply = row["completion"] if label else [{"role": "assistant", "content": rejected_reply(i)}]
    return {"prompt": row["prompt"], "completion": reply, "label": label, "tweet_id": row["tweet_id"]}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def tiny_setup(tmp_path_factory):
    from replyassets.training.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    train = [make_row(i) for i in range(48)]
    evals = [make_row(i) for i in range(1000, 1012)]
    write_jsonl(root / "train.jsonl", train)
    write_jsonl(root / "eval.jsonl", evals)
    build_tiny_model(root / "model", [r["text"] for r in train + evals], seed=0)
    return root


@pytest.fixture(scope="session")
def preference_setup(tiny_setup):
    """DPO pairs and KTO rows next to the tiny model: train on tweets 0-47, eval on 1000-1011."""
    write_jsonl(tiny_setup / "pref_train.jsonl", [make_pair(i) for i in range(48)])
    write_jsonl(tiny_setup / "pref_eval.jsonl", [make_pair(i) for i in range(1000, 1012)])
    # desirable and undesirable rows written in blocks: the trainer mixes them (seeded)
    kto_train = [make_kto_row(i, True) for i in range(48)] + [make_kto_row(i, False) for i in range(48)]
    kto_eval = [make_kto_row(i, i % 2 == 0) for i in range(1000, 1012)]
    write_jsonl(tiny_setup / "kto_train.jsonl", kto_train)
    write_jsonl(tiny_setup / "kto_eval.jsonl", kto_eval)
    return tiny_setup


def preference_config(root: Path, out: Path, method: str = "dpo", **over) -> dict:
    """base_config for a preference method: its files, SFT's files only where it needs them."""
    cfg = base_config(root, out, method=method)
    if method in ("dpo", "kto"):
        del cfg["train_file"], cfg["eval_file"]
    if method in ("dpo", "sft+dpo"):
        cfg.update(preference_train_file=str(root / "pref_train.jsonl"), preference_eval_file=str(root / "pref_eval.jsonl"))
    if method == "kto":
        cfg.update(kto_train_file=str(root / "kto_train.jsonl"), kto_eval_file=str(root / "kto_eval.jsonl"))
    cfg.update(over)
    return cfg


def base_config(root: Path, out: Path, **over) -> dict:
    cfg = {
        "base_model": str(root / "model"),
        "train_file": str(root / "train.jsonl"),
        "eval_file": str(root / "eval.jsonl"),
        "output_dir": str(out),
        "quantization": "none",
        "max_steps": 6,
        "eval_steps": 3,
        "logging_steps": 1,
        "batch_size": 4,
        "grad_accum": 1,
        "sample_generations": 2,
        "sample_max_new_tokens": 8,
        "curated_set_hash": "sha256:curated-test",
        "seed": 7,
    }
    cfg.update(over)
    return cfg
