"""Real LoRA / QLoRA runs of the training program on the tiny model (CPU, a few steps)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replyassets.training.checkpoints import complete_checkpoints, dir_sha256
from replyassets.training.config import ConfigError, TrainConfig
from replyassets.training.stages import run_training
from replyassets.training.train import main
from replyassets_tests.training.conftest import base_config, make_row, write_jsonl

PROJECT = Path(__file__).resolve().parents[2]


def _quiet(_msg: str) -> None:
    pass


def _assert_common(result: dict, out: Path) -> None:
    adapter = Path(result["adapter_path"])
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert result["adapter_sha256"] == dir_sha256(adapter)
    assert json.loads((out / "result.json").read_text())["adapter_sha256"] == result["adapter_sha256"]
    assert result["curated_set_hash"] == "sha256:curated-test"
    assert result["final_eval_loss"] > 0 and result["eval_perplexity"] > 1
    assert result["train_steps_per_s"] > 0 and result["train_tokens_per_s"] > 0
    assert result["peak_memory_mb"] > 0
    evals = [r for r in result["loss_curve"] if r["eval_loss"] is not None]
    assert [r["step"] for r in evals] == list(range(result["config"]["eval_steps"], result["global_step"] + 1, result["config"]["eval_steps"]))
    # fixed sample tweets at every evaluation
    assert [h["step"] for h in result["sample_generations"]] == [r["step"] for r in evals]
    assert all([s["tweet_id"] for s in h["samples"]] == ["t1000", "t1001"] for h in result["sample_generations"])
    assert Path(result["loss_curve_plot"]).read_bytes()[:4] == b"\x89PNG"
    cfg = json.loads(Path(adapter / "adapter_config.json").read_text())
    assert sorted(cfg["target_modules"]) == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    assert cfg["r"] == 16 and cfg["lora_alpha"] == 16


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_lora_run_trains_a_real_adapter(tiny_setup, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "out"
    result = run_training(TrainConfig.from_dict(base_config(tiny_setup, out)), log=_quiet)
    _assert_common(result, out)
    assert result["global_step"] == 6 and result["quantized_4bit_layers"] == 0
    assert result["resumed_from_step"] is None
    # the adapter changes the model's output
    base = AutoModelForCausalLM.from_pretrained(tiny_setup / "model")
    ids = torch.tensor([[1, 5, 9, 12, 20]])
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, result["adapter_path"])(ids).logits
    assert not torch.allclose(before, tuned)
    # learning rate from the config (2e-4 peak), not SFTConfig's 2e-5 default
    lrs = [e for e in json.loads((out / f"checkpoint-6/trainer_state.json").read_text())["log_history"] if "learning_rate" in e]
    assert max(e["learning_rate"] for e in lrs) > 1e-4


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_qlora_run_uses_4bit_nf4(tiny_setup, tmp_path):
    out = tmp_path / "out"
    result = run_training(
        TrainConfig.from_dict(base_config(tiny_setup, out, quantization="nf4", max_steps=4, eval_steps=2)), log=_quiet
    )
    _assert_common(result, out)
    # every one of the 7 projections in both layers is a bitsandbytes 4-bit layer
    assert result["quantized_4bit_layers"] == 14
    assert result["global_step"] == 4


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_early_stopping_fires_on_an_overfitting_set(tiny_setup, tmp_path):
    # one reply memorised over and over; eval replies share nothing with it: eval loss turns up
    write_jsonl(tmp_path / "train.jsonl", [make_row(i, reply="alpha bravo charlie delta echo foxtrot golf hotel alpha bravo") for i in range(4)])
    write_jsonl(tmp_path / "eval.jsonl", [make_row(100 + i, reply="1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6") for i in range(4)])
    cfg = base_config(
        tiny_setup,
        tmp_path / "out",
        train_file=str(tmp_path / "train.jsonl"),
        eval_file=str(tmp_path / "eval.jsonl"),
        max_steps=60,
        eval_steps=2,
        learning_rate=3e-3,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        sample_generations=0,
        lora={"r": 16, "alpha": 32, "dropout": 0.0},
    )
    result = run_training(TrainConfig.from_dict(cfg), log=_quiet)
    curve = [r for r in result["loss_curve"] if r["eval_loss"] is not None]
    best = min(curve, key=lambda r: r["eval_loss"])
    assert result["early_stopped"] and result["global_step"] < 60
    # patience 3 / threshold 0.01: it stops at the third evaluation in a row without a 0.01 improvement
    ref, waited, stop = curve[0]["eval_loss"], 0, None
    for r in curve[1:]:
        if r["eval_loss"] < ref - 0.01:
            ref, waited = r["eval_loss"], 0
        else:
            waited += 1
        if waited == 3:
            stop = r["step"]
            break
    assert result["global_step"] == stop
    assert result["best_step"] == best["step"] < stop
    assert abs(result["final_eval_loss"] - best["eval_loss"]) < 1e-3  # best model loaded at the end
    assert curve[-1]["eval_loss"] > best["eval_loss"] + 0.01  # eval loss went up while train loss fell
    train = [r["train_loss"] for r in result["loss_curve"] if r["train_loss"] is not None]
    assert train[-1] < train[0] - 0.3
    # best 3 checkpoints by eval loss, plus the latest one (for resume)
    kept = [s for s, _ in complete_checkpoints(tmp_path / "out")]
    best3 = sorted(curve, key=lambda r: r["eval_loss"])[:3]
    assert set(kept) == {r["step"] for r in best3} | {result["global_step"]}
    # the gap alarm: eval loss above train loss by more than 0.3
    assert result["train_eval_gap"] > 0.3 and result["gap_alarm"]


@pytest.mark.slow
def test_killed_run_resumes_from_its_checkpoint(tiny_setup, tmp_path):
    out = tmp_path / "out"
    cfg = base_config(tiny_setup, out, max_steps=24, eval_steps=2, sample_generations=0, early_stopping_patience=100)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "replyassets.training.train", "--config", str(path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if any(step >= 4 for step, _ in complete_checkpoints(out)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "result.json").exists()
    last = complete_checkpoints(out)[-1][0]
    assert 4 <= last < 24

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming from checkpoint-{last}" in rerun.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["resumed_from_step"] >= last  # a later checkpoint may have completed during the kill
    assert result["global_step"] == 24
    # the history from before the kill is kept: the curve starts at step 1, not at the resume point
    assert result["loss_curve"][0]["step"] == 1


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown training config keys"):
        TrainConfig.from_dict({"base_model": "m", "train_file": "a", "eval_file": "b", "output_dir": "o", "lr": 1})
    with pytest.raises(ConfigError, match="needs `train_file`"):
        TrainConfig.from_dict({"base_model": "m", "eval_file": "b", "output_dir": "o"})
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"base_model": "m", "train_file": str(tmp_path / "none.jsonl"), "eval_file": "e", "output_dir": str(tmp_path / "o")}))
    assert main(["--config", str(cfg)]) == 2
    assert "data file not found" in capsys.readouterr().err
    (tmp_path / "t.jsonl").write_text(json.dumps(make_row(1)) + "\n")
    cfg.write_text(json.dumps({"base_model": str(tmp_path / "no-model"), "train_file": str(tmp_path / "t.jsonl"), "eval_file": str(tmp_path / "t.jsonl"), "output_dir": str(tmp_path / "o")}))
    assert main(["--config", str(cfg)]) == 2
    assert "cannot load the base model" in capsys.readouterr().err


def test_settings_dump_is_a_valid_training_config(tmp_path):
    from replyassets.settings import load_settings

    training = load_settings("production").training
    cfg = TrainConfig.from_dict(
        {**training.model_dump(mode="json"), "train_file": "t.jsonl", "eval_file": "e.jsonl", "output_dir": str(tmp_path)}
    )
    assert cfg.learning_rate == 2e-4 and cfg.lora.r == 16 and cfg.lora.alpha == 16 and cfg.lora.dropout == 0.1
    assert cfg.quantization == training.quantization and cfg.eval_steps == 50 and cfg.save_total_limit == 3
    assert len(cfg.lora.target_modules) == 7 and cfg.adapter_dir == str(tmp_path / "adapter")


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_the_training_program_keeps_bitsandbytes_out_unless_it_quantizes():
    """peft and transformers import bitsandbytes whenever it is installed (seconds of CPU in every
    training process); the program keeps it out when nothing is 4-bit, and nf4 still gets it."""
    code = (
        "import sys\n"
        "from replyassets.training.stages import skip_unused_bitsandbytes as skip\n"
        "assert skip(sys.argv[1]) == (sys.argv[1] != 'nf4')\n"
        "import peft\n"
        "from transformers.utils import is_bitsandbytes_available\n"
        "print('loaded' if sys.modules.get('bitsandbytes') is not None else 'kept out', is_bitsandbytes_available())\n"
    )
    out = {q: subprocess.run([sys.executable, "-c", code, q], capture_output=True, text=True, timeout=600, check=True)
           .stdout.split() for q in ("none", "nf4")}
    assert out["none"] == ["kept", "out", "False"]
    assert out["nf4"][-1] == "True"  # available to the 4-bit path (peft may import it lazily)
    source = (Path(__file__).resolve().parents[2] / "replyassets" / "training" / "train.py").read_text()
    assert "sys.exit(main(program=True))" in source  # the program (not an importer) is what skips it
