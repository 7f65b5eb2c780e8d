"""``replyassets`` command line: normalize | validate | dedupe | review | ...

Each subcommand lives in ``replyassets/commands/<name>.py`` and exposes
``register(subparsers)`` which adds its parser and sets ``func`` (taking the parsed
args, returning an exit code). The CLI never imports Dagster.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Add a module name here when you add a subcommand.
COMMANDS = ["normalize", "validate", "dedupe", "review", "build_tiny_model", "human_eval", "retype"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="replyassets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"replyassets.commands.{name}")
        except ModuleNotFoundError as exc:  # a subcommand not written yet
            if exc.name == f"replyassets.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `replyassets normalize f.json | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
