"""Reply generation and perplexity for the evaluation (torch + transformers + peft; no Dagster).

Generation (``generate_replies`` / ``generate_pair``):

- prompts are the user messages of the curated set; each is rendered with the model's chat
  template, ``add_generation_prompt=True, enable_thinking=False`` (Qwen3 then ends the prompt
  with the empty think block ``<think>\\n\\n</think>\\n\\n``, exactly as in training). A tokenizer
  without a chat template gets the Qwen3 format written out.
- batches are left-padded; batch ``i`` (``batch_size`` prompts, in input order) is sampled after
  ``torch.manual_seed(generation_seed + i)``: base and adapter see the same prompts in the same
  batches with the same seeds and the same decoding settings (``decoding_config``).
  ``temperature == 0`` means greedy decoding.
- outputs are decoded without special tokens; any ``<think>...</think>`` block (and a stray
  think tag) is removed, and whitespace is stripped.

Perplexity (``perplexity``): token-weighted ``exp(mean NLL)``.

- with ``prompts`` (the test split): the chat-rendered prompt is context only; the loss is on the
  reply tokens plus the end-of-turn token, as in training (``reply-only`` mode);
- without ``prompts`` (general text for the forgetting check): the whole plain text, every token
  after the first (``whole-text`` mode).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from replyassets.settings import EvaluationSettings

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_THINK_TAG = re.compile(r"</?think>")


def strip_think(text: str) -> str:
    """Remove ``<think>...</think>`` blocks and stray think tags, then surrounding whitespace."""
    return _THINK_TAG.sub("", _THINK_BLOCK.sub("", text or "")).strip()


def decoding_config(settings: EvaluationSettings) -> dict[str, Any]:
    """The decoding settings used for both models (record it in the asset metadata)."""
    greedy = settings.temperature <= 0
    cfg: dict[str, Any] = {"max_new_tokens": int(settings.max_new_tokens), "do_sample": not greedy}
    if not greedy:
        cfg.update(temperature=float(settings.temperature), top_p=float(settings.top_p))
    return cfg


def render_prompt(tokenizer: Any, prompt: str) -> str:
    messages = [{"role": "user", "content": prompt}]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def _device_and_dtype():  # type: ignore[no-untyped-def]
    import torch

    if torch.cuda.is_available():
        return "cuda", (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return "cpu", torch.float32


def load_model(base_model: str, adapter_dir: str | None = None):  # type: ignore[no-untyped-def]
    """(model, tokenizer) in eval mode; the adapter (peft) on top when given."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device, dtype = _device_and_dtype()
    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=dtype)
    if adapter_dir is not None:
        from peft import PeftModel

        if not (Path(adapter_dir) / "adapter_config.json").exists():
            raise FileNotFoundError(f"no adapter_config.json in adapter folder {adapter_dir}")
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.to(device)
    model.eval()
    return model, tokenizer


def _generate(model: Any, tokenizer: Any, prompts: list[str], settings: EvaluationSettings, batch_size: int) -> list[str]:
    import torch

    cfg = decoding_config(settings)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    eos_ids = [i for i in {eos, tokenizer.eos_token_id} if isinstance(i, int) and i >= 0]
    device = next(model.parameters()).device
    out: list[str] = []
    for bi, start in enumerate(range(0, len(prompts), max(1, batch_size))):
        batch = [render_prompt(tokenizer, p) for p in prompts[start : start + batch_size]]
        enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        torch.manual_seed(int(settings.generation_seed) + bi)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(int(settings.generation_seed) + bi)
        with torch.no_grad():
            gen = model.generate(**enc, **cfg, pad_token_id=tokenizer.pad_token_id, eos_token_id=eos_ids or None)
        new = gen[:, enc["input_ids"].shape[1]:]
        out.extend(strip_think(t) for t in tokenizer.batch_decode(new, skip_special_tokens=True))
    return out


def _check_prompts(prompts: list[str]) -> list[str]:
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ValueError(f"empty or non-text prompts at positions {bad[:10]}")
    return list(prompts)


