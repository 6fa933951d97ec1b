"""The slash commands (/imagine, /aspect, /size, /model, /think, /forget, /help, /usage), built from the
model (the reference board's /pin, /pins, /unpin are in adapters/discord/pins.py)."""

from __future__ import annotations

from typing import Any, Protocol

import discord
from discord import app_commands

from bot.entry.commands import CommandName
from bot.gemini.capabilities import ModelCapabilities

# Discord allows at most 25 choices per option.
MAX_CHOICES = 25
PROMPT_MAX = 1500


class MalformedOptions(app_commands.AppCommandError):
    """An interaction whose option values are not of the declared types (a forged or broken
    client): discord.py passes them on unchecked, so each command checks what it got."""


def text_option(value: object) -> str:
    if not isinstance(value, str):
        raise MalformedOptions("an option that should be text is not")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else text_option(value)


def optional_attachment(value: object) -> discord.Attachment | None:
    found = _attachments(value)
    return found[0] if found else None


def _attachments(*values: object) -> list[discord.Attachment]:
    if not all(v is None or isinstance(v, discord.Attachment) for v in values):
        raise MalformedOptions("an option that should be a file is not")
    return [v for v in values if isinstance(v, discord.Attachment)]


class ImagineHandler(Protocol):
    """What /imagine runs (``adapters.discord.conversation``)."""

    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        aspect_ratio: str | None,
        images: list[discord.Attachment],
    ) -> None: ...


class SettingsHandler(Protocol):
    """What the conversation commands run (``adapters.discord.settings``)."""

    async def setting(
        self, interaction: discord.Interaction, name: CommandName, value: str | None
    ) -> None: ...

    async def forget(self, interaction: discord.Interaction) -> None: ...

    async def help(self, interaction: discord.Interaction) -> None: ...

    async def usage(self, interaction: discord.Interaction) -> None: ...


def _choices(values: tuple[str, ...]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=v, value=v) for v in values[:MAX_CHOICES]]


def build_commands(
    conversation: ImagineHandler,
    handler: SettingsHandler,
    caps: ModelCapabilities,
    models: tuple[str, ...] = (),
) -> list[app_commands.Command[Any, ..., Any]]:
    """The commands for this model: choices are its aspect ratios, /size exists only when it
    has image sizes, and /model when people may pick among ``models``. Built at start-up, never
    at import."""
    ratios = _choices(caps.aspect_ratios)
    imagine = _imagine_command(conversation, ratios)

    @app_commands.command(
        name="aspect", description="Aspect ratio for this thread (or this channel's default outside threads)"
    )
    @app_commands.describe(ratio="The new aspect ratio; leave empty to see the current one")
    @app_commands.choices(ratio=ratios)
    async def aspect(interaction: discord.Interaction, ratio: str | None = None) -> None:
        await handler.setting(interaction, CommandName.ASPECT, _optional_text(ratio))

    @app_commands.command(name="forget", description="Delete this thread's image history from the bot")
    async def forget(interaction: discord.Interaction) -> None:
        await handler.forget(interaction)

    @app_commands.command(name="help", description="How to make and refine images with this bot")
    async def help_(interaction: discord.Interaction) -> None:
        await handler.help(interaction)

    @app_commands.command(name="usage", description="Images you made and their estimated cost")
    async def usage(interaction: discord.Interaction) -> None:
        await handler.usage(interaction)

    commands: list[app_commands.Command[Any, ..., Any]] = [imagine, aspect, forget, help_, usage]
    if len(models) > 1:
        commands.insert(2, _model_command(handler, models))
    if caps.supports_sizes():
        commands.insert(2, _size_command(handler, caps))
    if caps.supports_thinking():
        commands.insert(2, _think_command(handler, caps))
    return commands


def _imagine_command(
    conversation: ImagineHandler, ratios: list[app_commands.Choice[str]]
) -> app_commands.Command[Any, ..., Any]:
    @app_commands.command(name="imagine", description="Make an image from a prompt; refine it in the thread")
    @app_commands.describe(
        prompt="What to draw, e.g. a red bicycle at dawn, watercolor",
        aspect_ratio="Shape of the image",
        image="A photo to edit or combine",
        image2="Another photo",
        image3="Another photo",
    )
    @app_commands.choices(aspect_ratio=ratios)
    async def imagine(
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX],
        aspect_ratio: str | None = None,
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
    ) -> None:
        images = _attachments(image, image2, image3)
        await conversation.imagine(interaction, text_option(prompt), _optional_text(aspect_ratio), images)

    return imagine


def _size_command(handler: SettingsHandler, caps: ModelCapabilities) -> app_commands.Command[Any, ..., Any]:
    @app_commands.command(
        name="size", description="Image size for this thread (or this channel's default outside threads)"
    )
    @app_commands.describe(size="The new image size; leave empty to see the current one")
    @app_commands.choices(size=_choices(caps.image_sizes))
    async def size(interaction: discord.Interaction, size: str | None = None) -> None:
        await handler.setting(interaction, CommandName.SIZE, _optional_text(size))

    return size


def _think_command(handler: SettingsHandler, caps: ModelCapabilities) -> app_commands.Command[Any, ..., Any]:
    @app_commands.command(
        name="think",
        description="How much the model thinks before drawing, for this thread (or this channel's default)",
    )
    @app_commands.describe(level="The thinking level; leave empty to see the current one")
    @app_commands.choices(level=_choices(caps.thinking_levels))
    async def think(interaction: discord.Interaction, level: str | None = None) -> None:
        await handler.setting(interaction, CommandName.THINK, _optional_text(level))

    return think


def _model_command(handler: SettingsHandler, models: tuple[str, ...]) -> app_commands.Command[Any, ..., Any]:
    @app_commands.command(
        name="model",
        description="Image model for this thread (or this channel's default outside threads)",
    )
    @app_commands.describe(model="The model to draw with; leave empty to see the current one")
    @app_commands.choices(model=_choices(models))
    async def model(interaction: discord.Interaction, model: str | None = None) -> None:
        await handler.setting(interaction, CommandName.MODEL, model)

    return model
