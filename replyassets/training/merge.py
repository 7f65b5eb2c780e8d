"""Merge a LoRA adapter into its base model, and push the result to the Hugging Face Hub.

    python -m replyassets.training.merge ADAPTER_DIR OUT_DIR [--base BASE] [--push-to ORG/NAME]

The base model defaults to the adapter's ``base_model_name_or_path``. The merge loads the base
in bf16/fp32 (never 4-bit: a merged model needs full weights). The push uses ``HF_TOKEN`` from
the environment only; the token is never printed or logged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path


class MergeError(RuntimeError):
    pass


def _dir_sha256(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(x for x in folder.rglob("*") if x.is_file()):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, base_model: str | None = None, dtype: str = "auto") -> Path:
    """``merge_and_unload`` the adapter into its base and ``save_pretrained`` model + tokenizer."""
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise MergeError(f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json)")
    base = base_model or PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
    torch_dtype = {"auto": "auto", "bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir), safe_serialization=True)
    tok_src = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base
    AutoTokenizer.from_pretrained(str(tok_src)).save_pretrained(str(out_dir))
    return out_dir


def push_to_hub(folder: str | Path, repo_id: str, private: bool = True, token: str | None = None) -> str:
    """Upload ``folder`` to ``repo_id``; the token comes from ``HF_TOKEN`` (never logged)."""
    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise MergeError("HF_TOKEN is not set: the merged model was saved locally and not pushed")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="replyassets: merged LoRA adapter")
    except Exception as exc:  # noqa: BLE001 - one clear message; the token never appears in it
        msg = str(exc).replace(token, "***")
        raise MergeError(f"push to the Hugging Face Hub ({repo_id}) failed: {type(exc).__name__}: {msg[:300]}") from None
    return str(getattr(info, "commit_url", info))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m replyassets.training.merge", description=__doc__.splitlines()[0])
    p.add_argument("adapter_dir")
    p.add_argument("out_dir")
    p.add_argument("--base", default=None, help="base model folder or hub id (default: the adapter's)")
    p.add_argument("--dtype", choices=["auto", "bf16", "fp32"], default="auto")
    p.add_argument("--push-to", default=None, help="hub repo id; pushed only when HF_TOKEN is set")
    p.add_argument("--public", action="store_true")
    args = p.parse_args(argv)
    try:
        out = merge_adapter(args.adapter_dir, args.out_dir, args.base, args.dtype)
        result = {"merged_path": str(out.resolve()), "merged_sha256": _dir_sha256(out), "pushed": None}
        if args.push_to:
            if not os.environ.get("HF_TOKEN"):
                print("HF_TOKEN not set: skipping the push (merged model saved locally)", file=sys.stderr)
            else:
                result["pushed"] = push_to_hub(out, args.push_to, private=not args.public)
    except MergeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
