"""CLI subcommands (one module each, see replyassets/cli.py)."""
