"""The Discord permissions the bot uses: what each REST call needs, the invite asking for exactly
those, and the one log line naming the permission a 403 says is missing."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import discord

log = logging.getLogger(__name__)

MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013


@dataclass(frozen=True, slots=True)
class RestCall:
    """One REST call the bot makes; ``route`` is the path after the API base, ids as ``{id}``;
    ``needs`` names the ``discord.Permissions`` flags Discord checks for it in a server."""

    method: str
    route: str
    needs: tuple[str, ...] = ()


# Every REST call the adapter makes (Discord's API reference for what each needs). Login, the
# gateway URL, command registration and interaction answers need no channel permission; members
# need Use Application Commands to run ours, the bot does not. Receiving a channel's messages on
# the gateway needs View Channel, which servers where @everyone cannot see channels do not give.
REST_CALLS = (
    RestCall("GET", "/users/@me"),
    RestCall("GET", "/oauth2/applications/@me"),
    RestCall("GET", "/gateway/bot"),
    RestCall("PUT", "/applications/{id}/commands"),
    RestCall("PUT", "/applications/{id}/guilds/{id}/commands"),
    RestCall("GET", "/channels/{id}", ("view_channel",)),
    RestCall("POST", "/channels/{id}/typing", ("view_channel", "send_messages", "send_messages_in_threads")),
    # A reply (reference) needs Read Message History; an image needs Attach Files.
    RestCall(
        "POST",
        "/channels/{id}/messages",
        ("view_channel", "send_messages", "send_messages_in_threads", "attach_files", "read_message_history"),
    ),
    RestCall("GET", "/channels/{id}/messages/{id}", ("view_channel", "read_message_history")),
    RestCall("POST", "/channels/{id}/messages/{id}/threads", ("view_channel", "create_public_threads")),
    RestCall("POST", "/interactions/{id}/{token}/callback"),
    RestCall("GET", "/webhooks/{id}/{token}/messages/@original"),
    RestCall("PATCH", "/webhooks/{id}/{token}/messages/@original"),
    RestCall("POST", "/webhooks/{id}/{token}"),
)

INVITE_PERMISSIONS = discord.Permissions(**{name: True for call in REST_CALLS for name in call.needs})
INVITE_SCOPES = ("bot", "applications.commands")


def invite_url(application_id: int) -> str:
    """Adds the bot to a server (a server install): it reads and posts there with these permissions."""
    url = discord.utils.oauth_url(application_id, permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES)
    return f"{url}&integration_type=0"


def user_install_url(application_id: int) -> str:
    """Adds the commands to a person's own account (a user install): usable in any server, group
    DM or DM, answered through the interaction where the bot is not a member."""
    url = discord.utils.oauth_url(application_id, scopes=("applications.commands",))
    return f"{url}&integration_type=1"


def missing_permission(
    exc: discord.HTTPException, *, doing: str, in_thread: bool, files: bool = False
) -> str | None:
    """The permission (as Discord's settings name it) a 403 from ``doing`` ("post" or "thread")
    says the bot lacks, or None when it is not a permission error."""
    if exc.status != 403 or exc.code not in (MISSING_ACCESS, MISSING_PERMISSIONS):
        return None
    if exc.code == MISSING_ACCESS:
        return "View Channel"
    if doing == "thread":
        return "Create Public Threads"
    needed = "Send Messages in Threads" if in_thread else "Send Messages"
    return f"{needed} or Attach Files" if files else needed


def log_if_forbidden(
    exc: discord.HTTPException, *, doing: str, channel_id: int | None, in_thread: bool, files: bool = False
) -> bool:
    """One warning naming the missing permission when ``exc`` is Discord's 403 for one; True if
    it logged (the caller then need not log the failure again)."""
    permission = missing_permission(exc, doing=doing, in_thread=in_thread, files=files)
    if permission is None:
        return False
    log.warning(
        "discord permission missing: %s",
        permission,
        extra={"permission": permission, "channel_id": channel_id, "code": exc.code, "doing": doing},
    )
    return True
