"""Thinking levels (issue 22): ``--think`` for one turn, ``/think`` for the conversation, offered only
on models whose registry entry lists levels, sent as the API's thinking configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.entry.commands import Command, CommandName
from bot.turns.pipeline import TurnStatus
from bot.vocabulary import ConversationKey
from tests.adapters.console.test_console import run_piped
from tests.auxil.core import ALICE, KEY, Core
from tests.auxil.engines import both_engines, interactions  # noqa: F401  (engine_api: each engine)
from tests.auxil.fake_gemini import FakeGemini

FLASH_3 = "gemini-3.1-flash-image"
OTHER = ConversationKey("console", "local", "terminal", "thread-2")
NO_LEVELS = (
    "gemini-2.5-flash-image has no thinking levels to choose from, "
    "so --think and /think can't be used with it."
)


@pytest.fixture
async def flash3(fake_gemini: FakeGemini, tmp_path: Path, engine_api: str) -> AsyncIterator[Core]:
    env = {"GEMINI_MODEL": FLASH_3, "GEMINI_API": engine_api}
    core = await Core(fake_gemini, tmp_path / "flash3.sqlite3", env).start()
    yield core
    await core.stop()


def thinking_sent(core: Core) -> list[str | None]:
    """The thinking level of each request, read from the JSON the fake received."""
    return [r.thinking_level for r in core.fake.requests]


async def think(core: Core, argument: str, key: ConversationKey = KEY) -> tuple[str, bool]:
    reply = await core.service.dialogue.run(Command(CommandName.THINK, key, ALICE, argument))
    return reply.text, reply.refused


async def test_think_flag_sets_the_level_of_that_turn_only(flash3: Core, engine_api: str) -> None:
    result, _ = await flash3.say("a lighthouse in fog --think high")
    assert result.status is TurnStatus.ANSWERED
    await flash3.say("now at night")
    assert thinking_sent(flash3) == ["HIGH", None]
    first, second = flash3.fake.requests
    if interactions(engine_api):
        # The create's JSON as the SDK wrote it: the level in generation_config, lower case.
        assert first.wire_body["generation_config"] == {"thinking_level": "high"}
        assert "generation_config" not in second.wire_body
    else:
        # The request's JSON as the SDK wrote it: the level in generationConfig's thinkingConfig.
        assert first.body["generationConfig"]["thinkingConfig"] == {"thinking_level": "HIGH"}
        assert "thinkingConfig" not in second.body["generationConfig"]
    assert flash3.fake.requests[0].prompt == "a lighthouse in fog"
    # Nothing was stored for the conversation.
    assert (await flash3.service.effective_settings(KEY)).thinking_level is None


async def test_think_flag_with_a_level_the_model_does_not_list_is_refused(flash3: Core) -> None:
    result, sink = await flash3.say("a lighthouse --think medium")
    assert result.status is TurnStatus.REJECTED
    assert (
        sink.last.text
        == "gemini-3.1-flash-image doesn't offer the thinking level medium; use minimal or high."
    )
    _, sink = await flash3.say("a lighthouse --think hard")
    assert sink.last.text == "'hard' is not a thinking level; use minimal or high."
    _, sink = await flash3.say("a lighthouse --think")
    assert sink.last.text == "--think needs a value, for example --think high."
    assert flash3.fake.requests == []


async def test_think_flag_on_a_model_without_levels_is_refused(core: Core) -> None:
    result, sink = await core.say("a lighthouse --think high")
    assert (result.status, sink.last.text) == (TurnStatus.REJECTED, NO_LEVELS)
    assert core.fake.requests == []
    assert await think(core, "high") == (NO_LEVELS, True)
    assert await think(core, "") == (NO_LEVELS, True)


async def test_think_setting_persists_for_the_conversation(flash3: Core) -> None:
    assert await think(flash3, "") == (
        "Thinking for this conversation: the model default. Change it with /think (choices: minimal, high).",
        False,
    )
    assert await think(flash3, "High") == ("Thinking is now high for this conversation.", False)
    assert await think(flash3, "medium") == (
        "gemini-3.1-flash-image doesn't offer the thinking level medium; use minimal or high.",
        True,
    )
    await flash3.say("a lighthouse")
    await flash3.say("with gulls")
    await flash3.say("a harbour", key=OTHER)
    await flash3.restart()  # kept in the store, like every conversation setting
    await flash3.say("at dawn")
    # One turn's --think wins over the conversation's level for that turn.
    await flash3.say("at dusk --think minimal")
    assert thinking_sent(flash3) == ["HIGH", "HIGH", None, "HIGH", "MINIMAL"]
    assert (await think(flash3, ""))[0].startswith("Thinking for this conversation: high.")


async def test_help_offers_think_only_when_the_model_has_levels(core: Core, flash3: Core) -> None:
    async def listed(target: Core) -> list[str]:
        reply = await target.service.dialogue.run(Command(CommandName.HELP, KEY, ALICE))
        return [entry.usage for entry in reply.help]

    assert "/think [level]" in await listed(flash3)
    assert "/think [level]" not in await listed(core)


async def test_console_think_then_a_prompt(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    out = await run_piped(fake_gemini, tmp_path, ["/think high", "a red kite"], {"GEMINI_MODEL": FLASH_3})
    assert "Thinking is now high for this conversation." in out.splitlines()
    assert [r.thinking_level for r in fake_gemini.requests] == ["HIGH"]
