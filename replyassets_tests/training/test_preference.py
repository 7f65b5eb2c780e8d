"""DPO, KTO and SFT-then-DPO runs of the training program on the tiny model (CPU, a few steps).

The preference data (conftest.make_pair / make_kto_row) differs systematically: the chosen
(desirable) replies are make_row's analytical style, the rejected (undesirable) ones a short
dismissive style; a method that learns the preference gives the chosen replies the higher
implicit reward, on the training pairs and on held-out ones.
"""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replyassets.training.checkpoints import complete_checkpoints, dir_sha256
from replyassets.training.config import ConfigError, TrainConfig
from replyassets.training.data import DataError, prompt_ids
from replyassets.training.pipes_report import pipes_metadata
from replyassets.training.preference_data import (
    read_kto_file,
    read_preference_file,
    tokenize_kto_rows,
    tokenize_preference_rows,
)
from replyassets.training.stages import _pretokenized_trainers, run_training
from replyassets.training.train import main
from replyassets_tests.training.conftest import (
    make_kto_row,
    make_pair,
    preference_config,
    write_jsonl,
)

PROJECT = Path(__file__).resolve().parents[2]
PROMPT_END = "<|im_start|>assistant\n<think>\n\n</think>\n\n"
# The tiny model with random weights needs a far higher rate than an 8B model (config defaults 5e-6).
FAST = {"learning_rate": 1e-3}


def _quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def tok(preference_setup):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(preference_setup / "model")


def _think_ids(tok) -> set[int]:
    return {tok.convert_tokens_to_ids("<think>"), tok.convert_tokens_to_ids("</think>")}


def _series(curve: list[dict], key: str) -> list[float]:
    return [r[key] for r in curve if key in r]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


# --------------------------------------------------------------------------- tokens


@pytest.mark.slow
def test_dpo_tokens_put_the_think_block_in_the_prompt(tok, preference_setup, tmp_path):
    """On real tokens: the prompt TRL trains on ends with the empty think block; chosen and
    rejected are the reply + <|im_end|> only (no think token, no trailing newline)."""
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig

    rows = read_preference_file(preference_setup / "pref_train.jsonl")[:4]
    ex = tokenize_preference_rows(tok, rows, 512, "pref")
    for row, e in zip(rows, ex, strict=True):
        assert tok.decode(e["prompt_ids"]).endswith(PROMPT_END)
        assert e["prompt_ids"] == prompt_ids(tok, row["prompt"])  # exactly what generation sees
        assert tok.decode(e["chosen_ids"]) == row["chosen"][0]["content"] + "<|im_end|>"
        assert tok.decode(e["rejected_ids"]) == row["rejected"][0]["content"] + "<|im_end|>"
        assert not _think_ids(tok) & set(e["chosen_ids"] + e["rejected_ids"])
        assert _think_ids(tok) <= set(e["prompt_ids"])
        # prompt + chosen is the template's own rendering of the conversation, minus its final "\n"
        full = tok.apply_chat_template(row["prompt"] + row["chosen"], tokenize=False, enable_thinking=False)
        assert tok.decode(e["prompt_ids"] + e["chosen_ids"]) + "\n" == full

    # What TRL's DPOTrainer actually trains on: its prepared dataset and its collator's masks.
    dpo_trainer, _ = _pretokenized_trainers()
    trainer = dpo_trainer(
        model=AutoModelForCausalLM.from_pretrained(preference_setup / "model"),
        args=DPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], max_length=512),
        train_dataset=datasets.Dataset.from_list(ex),
        processing_class=tok,
    )
    prepared = trainer.train_dataset
    for key in ("prompt_ids", "chosen_ids", "rejected_ids"):
        assert [list(x) for x in prepared[key]] == [e[key] for e in ex]
    batch = trainer.data_collator([prepared[0], prepared[1]])
    ids, att, comp = batch["input_ids"], batch["attention_mask"].bool(), batch["completion_mask"].bool()
    for i, (row, kind) in enumerate([(rows[0], "chosen"), (rows[1], "chosen"), (rows[0], "rejected"), (rows[1], "rejected")]):
        assert tok.decode(ids[i][comp[i]].tolist()) == row[kind][0]["content"] + "<|im_end|>"
        scored = ids[i][comp[i]].tolist()
        assert not _think_ids(tok) & set(scored)
        assert tok.decode(ids[i][att[i] & ~comp[i]].tolist()).endswith(PROMPT_END)


