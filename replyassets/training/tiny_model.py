"""A tiny Qwen3-architecture model and tokenizer, built locally and deterministically.

The ``local`` profile trains a real LoRA adapter on CPU in seconds on this model. The
tokenizer is a byte-level BPE trained with ``tokenizers`` on the given texts, carries the
Qwen3 special tokens (``<|endoftext|>`` pad, ``<|im_start|>``, ``<|im_end|>`` eos,
``<think>``/``</think>``) and the real Qwen3 chat template. Same inputs -> same files.

With ``pretrain_steps`` the model is not left at its random initialisation: a short,
seeded causal-LM run on ``pretrain_texts`` (:func:`pretrain_tiny_model`) gives it word
statistics, so its replies are mostly real words and LoRA recipes trained on it can be
compared on something other than noise. A fixed number of steps (never a time budget) on
one CPU thread: the same inputs give the same weights, hence the same hash, in any process
on the same machine (CPU float kernels may differ between CPU generations).

Imports only torch / tokenizers / transformers (it runs inside the training image too).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from replyassets.training.qwen3_template import QWEN3_CHAT_TEMPLATE

# Order fixes the ids: these come first, as in Qwen3 (<|endoftext|> 151643, <|im_start|> 151644, ...).
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# In Qwen3 these are added tokens that are not "special" (decode keeps them).
THINK_TOKENS = ["<think>", "</think>"]
# The Qwen2/Qwen3 pre-tokenizer split pattern.
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

TINY_MODEL_DEFAULTS = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=1024,
)

# The pretraining recipe (see pretrain_tiny_model). Changing any of these, or the code of the
# loop, changes the weights: bump PRETRAIN_RECIPE so folders keyed by tiny_model_key differ.
PRETRAIN_RECIPE = "causal-lm-v1"
PRETRAIN_DEFAULTS = dict(
    block_size=128,
    batch_size=16,
    learning_rate=3e-3,
    weight_decay=0.01,
    threads=1,
    document_format="assistant",
)
# The local profile's base model (defs/train.py::base_model): 40 general sentences + ~170 tweets,
# ~7,000 tokens in the assistant format, so one step (16 x 128 tokens) is ~0.3 epoch. Measured on
# the sample (replies to 20 tweets with the local decoding: share of whitespace tokens that are
# English or corpus words / perplexity of 200 sample replies, reply-only, which it never saw):
#   random 0.50 / 1,440;  100 steps: the scaffold word "assistant" only;  125: 0.92 / 715;
#   150: 0.97 / 880;  200: 0.95 / 1,220;  300: 0.97 / 4,740;  800: 0.99 / 42,000 (memorised tweets).
# 150 is where the replies have become words while the perplexity of the unseen replies is still
# well below the random model's; past ~200 steps it memorises the corpus. 14-27 s on 1 thread.
PRETRAIN_STEPS = 150


def _training_corpus(texts: Iterable[str]) -> list[str]:
    corpus = [t for t in texts if isinstance(t, str) and t]
    # The chat scaffolding always appears, so it always gets short encodings.
    corpus.append("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    return corpus


def build_tokenizer(texts: Iterable[str], vocab_size: int = 2000):
    """Train a byte-level BPE tokenizer (Qwen3 pre-tokenizer, special tokens and chat template)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS + THINK_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=TINY_MODEL_DEFAULTS["max_position_embeddings"],
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = QWEN3_CHAT_TEMPLATE
    return fast


# How a pretraining text enters the token stream. "assistant" (the default): as an assistant turn
# of the Qwen3 chat template, after the empty think block that every generation prompt ends with.
# Pretrained on plain text only, the model never sees the chat tokens, and after a chat prompt it
# fell into byte loops (measured: 0.27 of the generated words were words after 200 steps, vs 0.95
# in this format); an 8B base model has seen its chat format too. The turns hold tweets and general
# sentences, never replies: replying is still the adapter's to learn.
DOCUMENT_FORMATS = {
    "plain": "{text}<|endoftext|>",
    "assistant": "<|im_start|>assistant\n<think>\n\n</think>\n\n{text}<|im_end|>\n",
}


def _token_stream(tokenizer, texts: Iterable[str], document_format: str = "plain") -> list[int]:
    """Every non-empty text tokenized in its document format, one after the other."""
    template = DOCUMENT_FORMATS[document_format]
    ids: list[int] = []
    for text in texts:
        if isinstance(text, str) and text.strip():
            ids += tokenizer(template.format(text=text), add_special_tokens=False)["input_ids"]
    return ids


