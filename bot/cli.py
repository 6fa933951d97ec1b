"""Command line: read the configuration, choose what to run, report problems in plain lines."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import Config, ConfigError, load_config, read_environment, require_generation

NOTHING_TO_RUN = (
    "Nothing to run: no platform is configured and this is not an interactive terminal.\n"
    "Set GEMINI_API_KEY, and DISCORD_TOKEN to run on Discord, or SLACK_BOT_TOKEN with "
    "SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode) to run on Slack;\n"
    "or run `python -m bot console` in a terminal to chat from the command line."
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Gemini image generation in Discord, Slack and the terminal.",
    )
    parser.add_argument(
        "mode",
        nargs="?",
        choices=["console", "migrate-db"],
        help="'console' chats in this terminal; 'migrate-db --to URL' copies the SQLite database "
        "into PostgreSQL; without either, every configured platform starts",
    )
    parser.add_argument(
        "--to", metavar="URL", default=None, help="migrate-db: the empty PostgreSQL database to copy into"
    )
    parser.add_argument(
        "--env-file", type=Path, default=None, help="read settings from this file (default .env)"
    )
    return parser.parse_args(argv)


def _fail(lines: Sequence[str], code: int = 2) -> int:
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return code


def platforms_to_start(config: Config) -> list[str]:
    platforms = []
    if config.discord.enabled:
        platforms.append("discord")
    if config.slack.enabled:
        platforms.append("slack")
    return platforms


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = parse_args(argv)
    try:
        config = load_config(read_environment(env_file=args.env_file))
    except ConfigError as exc:
        return _fail(exc.problems)

    if args.mode == "migrate-db":
        from bot.migrate_db import migrate_db  # imported here: only this command needs it

        return migrate_db(config, args.to)

    platforms = platforms_to_start(config)
    console = args.mode == "console" or (not platforms and sys.stdin.isatty())
    if not platforms and not console:
        print(NOTHING_TO_RUN, file=sys.stderr)
        return 2
    if console:
        platforms = []
    try:
        require_generation(config)
    except ConfigError as exc:
        return _fail(exc.problems)

    from bot.runtime import run  # imported here so `--help` and config errors stay instant

    try:
        return asyncio.run(run(config, console=console))
    except KeyboardInterrupt:
        return 130