def test_kto_tokens_put_the_think_block_in_the_prompt(tok, preference_setup, tmp_path):
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import KTOConfig

    rows = read_kto_file(preference_setup / "kto_eval.jsonl")[:4]
    assert [r["label"] for r in rows] == [True, False, True, False]
    ex = tokenize_kto_rows(tok, rows, 512, "kto")
    for row, e in zip(rows, ex, strict=True):
        assert tok.decode(e["prompt_ids"]).endswith(PROMPT_END)
        assert tok.decode(e["completion_ids"]) == row["completion"][0]["content"] + "<|im_end|>"
        assert e["label"] is row["label"]
    _, kto_trainer = _pretokenized_trainers()
    trainer = kto_trainer(
        model=AutoModelForCausalLM.from_pretrained(preference_setup / "model"),
        args=KTOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], max_length=512, per_device_train_batch_size=2),
        train_dataset=datasets.Dataset.from_list(ex),
        processing_class=tok,
    )
    prepared = trainer.train_dataset
    assert [list(x) for x in prepared["completion_ids"]] == [e["completion_ids"] for e in ex]
    # TRL's KL completions: within each batch of 2, each prompt with the other row's completion
    assert [list(x) for x in prepared["KL_completion_ids"]] == [ex[1]["completion_ids"], ex[0]["completion_ids"], ex[3]["completion_ids"], ex[2]["completion_ids"]]
    batch = trainer.data_collator([prepared[0], prepared[1]])
    for i in range(2):
        comp = batch["completion_mask"][i].bool()
        assert tok.decode(batch["input_ids"][i][comp].tolist()) == rows[i]["completion"][0]["content"] + "<|im_end|>"
        prompt = batch["attention_mask"][i].bool() & ~comp
        assert tok.decode(batch["input_ids"][i][prompt].tolist()).endswith(PROMPT_END)
    assert batch["label"].tolist() == [True, False]


# --------------------------------------------------------------------------- runs


