"""The LoRA / QLoRA training program the launcher runs.

    python -m replyassets.training.train --config CONFIG.json

``method`` (config.py) picks SFT, DPO, KTO, or SFT then DPO (``stage-sft/`` and ``stage-dpo/``
under ``output_dir``, the DPO stage continuing the SFT adapter against the SFT model).

Runs on its own (writes ``<output_dir>/result.json``) and under Dagster Pipes (detected from
the Pipes env vars): logs stream through ``pipes.log``, the result is reported with
``report_asset_materialization`` and the train/eval gap alarm with ``report_asset_check``.
Under Pipes the config may also come from the extra ``training_config`` (no --config needed).

Imports nothing from Dagster but ``dagster_pipes`` (the GPU image has no orchestrator).
A rerun with the same ``output_dir`` resumes from the last complete checkpoint.

This module is the command line only; the work is done in
``stages.py`` (trainer and stages), ``callbacks.py``, ``checkpoints.py``, ``curves.py``,
``plots.py`` and ``pipes_report.py`` (Pipes metadata and reporting).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from replyassets.training.config import ConfigError, TrainConfig
from replyassets.training.data import DataError
from replyassets.training.pipes_report import is_pipes_process, run_with_pipes
from replyassets.training.stages import run_training, skip_unused_bitsandbytes


def main(argv: list[str] | None = None, program: bool = False) -> int:
    """``program``: this process is the training program itself (``python -m``), not a caller
    that imports it: only then are libraries the config does not use kept out (bitsandbytes)."""
    parser = argparse.ArgumentParser(prog="python -m replyassets.training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="training config JSON (optional under Pipes: extra `training_config`)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if is_pipes_process():
            return run_with_pipes(args.config, skip_bitsandbytes=program)
        if not args.config:
            parser.error("--config is required outside Dagster Pipes")
        cfg = TrainConfig.from_file(args.config)
        if program:
            skip_unused_bitsandbytes(cfg.quantization)
        run_training(cfg, log=lambda m: print(m, flush=True))
        return 0
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception:  # noqa: BLE001 - a crash leaves its traceback; the rerun resumes
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main(program=True))
