"""Leaving a workspace: when the bot is uninstalled from a Slack workspace, loses its bot token
there, or is removed from a Discord server (and when an operator runs ``python -m bot
forget-workspace``), everything it kept for that workspace is deleted: conversations, the images
nothing else holds, settings and pins. The usage ledger stays (no content; the spend cap and the
monthly totals count it)."""

from __future__ import annotations

import dataclasses
import logging

from bot.ports import Maintenance
from bot.vocabulary import WorkspaceForgotten

log = logging.getLogger(__name__)


async def forget_workspace(
    store: Maintenance, platform: str, workspace: str, *, reason: str
) -> WorkspaceForgotten:
    """Delete what ``store`` keeps for ``workspace``, with one log line of what went (counts and
    ids, never a name)."""
    forgotten = await store.forget_workspace(platform, workspace)
    log.info(
        "workspace forgotten",
        extra={
            "platform": platform,
            "workspace": workspace,
            "reason": reason,
            **dataclasses.asdict(forgotten),
        },
    )
    return forgotten
