"""The trainer callbacks of a stage: checkpoint rotation by eval loss, throughput, sample
generations at each evaluation and log forwarding.

Imports transformers at module level: ``stages.run_stage`` imports this module when it trains.
"""

from __future__ import annotations

import shutil
import time
from typing import Any, NamedTuple

import torch
from transformers import TrainerCallback

from replyassets.training.checkpoints import Log, checkpoint_step, complete_checkpoints
from replyassets.training.data import prompt_ids


class BestCheckpoints(TrainerCallback):
    """Keep the best ``save_total_limit`` checkpoints by eval loss, plus the latest (resume)."""

    def __init__(self, save_total_limit: int):
        self.save_total_limit = save_total_limit

    def on_save(self, args, state, control, **kw):
        losses = {int(e["step"]): e["eval_loss"] for e in state.log_history if "eval_loss" in e}
        ckpts = complete_checkpoints(args.output_dir)
        if not ckpts:
            return
        latest = ckpts[-1][0]
        ranked = sorted((losses.get(s, float("inf")), s) for s, _ in ckpts)
        keep = {s for _, s in ranked[: self.save_total_limit]} | {latest}
        best = checkpoint_step(state.best_model_checkpoint)
        if best is not None:
            keep.add(best)
        for s, p in ckpts:
            if s not in keep:
                shutil.rmtree(p, ignore_errors=True)


class Throughput(TrainerCallback):
    """Pure training time (no eval / save / generation) for steps/s and tokens/s."""

    def __init__(self):
        self.train_time = 0.0
        self.steps = 0
        self.tokens_start = None
        self._t = None

    def on_train_begin(self, args, state, control, **kw):
        self.tokens_start = state.num_input_tokens_seen

    def on_step_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self._t is not None:
            self.train_time += time.perf_counter() - self._t
            self.steps += 1
            self._t = None

    def tokens(self, state) -> int:
        return int(state.num_input_tokens_seen - (self.tokens_start or 0))

    def rates(self, state) -> dict[str, Any]:
        """Steps/s and tokens/s over the pure training time, and the tokens trained on."""
        tokens = self.tokens(state)
        t = self.train_time
        return {
            "train_steps_per_s": self.steps / t if t else None,
            "train_tokens_per_s": tokens / t if t else None,
            "train_tokens": tokens,
        }


class Samples(TrainerCallback):
    """Greedy replies to a few fixed eval tweets at every evaluation."""

    def __init__(self, tokenizer, samples: list[dict], max_new_tokens: int, log: Log):
        self.tokenizer = tokenizer
        self.samples = samples
        self.max_new_tokens = max_new_tokens
        self.log = log
        self.end_id = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
        self.history: list[dict[str, Any]] = []
        self.enabled = True

    def reply(self, model, prompt: str) -> str:
        """The model's greedy reply to ``prompt``, up to the end token."""
        tok = self.tokenizer
        ids = torch.tensor([prompt_ids(tok, prompt)], device=model.device)
        gen = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            eos_token_id=self.end_id,
        )
        new = gen[0, ids.shape[1] :].tolist()
        if self.end_id in new:
            new = new[: new.index(self.end_id)]
        return tok.decode(new, skip_special_tokens=False)

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kw):
        if not self.enabled or not self.samples or model is None:
            return
        was_training = model.training
        model.eval()
        with torch.no_grad():
            outs = [{"tweet_id": s["tweet_id"], "reply": self.reply(model, s["prompt"])} for s in self.samples]
        if was_training:
            model.train()
        entry = {"step": state.global_step, "eval_loss": (metrics or {}).get("eval_loss"), "samples": outs}
        self.history.append(entry)
        for o in outs:
            self.log(f"sample @ step {state.global_step} tweet {o['tweet_id']}: {o['reply']!r}")


class LogForward(TrainerCallback):
    """Every trainer log line to ``log`` as ``key=value`` pairs, floats to 4 significant digits
    (``step 80: epoch=1.333 loss=6.049``; result.json keeps the exact figures)."""

    def __init__(self, log: Log):
        self.log = log

    def on_log(self, args, state, control, logs=None, **kw):
        if logs:
            self.log(f"step {state.global_step}: {log_pairs(logs)}")


def log_pairs(values: dict[str, Any]) -> str:
    """``{"loss": 6.0487831, "epoch": 1.3333}`` -> ``epoch=1.333 loss=6.049`` (keys sorted)."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(values.items()))


class StageCallbacks(NamedTuple):
    best_checkpoints: BestCheckpoints
    throughput: Throughput
    samples: Samples
    log_forward: LogForward


def stage_callbacks(save_total_limit: int, tokenizer, samples: list[dict], max_new_tokens: int, log: Log) -> StageCallbacks:
    return StageCallbacks(
        BestCheckpoints(save_total_limit), Throughput(), Samples(tokenizer, samples, max_new_tokens, log), LogForward(log)
    )
