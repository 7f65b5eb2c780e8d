"""Merging an adapter into the tiny base model; the Hub push's no-token and unreachable paths."""

from __future__ import annotations

import json
import socket

import pytest

from replyassets.training.config import TrainConfig
from replyassets.training.merge import MergeError, main, merge_adapter, push_to_hub
from replyassets.training.stages import run_training
from replyassets_tests.training.conftest import base_config


@pytest.fixture(scope="module")
def adapter(tiny_setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("merge") / "out"
    cfg = base_config(tiny_setup, out, max_steps=2, eval_steps=2, sample_generations=0, learning_rate=1e-2)
    return run_training(TrainConfig.from_dict(cfg), log=lambda m: None)["adapter_path"]


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_merged_model_matches_base_plus_adapter(tiny_setup, adapter, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged_dir = merge_adapter(adapter, tmp_path / "merged", base_model=str(tiny_setup / "model"), dtype="fp32")
    assert not (merged_dir / "adapter_config.json").exists()
    ids = torch.tensor([[1, 4, 9, 16, 25]])
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_setup / "model"), adapter)
    base = AutoModelForCausalLM.from_pretrained(tiny_setup / "model")
    with torch.no_grad():
        a, b, c = merged(ids).logits, with_adapter.eval()(ids).logits, base(ids).logits
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-4)


def test_push_without_token_is_skipped_with_a_clear_message(adapter, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(MergeError, match="HF_TOKEN is not set"):
        push_to_hub(tmp_path, "org/model")
    assert main([adapter, str(tmp_path / "m"), "--push-to", "org/model"]) == 0
    captured = capsys.readouterr()
    assert "skipping the push" in captured.err
    assert json.loads(captured.out)["pushed"] is None


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_push_to_unreachable_hub_is_a_clear_error_without_the_token(adapter, tmp_path, monkeypatch, capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    secret = "hf_supersecret_token_value"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    with pytest.raises(MergeError, match=r"push to the Hugging Face Hub \(org/model\) failed") as err:
        push_to_hub(tmp_path, "org/model")
    assert secret not in str(err.value)
    assert main([adapter, str(tmp_path / "m"), "--push-to", "org/model"]) == 2
    captured = capsys.readouterr()
    assert "push to the Hugging Face Hub" in captured.err and secret not in captured.err + captured.out


def test_not_an_adapter_folder(tmp_path):
    with pytest.raises(MergeError, match="not a LoRA adapter folder"):
        merge_adapter(tmp_path, tmp_path / "out")