@pytest.mark.slow
def test_dpo_run_learns_the_preferred_style(preference_setup, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "out"
    cfg = preference_config(preference_setup, out, "dpo", max_steps=12, eval_steps=4, sample_generations=1, dpo=FAST)
    result = run_training(TrainConfig.from_dict(cfg), log=_quiet)
    assert result["method"] == "dpo" and result["global_step"] == 12 and result["init_adapter"] is None
    curve = result["reward_curve"]
    margins, acc = _series(curve, "rewards/margins"), _series(curve, "rewards/accuracies")
    assert len(margins) == len(acc) == 12  # logged every step
    # step 1: the policy is the reference (a fresh LoRA adapter is a no-op): zero rewards, no pair ranked
    assert margins[0] == 0.0 and acc[0] == 0.0
    # then the chosen replies gain reward over the rejected ones
    assert margins[-1] > 0.3 and _mean(margins[-4:]) > _mean(margins[:4]) + 0.2
    assert acc[-1] >= 0.75
    # ... on held-out pairs too (tweets the training never saw)
    eval_margins, eval_acc = _series(curve, "eval_rewards/margins"), _series(curve, "eval_rewards/accuracies")
    assert [r["step"] for r in curve if "eval_rewards/margins" in r] == [4, 8, 12]
    assert eval_margins[-1] > eval_margins[0] and eval_margins[-1] > 0.3
    assert eval_acc[-1] >= 0.75
    pm = result["preference_metrics"]
    assert pm["rewards/margins"]["first"] == margins[0] and pm["rewards/margins"]["last"] == margins[-1]
    assert pm["rewards/chosen"]["last"] > pm["rewards/rejected"]["last"]
    # the DPO loss starts at ln 2 (equal rewards) and falls
    train = [r["train_loss"] for r in result["loss_curve"] if r["train_loss"] is not None]
    assert abs(train[0] - math.log(2)) < 1e-3 and train[-1] < 0.6
    assert result["final_eval_loss"] < math.log(2) - 0.1
    # perplexity of a preference loss is meaningless: not reported
    assert result["eval_perplexity"] is None and result["train_perplexity"] is None
    assert result["train_tokens_per_s"] > 0 and result["train_steps_per_s"] > 0
    assert not result["gap_alarm"] and result["train_eval_gap"] is not None
    assert [h["step"] for h in result["sample_generations"]] == [4, 8, 12]
    # checkpoints and the adapter (LoRA on the 7 projections)
    assert [s for s, _ in complete_checkpoints(out)] == [4, 8, 12]
    adapter = Path(result["adapter_path"])
    assert result["adapter_sha256"] == dir_sha256(adapter)
    assert not (adapter / "ref").exists()
    acfg = json.loads((adapter / "adapter_config.json").read_text())
    assert sorted(acfg["target_modules"]) == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    base = AutoModelForCausalLM.from_pretrained(preference_setup / "model")
    ids = torch.tensor([[1, 5, 9, 12, 20]])
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, str(adapter))(ids).logits
    assert not torch.allclose(before, tuned)
    # the Pipes metadata carries the reward metrics
    md = pipes_metadata(result)
    assert md["method"]["raw_value"] == "dpo"
    assert md["rewards_margins_first"]["raw_value"] == margins[0]
    assert md["rewards_margins_last"]["raw_value"] == margins[-1]
    assert md["rewards_accuracies_last"]["raw_value"] == acc[-1]
    assert md["eval_rewards_margins_last"]["raw_value"] == eval_margins[-1]
    assert md["reward_curve"]["raw_value"] == curve
    assert md["reward_curve_table"]["raw_value"].startswith("| step | rewards/chosen | rewards/rejected | rewards/margins | rewards/accuracies |")
    assert md["eval_perplexity"]["type"] == "null"


@pytest.mark.slow
def test_kto_run_raises_the_desirable_reward_over_the_undesirable(preference_setup, tmp_path):
    cfg = preference_config(preference_setup, tmp_path / "out", "kto", max_steps=12, eval_steps=4, sample_generations=0, kto=FAST)
    result = run_training(TrainConfig.from_dict(cfg), log=_quiet)
    assert result["method"] == "kto" and result["global_step"] == 12
    assert result["train_rows"] == 96 and result["eval_rows"] == 12
    curve = result["reward_curve"]
    # Criterion: the implicit reward of desirable replies minus that of undesirable ones
    # (rewards/margins; KTO logs it for steps whose batch holds both kinds) grows, in training
    # and on the held-out rows, and the KTO loss falls from its starting value 0.5.
    margins = _series(curve, "rewards/margins")
    assert len(margins) >= 8 and margins[0] == 0.0
    assert margins[-1] > 0.3 and _mean(margins[-3:]) > _mean(margins[:3]) + 0.2
    eval_margins = _series(curve, "eval_rewards/margins")
    assert len(eval_margins) == 3 and eval_margins[0] < eval_margins[-1] and eval_margins[-1] > 0.3
    last_eval = curve[-1]
    assert last_eval["eval_rewards/chosen"] > 0 > last_eval["eval_rewards/rejected"]
    assert len(_series(curve, "kl")) == 12  # the KL estimate is logged (and reported)
    train = [r["train_loss"] for r in result["loss_curve"] if r["train_loss"] is not None]
    assert abs(train[0] - 0.5) < 1e-3 and train[-1] < 0.45
    md = pipes_metadata(result)
    assert md["method"]["raw_value"] == "kto"
    assert md["kl_last"]["type"] == "float" and md["eval_rewards_margins_last"]["raw_value"] == eval_margins[-1]
    assert "kl" in md["reward_curve_table"]["raw_value"]


