"""The /usage answer: a person's images and estimated cost today and this month (admins: all)."""

from __future__ import annotations

import time

from bot.config import Config
from bot.limits.quotas import month_start, start_of_day
from bot.text import messages, model_words
from bot.vocabulary import Author, ConversationKey, Usage
from storage.protocol import Store


def _line(who: str, day: Usage, month: Usage) -> str:
    return messages.usage_line(
        who, day.images_generated, day.cost_usd, month.images_generated, month.cost_usd
    )


async def usage_report(
    store: Store,
    config: Config,
    key: ConversationKey,
    author: Author,
    *,
    admin: bool,
    model: str = "",
) -> str:
    """Days and months are UTC, like the daily limits; usage of forgotten threads still counts."""
    now = time.time()
    day, month = start_of_day(now), month_start(now)
    mine = [await store.usage_since(t, author_id=author.id, platform=key.platform) for t in (day, month)]
    lines = [_line("You", *mine)]
    if admin:
        everyone = [await store.usage_since(t) for t in (day, month)]
        lines.append(_line("Everyone", *everyone))
        if config.limits.daily_spend_cap_usd is not None:
            lines.append(messages.spend_cap(config.limits.daily_spend_cap_usd))
        lines.append(messages.prices_of(config.models.prices_date))
        lines += _model_line(config, model)
        lines.append(messages.ADMIN_NO_LIMITS)
        return "\n".join(lines)
    limits = []
    if config.limits.user_images_per_hour:
        limits.append(f"{config.limits.user_images_per_hour} an hour")
    if config.limits.user_images_per_day:
        limits.append(f"{config.limits.user_images_per_day} a day")
    if limits:
        lines.append(messages.your_limits(limits))
    return "\n".join([*lines, *_model_line(config, model)])


def _model_line(config: Config, model: str) -> list[str]:
    """The model this conversation draws with, and whether its cost is known."""
    if not model:
        return []
    priced = config.models.capabilities_for(model).priced
    return (
        [messages.draws_with(model)]
        if priced
        else [messages.draws_with(model), model_words.cost_unknown(model)]
    )
