"""Generation and perplexity on the project's tiny Qwen3 model with a real (random, non-trivial) LoRA adapter."""

from __future__ import annotations

import importlib
import math

import pytest

torch = importlib.import_module("torch")

from replyassets.core.generation import (
    decoding_config,
    generate_pair,
    generate_replies,
    load_general_texts,
    perplexity,
    render_prompt,
    strip_think,
)
from replyassets.settings import EvaluationSettings
from replyassets.training.tiny_model import build_tiny_model

TEXTS = [
    "AI agents will replace most apps within five years.",
    "Honestly the best part of agents is that they never sleep, unlike my code reviewers.",
    "Generate an engaging Twitter reply to:",
    "Coffee before meetings is not optional, it is infrastructure.",
] * 10
PROMPTS = [
    "Generate an engaging Twitter reply to:\n\nAI agents will replace most apps.",
    "Generate an engaging Twitter reply to:\n\nCoffee or tea before a big meeting?",
    "Generate an engaging Twitter reply to:\n\nShip on Fridays?",
]
SETTINGS = EvaluationSettings(max_new_tokens=10, temperature=0.7, top_p=0.9, generation_seed=7)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("tiny")
    model_dir = build_tiny_model(root / "model", TEXTS, seed=0)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, init_lora_weights=False,
                                                  target_modules=["q_proj", "v_proj", "o_proj", "down_proj"]))
    with torch.no_grad():  # make the adapter clearly non-trivial
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.mul_(20)
    peft_model.save_pretrained(root / "adapter")
    return str(model_dir), str(root / "adapter")


def test_prompt_has_empty_think_block(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny[0])
    text = render_prompt(tok, "hello")
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") and "<|im_start|>user\nhello<|im_end|>" in text


def test_strip_think():
    assert strip_think("<think>\nplan\n</think>\n\n  Great point!  ") == "Great point!"
    assert strip_think("Nice</think> one") == "Nice one"
    assert strip_think("") == ""


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_same_seed_same_output_and_adapter_differs(tiny):
    base_dir, adapter_dir = tiny
    a = generate_replies(base_dir, None, PROMPTS, SETTINGS, batch_size=2)
    b = generate_replies(base_dir, None, PROMPTS, SETTINGS, batch_size=2)
    assert a == b and len(a) == 3 and all(isinstance(x, str) for x in a)
    assert not any("<think>" in x for x in a)
    c = generate_replies(base_dir, adapter_dir, PROMPTS, SETTINGS, batch_size=2)
    assert c != a
    other_seed = generate_replies(base_dir, None, PROMPTS, SETTINGS.model_copy(update={"generation_seed": 8}), batch_size=2)
    assert other_seed != a  # the seed is actually used
    base, adapter = generate_pair(base_dir, adapter_dir, PROMPTS, SETTINGS, batch_size=2)
    assert base == a and adapter == c


def test_greedy_and_bad_prompts(tiny):
    greedy = SETTINGS.model_copy(update={"temperature": 0.0})
    assert decoding_config(greedy) == {"max_new_tokens": 10, "do_sample": False}
    assert generate_replies(tiny[0], None, PROMPTS[:1], greedy) == generate_replies(tiny[0], None, PROMPTS[:1], greedy)
    assert generate_replies(tiny[0], None, [], SETTINGS) == []
    with pytest.raises(ValueError, match="empty"):
        generate_replies(tiny[0], None, ["ok", "  "], SETTINGS)
    with pytest.raises(FileNotFoundError):
        generate_replies(tiny[0], tiny[0], PROMPTS[:1], SETTINGS)  # a model folder is not an adapter


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_perplexity(tiny):
    base_dir, adapter_dir = tiny
    replies = ["Agents never sleep, that is the point.", "Coffee, always.", "Only if you like weekends at work."]
    p_reply = perplexity(base_dir, None, replies, PROMPTS)
    p_whole = perplexity(base_dir, None, replies)
    assert math.isfinite(p_reply) and p_reply > 1 and p_reply != p_whole
    general = load_general_texts()
    assert len(general) >= 30 and all(isinstance(t, str) and t for t in general)
    p_base = perplexity(base_dir, None, general[:8])
    p_adapter = perplexity(base_dir, adapter_dir, general[:8])
    assert math.isfinite(p_base) and math.isfinite(p_adapter) and p_base != p_adapter
    assert math.isnan(perplexity(base_dir, None, ["", "  "]))
    with pytest.raises(ValueError):
        perplexity(base_dir, None, replies, PROMPTS[:1])
