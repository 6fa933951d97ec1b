"""Leaving a workspace: when the bot is uninstalled from a Slack workspace, loses its bot token
there, or is removed from a Discord server (and when an operator runs ``python -m bot
forget-workspace``), everything it kept for that workspace is deleted: conversations, the images
nothing else holds, settings and pins; and the interactions Google keeps for its conversations
(GEMINI_API=interactions). The usage ledger stays (no content; the spend cap and the monthly
totals count it)."""

from __future__ import annotations

import dataclasses
import logging

from bot.ports import Maintenance
from bot.turns.forgetting import DropRemote
from bot.vocabulary import WorkspaceForgotten

log = logging.getLogger(__name__)


async def forget_workspace(
    store: Maintenance,
    platform: str,
    workspace: str,
    *,
    reason: str,
    drop_remote: DropRemote | None = None,
) -> WorkspaceForgotten:
    """Delete what ``store`` keeps for ``workspace``, then with ``drop_remote`` (the engine's
    ``forget_interactions``) the interactions Google keeps for its conversations, whose ids the
    store collected from the model records before deleting them. One log line of what went
    (counts and ids, never a name); a failure on Google's side is logged, never raised: the
    workspace is forgotten here anyway."""
    forgotten = await store.forget_workspace(platform, workspace)
    remote = forgotten.interactions
    log.info(
        "workspace forgotten",
        extra={
            "platform": platform,
            "workspace": workspace,
            "reason": reason,
            **dataclasses.asdict(forgotten),
            "interactions": len(remote),
        },
    )
    if remote and drop_remote is not None:
        try:
            gone = await drop_remote(remote)
        except Exception as exc:  # the data here is gone; Google's copy expires on its own
            log.warning(
                "could not delete the workspace's stored interactions",
                extra={"platform": platform, "workspace": workspace, "error": type(exc).__name__},
            )
        else:
            log.info(
                "stored interactions deleted",
                extra={"platform": platform, "workspace": workspace, "deleted": gone, "of": len(remote)},
            )
    return forgotten
