"""A tiny Qwen3-architecture model and tokenizer, built locally and deterministically.

The ``local`` profile trains a real LoRA adapter on CPU in seconds on this model. The
tokenizer is a byte-level BPE trained with ``tokenizers`` on the given texts, carries the
Qwen3 special tokens (``<|endoftext|>`` pad, ``<|im_start|>``, ``<|im_end|>`` eos,
``<think>``/``</think>``) and the real Qwen3 chat template. Same inputs -> same files.

Imports only torch / tokenizers / transformers (it runs inside the training image too).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
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


def build_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str],
    seed: int = 0,
    vocab_size: int = 2000,
    **config_overrides,
) -> Path:
    """Build the tokenizer and a randomly initialised tiny Qwen3 model into ``out_dir``.

    ``texts`` trains the tokenizer (e.g. the ``text`` column of train.jsonl, or tweets and
    replies). The folder is written atomically and holds ``config.json``,
    ``model.safetensors``, the tokenizer files and ``tiny_model.json`` (how it was built and
    a content hash of every file). Deterministic: same texts, seed and sizes -> same bytes.
    Returns ``out_dir``.
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

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
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():  # explicit, seeded init: independent of global RNG use elsewhere
        for name, p in sorted(model.named_parameters()):
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * config.initializer_range)
            elif "norm" in name:
                p.fill_(1.0)
            else:
                p.zero_()
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = config.eos_token_id

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tmp.iterdir()) if p.is_file()}
        corpus_hash = hashlib.sha256("\n".join(t for t in texts if isinstance(t, str)).encode()).hexdigest()
        info = {
            "kind": "replyassets-tiny-qwen3",
            "seed": seed,
            "vocab_size": len(tokenizer),
            "config": sizes,
            "texts": len(texts),
            "texts_sha256": corpus_hash,
            "files": files,
            "sha256": hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest(),
        }
        (tmp / "tiny_model.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def tiny_model_hash(model_dir: str | Path) -> str:
    """The content hash recorded by :func:`build_tiny_model` (sha256 over its files)."""
    info = json.loads((Path(model_dir) / "tiny_model.json").read_text())
    return info["sha256"]
