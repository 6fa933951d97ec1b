"""The platforms the bot knows, in one registry: how each is switched on, started and allow-listed.

A platform not listed here is unknown: its messages are refused (``bot.entry.access``) and no
admin entry may name it (``ADMIN_USERS``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the configuration's parsers read this registry: no import cycle at run time
    from bot.config import Config
    from bot.entry.service import ConversationService
    from bot.ports import PlatformAdapter

# Allow-listed ids of one platform: workspaces (servers, teams), channels, people; empty = all.
Allowed = tuple[frozenset[str], frozenset[str], frozenset[str]]
_OPEN: Allowed = (frozenset(), frozenset(), frozenset())


@dataclass(frozen=True, slots=True)
class Platform:
    """One platform: its name in conversation keys, and what the core needs to know of it."""

    name: str
    # "module:Class" of its adapter, imported only when the platform is switched on; None for
    # the console, which runs in the foreground instead of beside the others.
    adapter: str | None
    enabled: Callable[[Config], bool]
    allowed: Callable[[Config], Allowed]
    # What its people call a workspace, in sentences about a workspace's limit.
    workspace_word: str = "workspace"


PLATFORMS: dict[str, Platform] = {
    platform.name: platform
    for platform in (
        Platform(
            "discord",
            "adapters.discord.adapter:DiscordAdapter",
            lambda config: config.discord.enabled,
            lambda config: (
                config.access.discord_guilds,
                config.access.discord_channels,
                config.access.discord_users,
            ),
            workspace_word="server",
        ),
        Platform(
            "slack",
            "adapters.slack.adapter:SlackAdapter",
            lambda config: config.slack.enabled,
            lambda config: (
                config.access.slack_teams,
                config.access.slack_channels,
                config.access.slack_users,
            ),
        ),
        Platform("console", None, lambda config: False, lambda config: _OPEN),
    )
}


def start_adapters(config: Config, service: ConversationService) -> list[PlatformAdapter]:
    """One adapter per platform switched on by the configuration (its credentials are set)."""
    adapters: list[PlatformAdapter] = []
    for platform in PLATFORMS.values():
        if platform.adapter is not None and platform.enabled(config):
            module, _, name = platform.adapter.partition(":")
            adapter_class = getattr(importlib.import_module(module), name)
            adapters.append(adapter_class(config, service))
    return adapters
