"""Command line: read the configuration, choose what to run, report problems in plain lines."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import Config, ConfigError, load_config, read_environment, require_generation
from bot.text import model_words
from bot.vocabulary import WorkspaceForgotten
from storage.errors import StoreError

# The platforms whose workspaces the store keys (the adapters' PLATFORM names).
PLATFORMS = ("console", "discord", "slack")

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
        choices=["console", "migrate-db", "forget-workspace"],
        help="'console' chats in this terminal; 'migrate-db --to URL' copies the SQLite database "
        "into PostgreSQL; 'forget-workspace PLATFORM WORKSPACE_ID' deletes what the bot keeps for "
        "one Slack workspace or Discord server; without any, every configured platform starts",
    )
    parser.add_argument("place", nargs="*", metavar="PLATFORM WORKSPACE_ID", help="forget-workspace: which")
    parser.add_argument(
        "--to", metavar="URL", default=None, help="migrate-db: the empty PostgreSQL database to copy into"
    )
    parser.add_argument(
        "--env-file", type=Path, default=None, help="read settings from this file (default .env)"
    )
    args = parser.parse_args(argv)
    if args.place and args.mode != "forget-workspace":
        parser.error(f"unrecognized arguments: {' '.join(args.place)}")
    return args


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
    if args.mode == "forget-workspace":
        return forget_workspace(config, args.place)

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


FORGET_USAGE = (
    "forget-workspace needs a platform and a workspace id: python -m bot forget-workspace slack T0123ABCD "
    "(a Slack team id), discord 123456789012345678 (a Discord server id) or console local."
)


def forget_workspace(config: Config, place: Sequence[str]) -> int:
    """Delete everything the bot keeps for one workspace, as leaving it does (with GEMINI_API_KEY
    set, the interactions Google keeps for its conversations too); lines on stdout saying what
    went, or one on stderr. Returns the exit code (2: wrong arguments, 1: no database)."""
    if len(place) != 2 or place[0] not in PLATFORMS or not place[1].strip():
        return _fail([FORGET_USAGE])
    platform, workspace = place[0], place[1].strip()
    # Imported here: only this command needs them.
    from bot.composition import build_engine, describe_store, open_store
    from bot.entry.leaving import forget_workspace as forget

    remote_gone: list[int] = []

    async def run() -> WorkspaceForgotten:
        store = open_store(config)
        await store.open()
        engine = build_engine(config) if config.gemini.api_key is not None else None

        async def drop_remote(ids: Sequence[str]) -> int:
            assert engine is not None
            remote_gone.append(await engine.forget_interactions(ids))
            return remote_gone[-1]

        try:
            return await forget(
                store, platform, workspace, reason="operator", drop_remote=drop_remote if engine else None
            )
        finally:
            await store.close()
            if engine is not None:
                await engine.aclose()

    try:
        gone = asyncio.run(run())
    except (StoreError, OSError) as exc:
        return _fail([f"cannot open the database at {describe_store(config)}: {exc}"], code=1)
    if not gone.anything:
        print(f"Nothing was stored for {platform} workspace {workspace}; nothing deleted.")
        return 0
    print(
        f"Deleted for {platform} workspace {workspace}: {_many(gone.conversations, 'conversation')} "
        f"({_many(gone.turns, 'turn')}), {_many(gone.images, 'image')}, {_many(gone.settings, 'setting')} "
        f"and {_many(gone.pins, 'pin')}. Its usage ledger rows are kept (they hold no content; the spend "
        "cap and monthly totals count them)."
    )
    if gone.interactions:
        kept = len(set(gone.interactions))
        print(
            model_words.remote_deleted(sum(remote_gone), kept)
            if remote_gone
            else model_words.remote_left(kept)
        )
    return 0


def _many(count: int, thing: str) -> str:
    return f"{count} {thing}" if count == 1 else f"{count} {thing}s"