@pytest.mark.slow
def test_qlora_dpo_runs_on_4bit_nf4(preference_setup, tmp_path):
    cfg = preference_config(
        preference_setup, tmp_path / "out", "dpo", quantization="nf4", max_steps=4, eval_steps=2, sample_generations=0, dpo=FAST
    )
    result = run_training(TrainConfig.from_dict(cfg), log=_quiet)
    assert result["quantized_4bit_layers"] == 14  # the 7 projections of both layers
    assert result["global_step"] == 4 and [s for s, _ in complete_checkpoints(tmp_path / "out")] == [2, 4]
    margins = _series(result["reward_curve"], "rewards/margins")
    assert len(margins) == 4 and all(math.isfinite(m) for m in margins)
    assert margins[0] == 0.0 and margins[-1] > 0.05  # it learns under 4-bit weights too
    assert (Path(result["adapter_path"]) / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_dpo_early_stopping_and_gap_alarm_on_contradicting_eval_pairs(preference_setup, tmp_path):
    # eval pairs with chosen and rejected swapped: the more DPO learns the training preference,
    # the higher the eval loss, so it stops early and the train/eval gap alarm fires
    swapped = [{**p, "chosen": p["rejected"], "rejected": p["chosen"]} for p in map(make_pair, range(1000, 1012))]
    cfg = preference_config(
        preference_setup, tmp_path / "out", "dpo",
        preference_eval_file=str(write_jsonl(tmp_path / "swapped.jsonl", swapped)),
        max_steps=40, eval_steps=2, warmup_ratio=0.0, lr_scheduler="constant", sample_generations=0, dpo=FAST,
    )
    result = run_training(TrainConfig.from_dict(cfg), log=_quiet)
    evals = [r for r in result["loss_curve"] if r["eval_loss"] is not None]
    assert all(a["eval_loss"] < b["eval_loss"] for a, b in zip(evals, evals[1:], strict=False))  # rising
    # patience 3: the best evaluation is the first, the run stops at the third without improvement
    assert result["early_stopped"] and result["best_step"] == evals[0]["step"] == 2
    assert result["global_step"] == evals[3]["step"] == 8 < 40
    assert abs(result["final_eval_loss"] - evals[0]["eval_loss"]) < 1e-3  # the best model, loaded at the end
    assert [s for s, _ in complete_checkpoints(tmp_path / "out")] == [2, 4, 6, 8]  # best 3 + the latest
    assert result["train_eval_gap"] == result["final_eval_loss"] - result["final_train_loss"] > 0.3
    assert result["gap_alarm"]


def _completion_logp(model, tok, pair: dict) -> float:
    import torch

    p_ids = prompt_ids(tok, pair["prompt"])
    ex = tokenize_preference_rows(tok, [{**pair, "where": "x"}], 512, "x")[0]
    ids = torch.tensor([p_ids + ex["chosen_ids"]])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
    targets = ids[0, 1:]
    return float(logp[torch.arange(len(targets)), targets][len(p_ids) - 1 :].sum())


@pytest.mark.slow
def test_sft_then_dpo_continues_the_sft_adapter_against_the_sft_model(preference_setup, tok, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "out"
    cfg = preference_config(preference_setup, out, "sft+dpo", max_steps=6, eval_steps=3, sample_generations=0, dpo=FAST)
    logs: list[str] = []
    result = run_training(TrainConfig.from_dict(cfg), log=logs.append)
    sft, dpo = result["stages"]["sft"], result["stages"]["dpo"]
    assert result["method"] == "sft+dpo" and sft["method"] == "sft" and dpo["method"] == "dpo"
    assert (out / "stage-sft" / "result.json").is_file() and (out / "stage-dpo" / "result.json").is_file()
    assert [s for s, _ in complete_checkpoints(out / "stage-sft")] == [3, 6] == [s for s, _ in complete_checkpoints(out / "stage-dpo")]
    # both stages' metrics
    assert sft["global_step"] == dpo["global_step"] == 6
    assert sft["eval_perplexity"] > 1 and sft["final_eval_loss"] > 1
    assert dpo["preference_metrics"]["rewards/margins"]["last"] > 0
    assert result["final_eval_loss"] == dpo["final_eval_loss"] and result["preference_metrics"] == dpo["preference_metrics"]
    # the final adapter is the DPO one, in adapter_dir; the SFT one stays in stage-sft/adapter
    assert result["adapter_path"] == str((out / "adapter").resolve()) == dpo["adapter_path"]
    assert result["adapter_sha256"] == dir_sha256(out / "adapter") == dpo["adapter_sha256"]
    assert sft["adapter_sha256"] == dir_sha256(out / "stage-sft" / "adapter") != dpo["adapter_sha256"]
    assert dpo["init_adapter"] == sft["adapter_path"]
    assert not (out / "adapter" / "ref").exists()  # TRL's frozen reference copy is not part of it

    # The reference model is the SFT model, not the base: the SFT adapter moves the chosen
    # replies' log-probabilities away from the base model's, yet DPO's first step logs zero
    # rewards (beta * (log p_policy - log p_ref)): there policy = reference = base + SFT adapter.
    base = AutoModelForCausalLM.from_pretrained(preference_setup / "model")
    pair = make_pair(3)
    base_logp = _completion_logp(base, tok, pair)
    sft_logp = _completion_logp(PeftModel.from_pretrained(base, sft["adapter_path"]), tok, pair)
    assert abs(sft_logp - base_logp) > 0.05
    first = dpo["reward_curve"][0]
    assert first["step"] == 1 and first["rewards/chosen"] == 0.0 and first["rewards/rejected"] == 0.0

    # How: TRL copies the loaded (trainable) SFT adapter into a frozen "ref" adapter
    dpo_trainer, _ = _pretokenized_trainers()
    import datasets
    from trl import DPOConfig

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(preference_setup / "model"), sft["adapter_path"], is_trainable=True)
    trainer = dpo_trainer(
        model=model,
        args=DPOConfig(output_dir=str(tmp_path / "probe"), use_cpu=True, bf16=False, report_to=[], max_length=512),
        train_dataset=datasets.Dataset.from_list(tokenize_preference_rows(tok, read_preference_file(cfg["preference_train_file"])[:2], 512, "p")),
        processing_class=tok,
    )
    assert set(trainer.model.peft_config) == {"default", "ref"} and trainer.ref_model is None
    params = dict(trainer.model.named_parameters())
    ref = {n: p for n, p in params.items() if ".ref." in n}
    default = {n: p for n, p in params.items() if ".default." in n}
    assert ref and len(ref) == len(default)
    assert not any(p.requires_grad for p in ref.values()) and all(p.requires_grad for p in default.values())
    assert all(torch.equal(p, params[n.replace(".ref.", ".default.")]) for n, p in ref.items())

    # a rerun: the finished SFT stage is reused, the DPO stage resumes from its last checkpoint
    logs2: list[str] = []
    again = run_training(TrainConfig.from_dict(cfg), log=logs2.append)
    assert any(m.startswith("stage sft: already complete") for m in logs2)
    assert "resuming from checkpoint-6 (global step 6)" in logs2
    assert again["stages"]["sft"]["adapter_sha256"] == sft["adapter_sha256"]
    assert again["stages"]["dpo"]["resumed_from_step"] == 6
    # (resuming a finished run, transformers 5 trains one more step, for SFT as for DPO)
    assert again["global_step"] in (6, 7) and again["stages"]["sft"]["global_step"] == 6
    md = pipes_metadata(result)
    assert md["method"]["raw_value"] == "sft+dpo"
    assert md["sft_final_eval_loss"]["raw_value"] == sft["final_eval_loss"]
    assert md["dpo_final_eval_loss"]["raw_value"] == dpo["final_eval_loss"]
    assert md["dpo_global_step"]["raw_value"] == 6 and md["sft_adapter_sha256"]["raw_value"] == sft["adapter_sha256"]
    assert set(md["stages"]["raw_value"]) == {"sft", "dpo"}
    assert md["rewards_margins_last"]["raw_value"] == dpo["preference_metrics"]["rewards/margins"]["last"]


@pytest.mark.slow
def test_killed_dpo_run_resumes_from_its_checkpoint(preference_setup, tmp_path):
    out = tmp_path / "out"
    cfg = preference_config(
        preference_setup, out, "dpo", max_steps=24, eval_steps=2, sample_generations=0, early_stopping_patience=100, dpo=FAST
    )
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
    result = json.loads((out / "result.json").read_text())
    resumed = result["resumed_from_step"]
    assert resumed >= last  # a later checkpoint may have completed during the kill
    assert f"resuming from checkpoint-{resumed} (global step {resumed})" in rerun.stdout
    # the global step continued from the checkpoint: the rerun trained steps resumed+1..24 only
    logged = [int(m) for m in re.findall(r"^step (\d+): .*\bloss=", rerun.stdout, re.M)]
    assert logged and min(logged) == resumed + 1 and max(logged) == 24
    assert result["global_step"] == 24
    # the history from before the kill is kept: the reward curve starts at step 1
    margins = [r for r in result["reward_curve"] if "rewards/margins" in r]
    assert [r["step"] for r in margins] == list(range(1, 25))
    assert margins[0]["rewards/margins"] == 0.0 and margins[-1]["rewards/margins"] > 0.3


@pytest.mark.slow
def test_dpo_through_dagster_pipes(preference_setup, tmp_path):
    import dagster as dg

    from replyassets.defs.launchers import TrainingLauncher, train_eval_gap_check_spec

    out = tmp_path / "out"
    cfg = preference_config(preference_setup, out, "dpo", max_steps=4, eval_steps=2, sample_generations=1, dpo=FAST)

    @dg.asset(check_specs=[train_eval_gap_check_spec("dpo_adapter")])
    def dpo_adapter(context: dg.AssetExecutionContext, training_launcher: TrainingLauncher) -> dg.MaterializeResult:
        return training_launcher.launch(context, cfg)

    result = dg.materialize([dpo_adapter], resources={"training_launcher": TrainingLauncher(kind="local")}, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    md = result.get_asset_materialization_events()[0].materialization.metadata
    saved = json.loads((out / "result.json").read_text())
    assert md["method"].value == "dpo"
    assert md["adapter_sha256"].value == saved["adapter_sha256"] == dir_sha256(out / "adapter")
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        name = key.replace("/", "_")
        assert md[f"{name}_first"].value == saved["preference_metrics"][key]["first"]
        assert md[f"{name}_last"].value == saved["preference_metrics"][key]["last"]
    assert md["reward_curve"].value == saved["reward_curve"]
    assert md["final_eval_loss"].value == saved["final_eval_loss"] and md["train_tokens_per_s"].value > 0
    checks = result.get_asset_check_evaluations()
    assert checks[0].passed is (not md["gap_alarm"].value)


# --------------------------------------------------------------------------- config and data errors


def _cfg(**over) -> dict:
    return {"base_model": "m", "output_dir": "o", **over}


def test_method_and_files_are_validated_at_config_time():
    with pytest.raises(ConfigError, match="method must be one of sft, dpo, kto, sft\\+dpo, not 'ppo'"):
        TrainConfig.from_dict(_cfg(method="ppo", train_file="a", eval_file="b"))
    # each method names the file key it misses
    with pytest.raises(ConfigError, match=r"needs `preference_train_file` \(method 'dpo'\)"):
        TrainConfig.from_dict(_cfg(method="dpo", train_file="a", eval_file="b"))
    with pytest.raises(ConfigError, match="needs `preference_eval_file`"):
        TrainConfig.from_dict(_cfg(method="dpo", preference_train_file="p"))
    with pytest.raises(ConfigError, match=r"needs `kto_eval_file` \(method 'kto'\)"):
        TrainConfig.from_dict(_cfg(method="kto", kto_train_file="k"))
    with pytest.raises(ConfigError, match=r"needs `train_file` \(method 'sft\+dpo'\)"):
        TrainConfig.from_dict(_cfg(method="sft+dpo", preference_train_file="p", preference_eval_file="q"))
    with pytest.raises(ConfigError, match="needs `preference_train_file`"):
        TrainConfig.from_dict(_cfg(method="sft+dpo", train_file="a", eval_file="b"))
    # dpo / kto need no SFT files; sft needs none of the preference files
    assert TrainConfig.from_dict(_cfg(method="dpo", preference_train_file="p", preference_eval_file="q")).stages == ("dpo",)
    assert TrainConfig.from_dict(_cfg(method="kto", kto_train_file="k", kto_eval_file="l")).stages == ("kto",)
    both = TrainConfig.from_dict(_cfg(method="sft+dpo", train_file="a", eval_file="b", preference_train_file="p", preference_eval_file="q"))
    assert both.stages == ("sft", "dpo")
    assert TrainConfig.from_dict(_cfg(train_file="a", eval_file="b")).method == "sft"
    # nested hyperparameters: unknown keys and bad values
    dpo = _cfg(method="dpo", preference_train_file="p", preference_eval_file="q")
    with pytest.raises(ConfigError, match=r"unknown dpo keys \['betta'\]"):
        TrainConfig.from_dict({**dpo, "dpo": {"betta": 0.2}})
    with pytest.raises(ConfigError, match=r"unknown kto keys \['loss'\]"):
        TrainConfig.from_dict({**dpo, "kto": {"loss": "kto"}})
    with pytest.raises(ConfigError, match="dpo.loss_type must be one of sigmoid"):
        TrainConfig.from_dict({**dpo, "dpo": {"loss_type": "orpo"}})
    with pytest.raises(ConfigError, match=r"`dpo.beta` must be a number > 0, not 0"):
        TrainConfig.from_dict({**dpo, "dpo": {"beta": 0}})
    with pytest.raises(ConfigError, match=r"`kto.undesirable_weight` must be a number > 0"):
        TrainConfig.from_dict({**dpo, "kto": {"undesirable_weight": -1}})
    with pytest.raises(ConfigError, match="`dpo` must be an object"):
        TrainConfig.from_dict({**dpo, "dpo": 0.1})
    with pytest.raises(ConfigError, match="method 'kto' needs `batch_size` >= 2"):
        TrainConfig.from_dict(_cfg(method="kto", kto_train_file="k", kto_eval_file="l", batch_size=1))
    ok = TrainConfig.from_dict({**dpo, "dpo": {"beta": 0.25, "loss_type": "ipo"}})
    assert (ok.dpo.beta, ok.dpo.loss_type, ok.dpo.learning_rate, ok.dpo.epochs) == (0.25, "ipo", 5e-6, 1)


def test_bad_preference_rows_name_file_and_line(tmp_path):
    good = make_pair(1)
    path = tmp_path / "p.jsonl"

    def fails(rows: list, match: str, reader=read_preference_file) -> None:
        path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
        with pytest.raises(DataError, match=match):
            reader(path)

    same = {**good, "rejected": good["chosen"]}
    fails([good, "", same], re.escape(f"{path}:3: `chosen` and `rejected` are the same reply"))  # line 3: blank lines count
    fails([good, {k: v for k, v in good.items() if k != "rejected"}], re.escape(f"{path}:2: `rejected` must be a non-empty list"))
    fails([{**good, "chosen": [{"role": "assistant", "content": "  "}]}], re.escape(f"{path}:1: `chosen` must be exactly one non-empty assistant message"))
    fails([{**good, "prompt": [{"role": "assistant", "content": "hi"}]}], re.escape(f"{path}:1: `prompt` must end with a user message"))
    fails([{**good, "prompt": [{"role": "bot", "content": "hi"}]}], re.escape(f"{path}:1: every message of `prompt` needs a role"))
    fails(["{not json"], re.escape(f"{path}:1: not valid JSON"))
    fails([], re.escape(f"{path}: no rows"))
    kto = make_kto_row(1, True)
    fails([kto, {**kto, "label": 1}], re.escape(f"{path}:2: `label` must be true or false, not 1"), read_kto_file)
    fails([{**kto, "completion": []}], re.escape(f"{path}:1: `completion` must be a non-empty list"), read_kto_file)
    # extra keys are ignored
    path.write_text(json.dumps({**good, "score": 0.9}) + "\n")
    assert read_preference_file(path)[0]["chosen"] == good["chosen"]


def test_kto_training_needs_both_labels(tok, tmp_path):
    rows = read_kto_file(write_jsonl(tmp_path / "k.jsonl", [make_kto_row(i, True) for i in range(3)]))
    with pytest.raises(DataError, match="needs both desirable"):
        tokenize_kto_rows(tok, rows, 512, "k.jsonl", both_labels=True)
    assert len(tokenize_kto_rows(tok, rows, 512, "k.jsonl")) == 3  # fine for an eval file
    with pytest.raises(DataError, match="no row has a reply token left after truncation to 20 tokens"):
        tokenize_kto_rows(tok, rows, 20, "k.jsonl")


def test_missing_preference_file_fails_the_program(preference_setup, tmp_path, capsys):
    path = tmp_path / "c.json"
    cfg = preference_config(preference_setup, tmp_path / "out", "dpo", preference_train_file=str(tmp_path / "none.jsonl"))
    path.write_text(json.dumps(cfg))
    assert main(["--config", str(path)]) == 2
    assert f"data file not found: {tmp_path / 'none.jsonl'}" in capsys.readouterr().err
    path.write_text(json.dumps({k: v for k, v in cfg.items() if k != "preference_eval_file"}))
    assert main(["--config", str(path)]) == 2
    assert "needs `preference_eval_file`" in capsys.readouterr().err
    # sft+dpo: a bad preference file fails before the SFT stage trains
    bad = write_jsonl(tmp_path / "bad.jsonl", [make_pair(1), {**make_pair(2), "rejected": make_pair(2)["chosen"]}])
    cfg = preference_config(preference_setup, tmp_path / "both", "sft+dpo", preference_eval_file=str(bad))
    path.write_text(json.dumps(cfg))
    assert main(["--config", str(path)]) == 2
    assert f"{bad}:2: `chosen` and `rejected` are the same reply" in capsys.readouterr().err
    assert not (tmp_path / "both" / "stage-sft").exists()


def test_settings_mirror_the_preference_config(tmp_path):
    from replyassets.settings import TrainingSettings, load_settings
    from replyassets.training.config import DpoConfigSpec, KtoConfigSpec

    # same defaults on both sides (the settings are dumped into the training config)
    defaults = TrainingSettings()
    assert defaults.method == TrainConfig.method == "sft"
    assert defaults.dpo.model_dump() == DpoConfigSpec().__dict__
    assert defaults.kto.model_dump() == KtoConfigSpec().__dict__
    training = load_settings("local").training
    dumped = {**training.model_dump(mode="json"), "method": "sft+dpo", "output_dir": str(tmp_path)}
    with pytest.raises(ConfigError, match="needs `train_file`"):
        TrainConfig.from_dict(dumped)
    cfg = TrainConfig.from_dict(
        {**dumped, "train_file": "t", "eval_file": "e", "preference_train_file": "p", "preference_eval_file": "q"}
    )
    assert cfg.method == "sft+dpo" and cfg.dpo.learning_rate == training.dpo.learning_rate == 5e-4
    assert cfg.kto.beta == 0.1
