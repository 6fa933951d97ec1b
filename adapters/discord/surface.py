"""What every Discord feature group shares, built once by the adapter and handed to each explicitly."""

from __future__ import annotations

from dataclasses import dataclass

import discord

from adapters.discord.files import DiscordFiles
from adapters.discord.interactions import InFlight
from adapters.discord.places import Place, PlaceResolver
from bot.config import Config
from bot.entry.service import ConversationService


@dataclass(frozen=True, slots=True)
class Surface:
    """The client, the core, and the adapter's shared helpers."""

    client: discord.Client
    service: ConversationService
    config: Config
    places: PlaceResolver
    in_flight: InFlight
    files: DiscordFiles

    @classmethod
    def build(cls, client: discord.Client, service: ConversationService, config: Config) -> Surface:
        files = DiscordFiles(api_url=config.discord.api_url, max_bytes=config.images.max_attachment_bytes)
        return cls(client, service, config, PlaceResolver(client), InFlight(), files)

    def channel(self, interaction: discord.Interaction, place: Place) -> discord.abc.Messageable:
        """Where an interaction's replies go (a partial channel when it is not cached)."""
        channel = interaction.channel
        if isinstance(channel, discord.abc.Messageable):
            return channel
        return self.client.get_partial_messageable(place.channel_id, guild_id=place.guild_id)
