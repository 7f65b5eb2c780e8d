"""Preference (DPO) and binary-feedback (KTO) rows -> token ids, with the reply-only semantics of SFT.

The orchestrator writes two kinds of JSONL files (extra keys are ignored):

- DPO pairs (``preference_train_file`` / ``preference_eval_file``)::

    {"prompt": [{"role": "user", "content": "..."}],
     "chosen": [{"role": "assistant", "content": "..."}],
     "rejected": [{"role": "assistant", "content": "..."}], "tweet_id": "..."}

  ``chosen`` and ``rejected`` must differ.
- KTO rows (``kto_train_file`` / ``kto_eval_file``)::

    {"prompt": [...], "completion": [{"role": "assistant", "content": "..."}],
     "label": true, "tweet_id": "..."}

A row that cannot be used is a ``DataError`` naming the file and line (``path:line: ...``).

Tokenization is the same as SFT's (``data.py``): the prompt is rendered with the model's own
chat template, ``add_generation_prompt=True, enable_thinking=False``, so it ends with the empty
think block ``<think>\\n\\n</think>\\n\\n``; a completion (chosen, rejected, or KTO's) is the reply
tokens and the end token ``<|im_end|>`` only, never the think block, never the template's
trailing newline. Rows are handed to TRL pre-tokenized (``prompt_ids`` + ``chosen_ids`` /
``rejected_ids``, or ``prompt_ids`` + ``completion_ids`` + ``label``): TRL 1.16's own
conversational path would put the think block into the completion (without
``enable_thinking=False``) or learn the trailing newline (with it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replyassets.training.data import DataError, prompt_ids, read_jsonl, reply_ids

ROLES = ("system", "user", "assistant")


def read_numbered(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``[(where, row)]`` for every row of ``path``; ``where`` is ``"path:line"``."""
    rows = read_jsonl(path)  # DataError for a missing, unreadable, non-JSON or empty file
    text = Path(path).read_text(encoding="utf-8")
    lines = [n for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    return [(f"{path}:{n}", row) for n, row in zip(lines, rows, strict=True)]


def _messages(value: Any, key: str, where: str) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: `{key}` must be a non-empty list of messages")
    for m in value:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise DataError(f"{where}: every message of `{key}` needs a role (system/user/assistant) and string content")
    return value


def _prompt(row: dict, where: str) -> list[dict]:
    prompt = _messages(row.get("prompt"), "prompt", where)
    if prompt[-1]["role"] != "user":
        raise DataError(f"{where}: `prompt` must end with a user message")
    return prompt


def _reply(row: dict, key: str, where: str) -> list[dict]:
    msgs = _messages(row.get(key), key, where)
    if len(msgs) != 1 or msgs[0]["role"] != "assistant" or not msgs[0]["content"].strip():
        raise DataError(f"{where}: `{key}` must be exactly one non-empty assistant message")
    return msgs


def read_preference_file(path: str | Path) -> list[dict[str, Any]]:
    """Validated DPO rows: ``{"prompt", "chosen", "rejected", "tweet_id", "where"}``."""
    out = []
    for where, row in read_numbered(path):
        prompt = _prompt(row, where)
        chosen, rejected = _reply(row, "chosen", where), _reply(row, "rejected", where)
        if chosen[0]["content"].strip() == rejected[0]["content"].strip():
            raise DataError(f"{where}: `chosen` and `rejected` are the same reply")
        out.append(
            {"prompt": prompt, "chosen": chosen, "rejected": rejected, "tweet_id": str(row.get("tweet_id", "")), "where": where}
        )
    return out


def read_kto_file(path: str | Path) -> list[dict[str, Any]]:
    """Validated KTO rows: ``{"prompt", "completion", "label", "tweet_id", "where"}``."""
    out = []
    for where, row in read_numbered(path):
        prompt = _prompt(row, where)
        completion = _reply(row, "completion", where)
        if not isinstance(row.get("label"), bool):
            raise DataError(f"{where}: `label` must be true or false, not {row.get('label')!r}")
        out.append(
            {"prompt": prompt, "completion": completion, "label": row["label"], "tweet_id": str(row.get("tweet_id", "")), "where": where}
        )
    return out


def _fits(p_ids: list[int], max_len: int) -> bool:
    # TRL keeps the first max_len tokens of prompt + completion: a prompt that fills them leaves no signal
    return len(p_ids) < max_len


def tokenize_preference_rows(tokenizer, rows: list[dict[str, Any]], max_len: int, source: str) -> list[dict[str, list[int]]]:
    """``{"prompt_ids", "chosen_ids", "rejected_ids"}`` per row (rows whose prompt fills ``max_len`` dropped)."""
    out = []
    for row in rows:
        p_ids = prompt_ids(tokenizer, row["prompt"])
        if not _fits(p_ids, max_len):
            continue
        out.append(
            {
                "prompt_ids": p_ids,
                "chosen_ids": reply_ids(tokenizer, row["prompt"], row["chosen"], p_ids, row["where"]),
                "rejected_ids": reply_ids(tokenizer, row["prompt"], row["rejected"], p_ids, row["where"]),
            }
        )
    if not out:
        raise DataError(f"{source}: no row has a reply token left after truncation to {max_len} tokens")
    return out


def tokenize_kto_rows(
    tokenizer, rows: list[dict[str, Any]], max_len: int, source: str, both_labels: bool = False
) -> list[dict[str, Any]]:
    """``{"prompt_ids", "completion_ids", "label"}`` per row (rows whose prompt fills ``max_len``
    dropped); ``both_labels``: at least one desirable and one undesirable row (training data)."""
    out = []
    for row in rows:
        p_ids = prompt_ids(tokenizer, row["prompt"])
        if not _fits(p_ids, max_len):
            continue
        out.append(
            {
                "prompt_ids": p_ids,
                "completion_ids": reply_ids(tokenizer, row["prompt"], row["completion"], p_ids, row["where"]),
                "label": row["label"],
            }
        )
    if not out:
        raise DataError(f"{source}: no row has a reply token left after truncation to {max_len} tokens")
    if both_labels and len({r["label"] for r in out}) < 2:
        raise DataError(f"{source}: KTO needs both desirable (label true) and undesirable (label false) rows")
    return out


def sample_rows(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Rows in the SFT prompt/completion shape for ``data.sample_prompts``: the reference reply is
    the chosen one (DPO) or a desirable one (KTO rows labelled true first)."""
    if kind == "dpo":
        shaped = [(r, r["chosen"]) for r in rows]
    else:
        shaped = [(r, r["completion"]) for r in rows if r["label"]] + [(r, r["completion"]) for r in rows if not r["label"]]
    return [{"prompt": r["prompt"], "completion": c, **({"tweet_id": r["tweet_id"]} if r["tweet_id"] else {})} for r, c in shaped]
