"""Access policy: allow-lists per platform, admins bypass, one polite refusal or silence."""

import pytest

from bot.config import ConfigError, load_config
from bot.entry.access import REFUSAL_MEMORY_S, REFUSAL_MESSAGE, AccessPolicy, AllowList
from bot.entry.platforms import PLATFORMS, start_adapters
from bot.vocabulary import Author, ConversationKey

GUILD_CHANNEL = ConversationKey("discord", "g1", "c1", "t1")
OTHER_GUILD = ConversationKey("discord", "g2", "c9", "t9")
SLACK = ConversationKey("slack", "T1", "C1", "1700000000.000100")
CONSOLE = ConversationKey("console", "local", "terminal", "x")
UNKNOWN = ConversationKey("matrix", "hs1", "room1", "ev1")


def policy(**env: str) -> AccessPolicy:
    return AccessPolicy.from_config(load_config(env))


def test_no_lists_means_everyone() -> None:
    p = policy()
    assert p.check(GUILD_CHANNEL, Author("u")).allowed
    assert p.check(SLACK, Author("U1")).allowed


def test_guild_list_refuses_other_guilds_politely_once_per_channel() -> None:
    p = policy(DISCORD_ALLOWED_GUILDS="g1")
    assert p.check(GUILD_CHANNEL, Author("u")).allowed
    first = p.check(OTHER_GUILD, Author("u"))
    assert (first.allowed, first.message) == (False, REFUSAL_MESSAGE)
    again = p.check(OTHER_GUILD, Author("u"))
    assert (again.allowed, again.message) == (False, None)
    assert p.check(OTHER_GUILD, Author("someone else")).message == REFUSAL_MESSAGE


def test_user_and_channel_lists_combine() -> None:
    p = policy(SLACK_ALLOWED_CHANNELS="C1", SLACK_ALLOWED_USERS="U1,U2")
    assert p.check(SLACK, Author("U2")).allowed
    assert not p.check(SLACK, Author("U3")).allowed
    assert not p.check(ConversationKey("slack", "T1", "C2", "1"), Author("U1")).allowed
    # Slack's lists do not affect Discord.
    assert p.check(GUILD_CHANNEL, Author("U3")).allowed


def test_admins_bypass_lists() -> None:
    p = policy(DISCORD_ALLOWED_USERS="someone", ADMIN_USERS="discord:boss")
    assert p.check(GUILD_CHANNEL, Author("boss")).allowed
    assert p.is_admin("discord", "boss") and not p.is_admin("slack", "boss")


def test_silent_mode_never_answers() -> None:
    p = policy(DISCORD_ALLOWED_GUILDS="g1", REFUSE_SILENTLY="true")
    decision = p.check(OTHER_GUILD, Author("u"))
    assert (decision.allowed, decision.message) == (False, None)


def test_console_is_always_allowed() -> None:
    assert policy(DISCORD_ALLOWED_USERS="x", SLACK_ALLOWED_USERS="y").check(CONSOLE, Author("me")).allowed


def test_a_platform_without_rules_is_refused_even_with_no_lists_set() -> None:
    p = policy()
    first = p.check(UNKNOWN, Author("u"))
    assert (first.allowed, first.message) == (False, REFUSAL_MESSAGE)
    again = p.check(UNKNOWN, Author("u"))
    assert (again.allowed, again.message) == (False, None)
    assert p.check(ConversationKey("matrix", "hs1", "room2", "ev2"), Author("u")).message == REFUSAL_MESSAGE


def test_a_platform_without_rules_is_refused_silently_when_asked() -> None:
    decision = policy(REFUSE_SILENTLY="true").check(UNKNOWN, Author("u"))
    assert (decision.allowed, decision.message) == (False, None)


def test_admins_do_not_open_a_platform_without_rules() -> None:
    # The configuration accepts admins only on known platforms; a policy built by hand may not.
    p = AccessPolicy({"discord": AllowList()}, admins=frozenset({"matrix:boss", "discord:boss"}))
    assert not p.check(UNKNOWN, Author("boss")).allowed
    assert not p.check(CONSOLE, Author("boss")).allowed  # this policy has no console rules
    assert p.check(GUILD_CHANNEL, Author("boss")).allowed


def test_the_known_platforms_are_exactly_discord_slack_and_console() -> None:
    assert set(PLATFORMS) == {"discord", "slack", "console"}
    assert set(policy().lists) == set(PLATFORMS)  # the allow-lists follow the registry


def test_admin_entries_name_a_platform_of_the_registry() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"ADMIN_USERS": "slack:U1,matrix:@a:hs1"})
    expected = "ADMIN_USERS entries must look like discord:123456 or slack:U012ABC, not matrix:@a:hs1."
    assert str(caught.value) == expected


def test_only_platforms_switched_on_get_an_adapter() -> None:
    assert start_adapters(load_config({}), service=None) == []  # type: ignore[arg-type]
    slack = load_config({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert [type(a).__name__ for a in start_adapters(slack, service=None)] == ["SlackAdapter"]  # type: ignore[arg-type]
    both = load_config({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DISCORD_TOKEN": "d"})
    started = start_adapters(both, service=None)  # type: ignore[arg-type]
    assert [type(a).__name__ for a in started] == ["DiscordAdapter", "SlackAdapter"]
    assert [a.name for a in started] == ["discord", "slack"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused_in_other_guild(clock: Clock | None = None, memory_size: int = 10_000) -> AccessPolicy:
    lists = {"discord": AllowList(workspaces=frozenset({"g1"}))}
    return AccessPolicy(lists, clock=clock or Clock(), memory_size=memory_size)


def told(p: AccessPolicy, user: str) -> bool:
    return p.check(OTHER_GUILD, Author(user)).message == REFUSAL_MESSAGE


def test_a_refused_person_is_told_again_after_the_memory_lapses() -> None:
    clock = Clock()
    p = refused_in_other_guild(clock=clock)
    assert told(p, "u")
    clock.now += REFUSAL_MEMORY_S - 1
    assert not told(p, "u")
    clock.now += 2
    assert told(p, "u")
    assert not told(p, "u")


def test_a_flood_of_strangers_forgets_only_the_oldest_refusal() -> None:
    p = refused_in_other_guild(memory_size=3)
    assert [told(p, u) for u in ("a", "b", "c", "d")] == [True] * 4
    # "a" made room for "d"; "b" and "c" are still remembered (the old table emptied itself).
    assert [told(p, u) for u in ("d", "c", "b")] == [False] * 3
    assert told(p, "a")