def generate_replies(
    base_model: str,
    adapter_dir: str | None,
    prompts: list[str],
    settings: EvaluationSettings,
    batch_size: int = 8,
) -> list[str]:
    """One reply per prompt from the base model (``adapter_dir=None``) or base + adapter."""
    prompts = _check_prompts(prompts)
    if not prompts:
        return []
    model, tokenizer = load_model(base_model, adapter_dir)
    return _generate(model, tokenizer, prompts, settings, batch_size)


def generate_pair(
    base_model: str,
    adapter_dir: str,
    prompts: list[str],
    settings: EvaluationSettings,
    batch_size: int = 8,
) -> tuple[list[str], list[str]]:
    """(base replies, adapter replies) loading the weights once: the base run disables the adapter.
    Same result as two ``generate_replies`` calls, half the loading time (matters for 8B)."""
    prompts = _check_prompts(prompts)
    if not prompts:
        return [], []
    model, tokenizer = load_model(base_model, adapter_dir)
    with model.disable_adapter():
        base = _generate(model, tokenizer, prompts, settings, batch_size)
    adapter = _generate(model, tokenizer, prompts, settings, batch_size)
    return base, adapter


def _nll_sum(model: Any, tokenizer: Any, sequences: list[tuple[list[int], int]], batch_size: int) -> tuple[float, int]:
    """Sum of token NLL and token count; each sequence is (ids, n_context) and only ids[n_context:] count."""
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total, count = 0.0, 0
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start : start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        attn = torch.zeros((len(chunk), width), dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        for r, (ids, ctx) in enumerate(chunk):  # right padding: positions stay 0..n-1
            input_ids[r, : len(ids)] = torch.tensor(ids)
            attn[r, : len(ids)] = 1
            labels[r, max(1, ctx) : len(ids)] = torch.tensor(ids[max(1, ctx):])
        with torch.no_grad():
            logits = model(input_ids=input_ids.to(device), attention_mask=attn.to(device)).logits.float()
        shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1])
        shift_labels = labels[:, 1:].reshape(-1).to(device)
        loss = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum")
        total += float(loss)
        count += int((shift_labels != -100).sum())
    return total, count


def perplexity(
    model_dir: str,
    adapter_dir: str | None,
    texts: list[str],
    prompts: list[str] | None = None,
    *,
    batch_size: int = 8,
    max_length: int = 512,
) -> float:
    """Token-weighted perplexity. With ``prompts``: reply-only (texts are the replies, prompts the
    user messages, chat-rendered with the empty think block). Without: whole plain texts.
    Sequences longer than ``max_length`` tokens are truncated. NaN when no token counts."""
    if prompts is not None and len(prompts) != len(texts):
        raise ValueError("prompts and texts must have the same length")
    model, tokenizer = load_model(model_dir, adapter_dir)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if not isinstance(eos, int) or eos < 0:
        eos = tokenizer.eos_token_id
    seqs: list[tuple[list[int], int]] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            continue
        if prompts is not None:
            ctx = tokenizer(render_prompt(tokenizer, prompts[i]), add_special_tokens=False)["input_ids"]
            ids = ctx + tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
            n_ctx = len(ctx)
        else:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            n_ctx = 0
        ids = ids[:max_length]
        if len(ids) - max(1, n_ctx) > 0:
            seqs.append((ids, n_ctx))
    if not seqs:
        return float("nan")
    total, count = _nll_sum(model, tokenizer, seqs, batch_size)
    return math.exp(total / count) if count else float("nan")


@lru_cache(maxsize=1)
def general_texts() -> tuple[str, ...]:
    """The shipped general-English set for the forgetting check (replyassets/data/general_text.jsonl)."""
    path = resources.files("replyassets") / "data" / "general_text.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return tuple(r["text"] for r in rows)




def load_general_texts() -> list[str]:
    """The shipped general-English sentences (forgetting check), as a list."""
    return list(general_texts())
