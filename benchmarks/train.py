"""Training throughput: steps/s and tokens/s of the training program, padded batches (baseline)
next to packing (TRL BFD packing) and padding-free batching, measured in the same run.

CPU (default): the tiny local Qwen3 model (LoRA, fp32), synthetic tweet/reply rows of varied
length (so padding costs something). ``--gpu``: a Qwen3-8B-shaped model initialised from its
config (random weights, no download) loaded with QLoRA 4-bit NF4; also records peak GPU memory.

    .venv/bin/python benchmarks/train.py [--steps 30] [--rows 256] [--gpu] [--small]

``--small``: 2 steps on 32 rows, 8 eval rows, sequences of 128 tokens, every variant (the test
suite's mode, replyassets_tests/test_benchmarks.py). Every mode asserts each variant trained:
its steps ran, it counted tokens, its losses are finite.

tokens/s counts non-padding input tokens over pure training-step time (eval, saving and
generation excluded). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _cpu import cpu_figures, print_cpu

from replyassets.training.config import TrainConfig
from replyassets.training.tiny_model import build_tiny_model
from replyassets.training.stages import run_training

WORDS = (
    "agents startups scaling open source gpus data quality evaluation fine tuning latency cost "
    "users product launch hiring remote teams python rust benchmarks models reasoning context"
).split()
PROMPT = "Generate an engaging Twitter reply to:\n\n{tweet}"

QWEN3_8B_SHAPE = dict(
    hidden_size=4096,
    intermediate_size=12288,
    num_hidden_layers=36,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=40960,
)


def rows(n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        tweet = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 45)))
        reply = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 40)))
        user = {"role": "user", "content": PROMPT.format(tweet=tweet)}
        asst = {"role": "assistant", "content": reply}
        out.append({"prompt": [user], "completion": [asst], "messages": [user, asst], "tweet_id": f"t{i}", "reply_id": f"r{i}"})
    return out


def write(path: Path, items: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in items))
    return str(path)


def build_8b_shaped(root: Path, tok_dir: Path) -> Path:
    """Qwen3-8B-shaped random model in bf16 (about 16 GB on disk), tokenizer from the tiny build."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    out = root / "qwen3-8b-shaped"
    tok = AutoTokenizer.from_pretrained(tok_dir)
    cfg = Qwen3Config(vocab_size=151936, tie_word_embeddings=False, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, dtype="bfloat16", **QWEN3_8B_SHAPE)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="default 30 (--small: 2)")
    ap.add_argument("--rows", type=int, default=None, help="default 256 (--small: 32)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-seq-len", type=int, default=None, help="default 256 (--small: 128)")
    ap.add_argument("--small", action="store_true", help="2 steps of every variant: the test suite's mode")
    ap.add_argument("--gpu", action="store_true", help="Qwen3-8B-shaped model, QLoRA NF4, on CUDA")
    ap.add_argument("--variants", default="padded,packing,padding_free")
    args = ap.parse_args()
    args.steps = args.steps if args.steps is not None else (2 if args.small else 30)
    args.rows = args.rows if args.rows is not None else (32 if args.small else 256)
    args.max_seq_len = args.max_seq_len if args.max_seq_len is not None else (128 if args.small else 256)
    cpu = cpu_figures()
    print_cpu(cpu)
    if not args.gpu:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        train, evals = rows(args.rows, 0), rows(8 if args.small else 16, 1)
        train_file, eval_file = write(root / "train.jsonl", train), write(root / "eval.jsonl", evals)
        texts = [m["content"] for r in train for m in r["messages"]]
        tiny = build_tiny_model(root / "tiny", texts, seed=0)
        base = build_8b_shaped(root, tiny) if args.gpu else tiny
        variants = {
            "padded": dict(packing=False, padding_free=False),
            "packing": dict(packing=True, padding_free=False),
            "padding_free": dict(packing=False, padding_free=True),
        }
        results = {}
        for name in args.variants.split(","):
            cfg = TrainConfig.from_dict(
                {
                    "base_model": str(base),
                    "train_file": train_file,
                    "eval_file": eval_file,
                    "output_dir": str(root / f"out-{name}"),
                    "quantization": "nf4" if args.gpu else "none",
                    "max_steps": args.steps,
                    "eval_steps": args.steps,
                    "logging_steps": args.steps,
                    "batch_size": args.batch_size,
                    "grad_accum": 1,
                    "max_seq_len": args.max_seq_len,
                    "sample_generations": 0,
                    "resume": False,
                    **variants[name],
                }
            )
            t0 = time.perf_counter()
            r = run_training(cfg, log=lambda m: None)
            assert r["global_step"] == args.steps and r["train_tokens"] > 0, f"{name}: not every step ran"
            assert r["final_train_loss"] is not None and math.isfinite(r["final_train_loss"]), \
                f"{name}: training loss {r['final_train_loss']}"
            results[name] = {
                "steps_per_s": round(r["train_steps_per_s"], 3),
                "tokens_per_s": round(r["train_tokens_per_s"], 1),
                "tokens": r["train_tokens"],
                "final_train_loss": round(r["final_train_loss"], 4),
                "peak_memory_mb": round(r["peak_memory_mb"], 1),
                "peak_memory_kind": r["peak_memory_kind"],
                "wall_s": round(time.perf_counter() - t0, 1),
            }
            print(f"{name:13s} steps/s {results[name]['steps_per_s']:8.3f}  tokens/s {results[name]['tokens_per_s']:10.1f}  "
                  f"peak {results[name]['peak_memory_mb']:.0f} MB ({r['peak_memory_kind']})", flush=True)

    base_tps = results.get("padded", {}).get("tokens_per_s")
    summary = {
        "benchmark": "train",
        "device": "cuda" if args.gpu else "cpu",
        "model": "qwen3-8b-shaped-nf4" if args.gpu else "tiny-qwen3",
        "steps": args.steps,
        "batch_size": args.batch_size,
        "max_seq_len": args.max_seq_len,
        "small": args.small,
        "cpu": cpu,
        **{f"{k}_{m}": v[m] for k, v in results.items() for m in ("steps_per_s", "tokens_per_s", "peak_memory_mb")},
    }
    if base_tps:
        for k in results:
            if k != "padded":
                summary[f"{k}_tokens_speedup"] = round(results[k]["tokens_per_s"] / base_tps, 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
