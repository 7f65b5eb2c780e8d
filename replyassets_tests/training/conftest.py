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
