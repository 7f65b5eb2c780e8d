"""Rows of train.jsonl / eval.jsonl -> token ids and labels (loss on the reply only).

Each row is rendered with the model's own chat template (the real Qwen3 one): the prompt with
``add_generation_prompt=True, enable_thinking=False`` (it ends with the empty think block
``<think>\\n\\n</think>\\n\\n``), then prompt + reply. Labels are -100 for every prompt token,
the think block included; only the reply tokens and its end token (``<|im_end|>``) are learned.
The newline the template writes after ``<|im_end|>`` is dropped (generation stops at the end
token, so it is never predicted).

Rows are pre-tokenized here (``input_ids`` + ``labels``) rather than left to TRL, because
TRL's conversational prompt/completion path would also label that trailing newline and, without
``enable_thinking=False``, put the think block into the completion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replyassets.core.jsonl import JSONLError, read_objects


class DataError(ValueError):
    """A training or eval file that cannot be used, with the file and line in the message."""


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a train/eval file; ``DataError`` for a missing, unreadable or empty file."""
    try:
        # strict: a corrupt byte must stop training, not become U+FFFD in what the model learns
        rows = read_objects(Path(path), missing="data file not found: {path}", strict_utf8=True)
    except JSONLError as exc:
        raise DataError(str(exc)) from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def split_messages(row: dict[str, Any], where: str = "row") -> tuple[list[dict], list[dict]]:
    """The (prompt, completion) message lists of a row: ``prompt``/``completion`` or ``messages``."""
    if isinstance(row.get("prompt"), list) and isinstance(row.get("completion"), list):
        prompt, completion = row["prompt"], row["completion"]
    elif isinstance(row.get("messages"), list) and row["messages"]:
        msgs = row["messages"]
        last_user = max((i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "user"), default=-1)
        prompt, completion = msgs[: last_user + 1], msgs[last_user + 1 :]
    else:
        raise DataError(f"{where}: needs `prompt`/`completion` lists or a `messages` list")
    for m in prompt + completion:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or m.get("role") not in ("system", "user", "assistant"):
            raise DataError(f"{where}: every message needs a role (system/user/assistant) and string content")
    if not prompt or prompt[-1]["role"] != "user":
        raise DataError(f"{where}: the prompt must end with a user message")
    if len(completion) != 1 or completion[0]["role"] != "assistant" or not completion[0]["content"].strip():
        raise DataError(f"{where}: the completion must be exactly one non-empty assistant message")
    return prompt, completion


def _ids(enc) -> list[int]:
    ids = enc["input_ids"] if not isinstance(enc, list) else enc
    return list(ids)


def prompt_ids(tokenizer, prompt: list[dict]) -> list[int]:
    """Token ids of the generation prompt, ending with the empty think block."""
    return _ids(tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, enable_thinking=False))


def reply_ids(tokenizer, prompt: list[dict], completion: list[dict], p_ids: list[int], where: str = "row") -> list[int]:
    """Token ids of the reply and its end token, as the template renders them after ``p_ids``
    (the prompt's ids, think block included); the template's trailing newline is dropped."""
    full = _ids(tokenizer.apply_chat_template(prompt + completion, tokenize=True, enable_thinking=False))
    if full[: len(p_ids)] != p_ids:
        raise DataError(
            f"{where}: the chat template renders the prompt differently alone and with its reply; "
            "cannot find where the reply starts"
        )
    end_id = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    reply = full[len(p_ids) :]
    if end_id not in reply:
        raise DataError(f"{where}: the rendered reply has no end token {tokenizer.eos_token!r}")
    return reply[: reply.index(end_id) + 1]  # reply tokens + <|im_end|>; drop the template's trailing "\n"


def tokenize_row(tokenizer, row: dict[str, Any], max_len: int, where: str = "row") -> dict[str, list[int]]:
    """``{"input_ids", "labels"}`` for one row; prompt and think block masked with -100."""
    prompt, completion = split_messages(row, where)
    p_ids = prompt_ids(tokenizer, prompt)
    reply = reply_ids(tokenizer, prompt, completion, p_ids, where)
    input_ids = p_ids + reply
    labels = [-100] * len(p_ids) + reply
    if len(input_ids) > max_len:  # keep the start; a row left with no reply token is dropped
        input_ids, labels = input_ids[:max_len], labels[:max_len]
    return {"input_ids": input_ids, "labels": labels}


def tokenize_rows(tokenizer, rows: list[dict[str, Any]], max_len: int, source: str = "data") -> list[dict[str, list[int]]]:
    out = []
    for i, row in enumerate(rows):
        ex = tokenize_row(tokenizer, row, max_len, where=f"{source} row {i + 1}")
        if any(label != -100 for label in ex["labels"]):
            out.append(ex)
    if not out:
        raise DataError(f"{source}: no row has a reply token left after truncation to {max_len} tokens")
    return out


def sample_prompts(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The first ``n`` rows with distinct tweets (fixed across evaluations and reruns)."""
    seen, picked = set(), []
    for i, row in enumerate(rows):
        key = row.get("tweet_id") or i
        if key in seen:
            continue
        seen.add(key)
        prompt, completion = split_messages(row, f"eval row {i + 1}")
        picked.append(
            {
                "tweet_id": str(row.get("tweet_id", i)),
                "prompt": prompt,
                "tweet": prompt[-1]["content"],
                "reference": completion[0]["content"],
            }
        )
        if len(picked) >= n:
            break
    return picked
