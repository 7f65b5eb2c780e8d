"""The tiny local Qwen3 model: deterministic build, Qwen3 special tokens and chat template."""

from __future__ import annotations

import json

import pytest

from replyassets.cli import main
from replyassets.training.tiny_model import build_tiny_model, tiny_model_hash

TEXTS = [f"Tweet {i} on agents and startups. Reply: what a sharp take on scaling {i % 7}!" for i in range(60)]


def test_build_is_deterministic_and_loadable(tmp_path):
    a = build_tiny_model(tmp_path / "a", TEXTS, seed=0)
    b = build_tiny_model(tmp_path / "b", TEXTS, seed=0)
    c = build_tiny_model(tmp_path / "c", TEXTS, seed=1)
    files = sorted(p.name for p in a.iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "tiny_model.json"} <= set(files)
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert tiny_model_hash(a) == tiny_model_hash(b) != tiny_model_hash(c)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a)
    model = AutoModelForCausalLM.from_pretrained(a)
    assert model.config.model_type == "qwen3"
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    for t in ("<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|endoftext|>"):
        ids = tok(t, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, t
    user = [{"role": "user", "content": "hello there"}]
    prompt = tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert prompt == "<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    full = tok.apply_chat_template(user + [{"role": "assistant", "content": "hi!"}], tokenize=False)
    assert full == prompt + "hi!<|im_end|>\n"
    # round trip through the tokenizer
    assert tok.decode(tok(full)["input_ids"]) == full


def test_empty_texts_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="at least one non-empty text"):
        build_tiny_model(tmp_path / "m", ["", "  "])


def test_cli_builds_from_jsonl(tmp_path, capsys):
    src = tmp_path / "train.jsonl"
    src.write_text("\n".join(json.dumps({"text": t, "reply_id": str(i)}) for i, t in enumerate(TEXTS)) + "\n")
    assert main(["build-tiny-model", str(tmp_path / "m"), "--texts", str(src)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["sha256"] == tiny_model_hash(tmp_path / "m") and out["texts"] == len(TEXTS)
    assert main(["build-tiny-model", str(tmp_path / "m2"), "--texts", str(tmp_path / "missing.jsonl")]) == 2