def _lr_factor(step: int, steps: int) -> float:
    """Linear warmup over the first 10 % of the steps, then cosine decay to 10 % of the peak."""
    warmup = max(1, steps // 10)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def _adamw(model, learning_rate: float, weight_decay: float):
    """AdamW with weight decay on the matrices only (not on norms and biases)."""
    import torch

    decay = [p for n, p in sorted(model.named_parameters()) if p.dim() >= 2]
    no_decay = [p for n, p in sorted(model.named_parameters()) if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate,
        betas=(0.9, 0.95),
    )


def _train_steps(model, optimizer, data, block: int, batch_size: int, steps: int, learning_rate: float, gen) -> float:
    """``steps`` optimizer steps on random windows of ``data`` (offsets drawn from ``gen``),
    warmup then cosine decay, gradients clipped at 1; returns the first step's loss."""
    import torch

    first_loss = float("nan")
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * _lr_factor(step, steps)
        offsets = torch.randint(0, len(data) - block + 1, (batch_size,), generator=gen)
        batch = torch.stack([data[o : o + block] for o in offsets.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step == 0:
            first_loss = float(loss.detach())
    return first_loss


def _stream_loss(model, data, block: int) -> float:
    """Mean next-token loss over the whole token stream ``data``, in windows of ``block``, in eval mode."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for o in range(0, len(data) - 1, block):
            window = data[o : o + block + 1]
            if len(window) < 2:
                continue
            logits = model(input_ids=window[None, :-1]).logits[0]
            total += float(torch.nn.functional.cross_entropy(logits, window[1:], reduction="sum"))
            count += len(window) - 1
    return total / count


def pretrain_tiny_model(
    model,
    tokenizer,
    texts: Iterable[str],
    steps: int,
    seed: int = 0,
    block_size: int = PRETRAIN_DEFAULTS["block_size"],
    batch_size: int = PRETRAIN_DEFAULTS["batch_size"],
    learning_rate: float = PRETRAIN_DEFAULTS["learning_rate"],
    weight_decay: float = PRETRAIN_DEFAULTS["weight_decay"],
    threads: int = PRETRAIN_DEFAULTS["threads"],
    document_format: str = PRETRAIN_DEFAULTS["document_format"],
) -> dict:
    """A short causal-LM run of ``model`` (in place) on ``texts``; returns what it did.

    The texts become one token stream (each text in ``document_format``, see
    ``DOCUMENT_FORMATS``); every step trains on
    ``batch_size`` windows of ``block_size`` tokens at offsets drawn from a generator seeded
    with ``seed``, with AdamW, warmup then cosine decay, gradients clipped at 1. Exactly
    ``steps`` steps on ``threads`` CPU threads (the thread count is restored afterwards): the
    same model, texts and arguments give the same weights. The result holds the steps, the
    tokens seen, the loss of the first step and the final loss (mean next-token loss over the
    whole stream after training, in eval mode), and ``seconds`` (wall clock, the only
    figure that is not reproducible).
    """
    import torch

    if steps < 1:
        raise ValueError(f"pretrain_tiny_model needs steps >= 1, got {steps}")
    texts = list(texts)
    stream = _token_stream(tokenizer, texts, document_format)
    if len(stream) < 3:
        raise ValueError("pretrain_tiny_model needs texts with at least a few tokens")
    block = min(block_size, len(stream) - 1)
    data = torch.tensor(stream, dtype=torch.long)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    start = time.perf_counter()
    try:
        optimizer = _adamw(model, learning_rate, weight_decay)
        gen = torch.Generator().manual_seed(seed)
        first_loss = _train_steps(model, optimizer, data, block, batch_size, steps, learning_rate, gen)
        final_loss = _stream_loss(model, data, block)
    finally:
        torch.set_num_threads(previous_threads)
    return {
        "recipe": PRETRAIN_RECIPE,
        "steps": steps,
        "seed": seed,
        "block_size": block,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "threads": max(1, threads),
        "document_format": document_format,
        "texts": len(texts),
        "texts_sha256": hashlib.sha256("\n".join(t for t in texts if isinstance(t, str)).encode()).hexdigest(),
        "corpus_tokens": len(stream),
        "tokens_seen": steps * batch_size * block,
        "first_loss": round(first_loss, 6),
        "final_loss": round(final_loss, 6),
        "seconds": time.perf_counter() - start,
    }


def tiny_model_key(
    texts: Iterable[str],
    pretrain_texts: Iterable[str] | None = None,
    seed: int = 0,
    vocab_size: int = 2000,
    pretrain_steps: int = 0,
    pretrain_options: dict | None = None,
    **config_overrides,
) -> str:
    """A hash of everything :func:`build_tiny_model` reads (texts, seed, sizes, the pretraining
    recipe): a folder named after it can be reused, one built another way never is."""
    texts = [t for t in texts if isinstance(t, str)]
    pretrain_texts = texts if pretrain_texts is None else [t for t in pretrain_texts if isinstance(t, str)]
    recipe = {
        "texts": texts,
        "pretrain_texts": pretrain_texts if pretrain_steps else [],
        "seed": seed,
        "vocab_size": vocab_size,
        "config": {**TINY_MODEL_DEFAULTS, **config_overrides},
        "pretrain": (
            {"recipe": PRETRAIN_RECIPE, "steps": pretrain_steps, **PRETRAIN_DEFAULTS, **(pretrain_options or {})}
            if pretrain_steps
            else None
        ),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def build_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str],
    seed: int = 0,
    vocab_size: int = 2000,
    pretrain_texts: Iterable[str] | None = None,
    pretrain_steps: int = 0,
    pretrain_options: dict | None = None,
    **config_overrides,
) -> Path:
    """Build the tokenizer and a tiny Qwen3 model into ``out_dir``.

    ``texts`` trains the tokenizer (e.g. the ``text`` column of train.jsonl, or tweets and
    replies). The weights are random (seeded) unless ``pretrain_steps`` > 0: then
    :func:`pretrain_tiny_model` trains them for that many steps on ``pretrain_texts``
    (default: ``texts``). The folder is written atomically and holds ``config.json``,
    ``model.safetensors``, the tokenizer files, ``tiny_model.json`` (how it was built, the
    pretraining figures and a content hash of every file) and ``build_time.json`` (wall-clock
    seconds; not part of the hash). Deterministic: same texts, seed, sizes and pretraining ->
    same bytes (build_time.json aside). Returns ``out_dir``.
    """
    from transformers import Qwen3Config

    started = time.perf_counter()
    out_dir = Path(out_dir)
    texts = list(texts)
    if not any(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError("build_tiny_model needs at least one non-empty text to train the tokenizer")
    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    sizes = {**TINY_MODEL_DEFAULTS, **config_overrides}
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        dtype="float32",
        **sizes,
    )
    model = _seeded_model(config, seed)
    pretraining = None
    if pretrain_steps:
        pretrain_texts = texts if pretrain_texts is None else list(pretrain_texts)
        pretraining = pretrain_tiny_model(
            model, tokenizer, pretrain_texts, steps=pretrain_steps, seed=seed, **(pretrain_options or {})
        )
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = config.eos_token_id
    info = {
        "kind": "replyassets-tiny-qwen3",
        "seed": seed,
        "vocab_size": len(tokenizer),
        "config": sizes,
        "texts": len(texts),
        "texts_sha256": hashlib.sha256("\n".join(t for t in texts if isinstance(t, str)).encode()).hexdigest(),
    }
    _write_model_dir(out_dir, model, tokenizer, info, pretraining, started)
    return out_dir


def _seeded_model(config, seed: int):
    """A Qwen3 causal LM of ``config`` with explicit, seeded weights (normal matrices, unit
    norms, zero biases): independent of global RNG use elsewhere."""
    import torch
    from transformers import Qwen3ForCausalLM

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * config.initializer_range)
            elif "norm" in name:
                p.fill_(1.0)
            else:
                p.zero_()
    return model


def _write_model_dir(out_dir: Path, model, tokenizer, info: dict, pretraining: dict | None, started: float) -> None:
    """Write the model, the tokenizer, ``tiny_model.json`` (``info`` plus every file's hash and
    the pretraining figures) and ``build_time.json`` into ``out_dir``, atomically."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tmp.iterdir()) if p.is_file()}
        info = {**info, "files": files, "sha256": hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()}
        timing = {"total_seconds": round(time.perf_counter() - started, 3)}
        if pretraining is not None:
            timing["pretrain_seconds"] = round(pretraining.pop("seconds"), 3)
            info["pretraining"] = pretraining
        (tmp / "tiny_model.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        (tmp / "build_time.json").write_text(json.dumps(timing, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def tiny_model_hash(model_dir: str | Path) -> str:
    """The content hash recorded by :func:`build_tiny_model` (sha256 over its files)."""
    info = json.loads((Path(model_dir) / "tiny_model.json").read_text())
    return info["sha256"]


def tiny_model_info(model_dir: str | Path) -> dict:
    """``tiny_model.json`` plus the wall-clock figures of ``build_time.json`` (``{}`` if absent)."""
    model_dir = Path(model_dir)
    info = json.loads((model_dir / "tiny_model.json").read_text())
    timing = model_dir / "build_time.json"
    info["build_time"] = json.loads(timing.read_text()) if timing.exists() else {}
    return info
