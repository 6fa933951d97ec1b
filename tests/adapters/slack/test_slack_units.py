"""The Slack adapter's pure parts: text in and out, the token policy, grouping, controls, manifest."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from adapters.slack.blocks import controls_block, turn_and_ratio_from_value, turn_from_value, without_controls
from adapters.slack.delivery import MentionPairing, RecentSet
from adapters.slack.files import token_allowed
from adapters.slack.handlers import ACTIONS, COMMANDS, EVENT_TYPES
from adapters.slack.sink import segments
from adapters.slack.text import MESSAGE_LIMIT, chunks, escape, mentions, prompt_from_slack
from bot.vocabulary import Action, ActionKind, ImagePart, TextPart
from tests.auxil.process import ROOT

BOT = "UBOT"


@pytest.mark.parametrize(
    ("raw", "prompt"),
    [
        ("<@UBOT> a red bicycle at dawn", "a red bicycle at dawn"),
        ("<@UBOT|nano> make it blue <@UBOT>", "make it blue"),
        ("a cat &amp; a dog &lt;3 &gt;_&lt;", "a cat & a dog <3 >_<"),
        ("literal &amp;lt; stays", "literal &lt; stays"),
        ("for <@U2|bob> and <@U3>", "for @bob and @U3"),
        ("ping <!here> <!channel> <!everyone>", "ping @here @channel @everyone"),
        ("team <!subteam^S1|@design> on <!date^1392734382^{date}|Feb 18>", "team @design on Feb 18"),
        (
            "in <#C1|general> see <https://x.test/a?b=1|the doc> or <https://y.test>",
            "in #general see the doc or https://y.test",
        ),
        ("<@UBOT>   wide   gaps\n\n  second  line  ", "wide gaps\n\nsecond line"),
        ("a tower —ar 9:16", "a tower —ar 9:16"),
    ],
)
def test_prompts_read_as_a_person_sees_them(raw: str, prompt: str) -> None:
    assert prompt_from_slack(raw, BOT) == prompt


def test_own_mention_is_recognised_in_both_forms() -> None:
    assert mentions("hi <@UBOT> there", BOT)
    assert mentions("hi <@UBOT|nano>", BOT)
    assert not mentions("hi <@UBOTTOM>", BOT)
    assert not mentions("hi <@UBOT>", None)


def test_escape_makes_mentions_literal() -> None:
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


def test_long_text_is_split_at_paragraphs_under_the_limit() -> None:
    paragraph = "word " * 300
    text = "\n\n".join([paragraph.strip()] * 6)
    pieces = chunks(text)
    assert len(pieces) > 1
    assert all(len(p) <= MESSAGE_LIMIT for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())
    assert chunks("x" * (MESSAGE_LIMIT + 10)) == ["x" * MESSAGE_LIMIT, "x" * 10]
    assert chunks("   ") == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.slack.com/files-pri/T1-F1/a.png", True),
        ("https://files.slack.com:443/files-pri/T1-F1/a.png", True),
        ("https://FILES.SLACK.COM/files-pri/T1-F1/a.png", True),
        ("https://files.slack-gov.com/files-pri/T1-F1/a.png", True),
        ("http://files.slack.com/files-pri/T1-F1/a.png", False),
        ("https://files.slack.com:8443/files-pri/T1-F1/a.png", False),
        ("https://files.slack.com.evil.test/a.png", False),
        ("https://evil.test/files.slack.com/a.png", False),
        ("https://user@evil.test/a.png", False),
        ("http://127.0.0.1:8999/files-pri/T1-F1/a.png", True),  # the configured API origin
        ("http://127.0.0.1:9000/files-pri/T1-F1/a.png", False),
        ("https://127.0.0.1:8999/files-pri/T1-F1/a.png", False),
        ("http://localhost:8999/files-pri/T1-F1/a.png", False),
        ("file:///etc/passwd", False),
        ("", False),
    ],
)
def test_the_token_goes_only_to_slacks_file_host_or_the_configured_api(url: str, allowed: bool) -> None:
    assert token_allowed(url, "http://127.0.0.1:8999/api/") is allowed


def test_the_default_api_host_is_slack() -> None:
    assert token_allowed("https://slack.com/files-pri/x.png", "https://slack.com/api/")
    assert not token_allowed("https://example.com/x.png", "https://slack.com/api/")


def _image(n: int) -> ImagePart:
    return ImagePart(bytes([n]), "image/png", f"image-{n}.png")


def test_parts_are_grouped_so_each_image_run_carries_the_text_before_it() -> None:
    groups = segments(
        [TextPart("A"), _image(1), _image(2), TextPart("B"), TextPart("C"), _image(3), TextPart("D")]
    )
    assert [(g.text, [i.data for i in g.images]) for g in groups] == [
        ("A", [b"\x01", b"\x02"]),
        ("B\n\nC", [b"\x03"]),
        ("D", []),
    ]
    assert [(g.text, len(g.images)) for g in segments([_image(1), TextPart("  "), _image(2)])] == [("", 2)]
    assert segments([]) == []


def test_controls_carry_the_turn_id_and_read_back() -> None:
    block = controls_block(
        (
            Action(ActionKind.REGENERATE, 42),
            Action(ActionKind.ASPECT_RATIO, 42, ("1:1", "16:9")),
            Action(ActionKind.FORGET, 42),
        )
    )
    assert block is not None
    regenerate, aspect, forget = block["elements"]
    assert turn_from_value(regenerate["value"]) == 42
    assert [turn_and_ratio_from_value(o["value"]) for o in aspect["options"]] == [(42, "1:1"), (42, "16:9")]
    assert forget["style"] == "danger" and "confirm" in forget
    assert without_controls([block, {"type": "section", "block_id": "x"}]) == [
        {"type": "section", "block_id": "x"}
    ]
    assert controls_block(()) is None
    for junk in (None, "", "abc", "-1", "4 2"):
        assert turn_from_value(junk) is None
    for junk in (None, "", "42", "x|16:9", "42|"):
        assert turn_and_ratio_from_value(junk) is None


async def test_a_mention_stands_down_when_its_message_copy_arrives() -> None:
    pairing = MentionPairing(grace_s=5.0)
    waiting = asyncio.create_task(pairing.wait_for_message("C1", "1.1"))
    await asyncio.sleep(0)
    pairing.message_arrived("C1", "1.1")
    assert await waiting is True
    pairing.message_arrived("C1", "2.2")
    assert await pairing.wait_for_message("C1", "2.2") is True  # the copy came first


async def test_a_mention_without_a_message_copy_proceeds_after_the_grace() -> None:
    pairing = MentionPairing(grace_s=0.01)
    assert await pairing.wait_for_message("C1", "1.1") is False


def test_recent_set_forgets_the_oldest() -> None:
    recent = RecentSet(capacity=2)
    for item in ("a", "b", "c"):
        recent.add(item)
    assert "a" not in recent and "b" in recent and "c" in recent
    recent.discard("b")
    assert "b" not in recent


# ---------------------------------------------------------------------------------------------
# The manifest: exactly what the bot uses, for both connection modes

SCOPES_USED = {
    "app_mentions:read": "app_mention events",
    "assistant:write": "assistant.threads.setSuggestedPrompts / setTitle / setStatus (AI app threads)",
    "channels:history": "message.channels events and conversations.replies",
    "groups:history": "message.groups events and conversations.replies",
    "im:history": "message.im events (DMs)",
    "mpim:history": "message.mpim events",
    "chat:write": "chat.postMessage, chat.update, chat.postEphemeral",
    "commands": "/aspect, /size, /forget",
    "files:read": "downloading attachments, files.info",
    "files:write": "files_upload_v2",
    "reactions:write": "the working reaction",
    "users:read": "users.info: whether whoever runs /unpin is a workspace admin or owner",
}


def _manifest(name: str) -> dict[str, Any]:
    return json.loads((ROOT / name).read_text())


def test_the_manifest_has_exactly_the_scopes_events_and_commands_the_bot_uses() -> None:
    manifest = _manifest("manifest.json")
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(SCOPES_USED)
    assert "user" not in manifest["oauth_config"]["scopes"]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {e.split(".")[0] for e in events} == set(EVENT_TYPES)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == list(COMMANDS)
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True
    # DMs need the Messages tab open for writing.
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_read_only_enabled"] is False
    assert len(ACTIONS) == 3
    assert len(manifest["display_information"]["description"]) <= 140
    assert 175 <= len(manifest["display_information"]["long_description"]) <= 4000


def _slack_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index("\n## Slack\n") : readme.index("\n## ", readme.index("\n## Slack\n") + 1)]


def test_the_readme_and_the_manifests_name_every_slash_command_the_adapter_registers() -> None:
    section = _slack_section()
    setup = section[section.index("1. **Create the app") : section.index("2. **Install it**")]
    assert re.findall(r"`(/\w+)`", setup) == list(COMMANDS)
    # The "you do" column of the Slack table.
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| ")]
    assert {c for cell in first_cells for c in re.findall(r"`(/\w+)", cell)} == set(COMMANDS)
    for name in ("manifest.json", "manifest.http.json"):
        manifest = _manifest(name)
        assert [c["command"] for c in manifest["features"]["slash_commands"]] == list(COMMANDS)
        described = re.findall(r"/\w+", manifest["display_information"]["long_description"])
        assert sorted(set(described)) == sorted(COMMANDS), name


def test_the_http_manifest_differs_only_in_the_request_urls() -> None:
    socket, http = _manifest("manifest.json"), _manifest("manifest.http.json")
    url = "https://YOUR-BOT-HOST/slack/events"
    assert http["settings"]["socket_mode_enabled"] is False
    assert http["settings"]["event_subscriptions"].pop("request_url") == url
    assert http["settings"]["interactivity"].pop("request_url") == url
    for command in http["features"]["slash_commands"]:
        assert command.pop("url") == url
    http["settings"]["socket_mode_enabled"] = True
    assert http == socket
