"""The tiny local Qwen3 model: deterministic build, Qwen3 special tokens and chat template, and
a brief pretraining that turns its byte soup into words."""

from __future__ import annotations

import json
import re

import pytest

from replyassets.cli import main
from replyassets.training.tiny_model import (
    PRETRAIN_DEFAULTS,
    PRETRAIN_STEPS,
    build_tiny_model,
    tiny_model_hash,
    tiny_model_info,
    tiny_model_key,
)

TEXTS = [f"Tweet {i} on agents and startups. Reply: what a sharp take on scaling {i % 7}!" for i in range(60)]


def test_build_is_deterministic_and_loadable(tmp_path):
    a = build_tiny_model(tmp_path / "a", TEXTS, seed=0)
    b = build_tiny_model(tmp_path / "b", TEXTS, seed=0)
    c = build_tiny_model(tmp_path / "c", TEXTS, seed=1)
    files = sorted(p.name for p in a.iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "tiny_model.json", "build_time.json"} <= set(files)
    for name in files:
        if name != "build_time.json":  # wall-clock seconds, outside the hash
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


# --------------------------------------------------------------------------- pretraining

# Chat-role words that leak from the template when the model reproduces its scaffold: not replies.
SCAFFOLD_WORDS = {"assistant", "user", "think"}


def _norm(word: str) -> str:
    return re.sub(r"^\W+|\W+$", "", word).lower()


def word_share(replies: list[str], vocabulary: set[str]) -> float:
    """Share of the whitespace tokens of ``replies`` that are English words (english-words: web2
    and gcide) or words of ``vocabulary``; scaffold words and bare punctuation do not count."""
    from english_words import get_english_words_set

    english = get_english_words_set(["web2", "gcide"], lower=True, alpha=True)
    words = [_norm(w) for r in replies for w in r.split()]
    good = sum(1 for w in words if w and w not in SCAFFOLD_WORDS and (w in english or w in vocabulary))
    return good / len(words) if words else 0.0


@pytest.fixture(scope="module")
def sample() -> tuple[list[str], list[str]]:
    """(general text, tweets): what the local base_model asset pretrains on."""
    from replyassets.core.generation import load_general_texts
    from replyassets.defs.train import sample_texts

    tweets = sample_texts()
    assert len(tweets) > 100
    return load_general_texts(), tweets


def _replies(model_dir, tweets: list[str]) -> list[str]:
    from replyassets.core.generation import generate_replies
    from replyassets.settings import CurationSettings, EvaluationSettings

    # the local profile's decoding (config/profiles/local.yaml), spelled out so the figures do not move
    settings = EvaluationSettings(max_new_tokens=48, temperature=0.7, top_p=0.9, generation_seed=1234)
    template = CurationSettings().prompt_template
    return generate_replies(str(model_dir), None, [template.format(tweet=t) for t in tweets], settings)


@pytest.mark.slow
def test_pretraining_turns_byte_soup_into_words(tmp_path, sample):
    """Measured on the sample (20 tweets, the local decoding): with random weights 0.50 of the
    generated whitespace tokens are words (BPE pieces that happen to be words: "ful", "dis"), after
    the PRETRAIN_STEPS of the local base model 0.97. Random stays at 0.50 on the 61 test tweets
    of make demo; the pretrained model 0.96."""
    general, tweets = sample
    corpus = general + tweets
    random_dir = build_tiny_model(tmp_path / "random", corpus, seed=0)
    trained_dir = build_tiny_model(tmp_path / "trained", corpus, seed=0, pretrain_texts=corpus, pretrain_steps=PRETRAIN_STEPS)
    info = tiny_model_info(trained_dir)["pretraining"]
    assert info["steps"] == PRETRAIN_STEPS
    assert info["tokens_seen"] == PRETRAIN_STEPS * PRETRAIN_DEFAULTS["batch_size"] * PRETRAIN_DEFAULTS["block_size"]
    assert info["final_loss"] < info["first_loss"] / 2

    vocabulary = {_norm(w) for t in corpus for w in t.split()} - {""}
    prompts = tweets[::8][:20]
    random_share = word_share(_replies(random_dir, prompts), vocabulary)
    trained_share = word_share(_replies(trained_dir, prompts), vocabulary)
    assert random_share < 0.65, random_share
    assert trained_share > 0.85, trained_share
    assert trained_share - random_share > 0.3, (random_share, trained_share)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_pretraining_is_deterministic(tmp_path):
    import torch

    threads = torch.get_num_threads()
    a = build_tiny_model(tmp_path / "a", TEXTS, seed=0, pretrain_steps=12)
    b = build_tiny_model(tmp_path / "b", TEXTS, seed=0, pretrain_steps=12)
    c = build_tiny_model(tmp_path / "c", TEXTS, seed=0)
    assert torch.get_num_threads() == threads  # pretraining runs on its own thread count, then restores it
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert tiny_model_hash(a) == tiny_model_hash(b) != tiny_model_hash(c)
    info = tiny_model_info(a)
    assert info["pretraining"]["steps"] == 12 and info["pretraining"]["final_loss"] < info["pretraining"]["first_loss"]
    assert info["build_time"]["pretrain_seconds"] > 0
    assert "pretraining" not in tiny_model_info(c)
    # the folder key names everything the build reads
    key = tiny_model_key(TEXTS, TEXTS, seed=0, pretrain_steps=12)
    assert key == tiny_model_key(list(TEXTS), list(TEXTS), seed=0, pretrain_steps=12)
    assert len({key, tiny_model_key(TEXTS, TEXTS, seed=0, pretrain_steps=13), tiny_model_key(TEXTS, TEXTS, seed=1, pretrain_steps=12),
                tiny_model_key(TEXTS, TEXTS[1:], seed=0, pretrain_steps=12), tiny_model_key(TEXTS, seed=0)}) == 5
