"""Slack's own doors (issue 20): the Edit with Nano Banana message shortcut, the AI app surface
(suggested prompts, loading status, titles), alt text on uploads, and payloads of an unexpected
shape. The real Bolt app against the fake Slack (HTTP mode with real signatures) and fake Gemini."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from adapters.slack import words
from adapters.slack.handlers import SHORTCUTS
from adapters.slack.shortcut import EDIT_CALLBACK, PROMPT_ACTION, PROMPT_BLOCK
from adapters.slack.sink import ALT_TEXT_LIMIT
from adapters.slack.text import escape
from tests.adapters.slack.test_slack import _manifest, thread_key
from tests.auxil import fake_gemini as fg
from tests.auxil import fake_slack as fs
from tests.auxil import image_factory as img
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import ApiCall, FakeSlack
from tests.auxil.slack_bot import CHANNEL, Bot
from tests.auxil.slack_bot import bot as bot
from tests.auxil.slack_bot import socket_bot as socket_bot

DM = "D0ALICE"
PHOTO = img.png(80, 60, color=(10, 120, 200))


def problems_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def statuses(slack: FakeSlack, thread_ts: str) -> list[ApiCall]:
    return [c for c in slack.calls_to("assistant.threads.setStatus") if c.params["thread_ts"] == thread_ts]


def posts_in(slack: FakeSlack, thread_ts: str) -> list[ApiCall]:
    """Everything the bot put in a thread: messages and uploads, in order."""
    return [
        c
        for c in slack.calls
        if c.method in ("chat.postMessage", "files.completeUploadExternal")
        and c.params.get("thread_ts") == thread_ts
    ]


async def settled(bot: Bot) -> None:
    assert await bot.core.service.drain(5)


# -- 5. the Edit with Nano Banana message shortcut -------------------------------------------------


async def open_edit(bot: Bot, message: dict[str, Any]) -> dict[str, Any]:
    assert bot.sender is not None
    status, _ = await bot.sender.action(bot.slack.message_action(message, EDIT_CALLBACK))
    assert status == 200
    views: list[dict[str, Any]] = await bot.slack.wait_for(lambda: bot.slack.views)
    return views[-1]


async def test_the_edit_shortcut_opens_a_modal_and_posts_the_edit_in_the_message_thread(
    bot: Bot, fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    photo = bot.slack.host_file("harbour.png", PHOTO)
    message = bot.slack.user_message(CHANNEL, "our harbour this morning", files=[photo])
    view = await open_edit(bot, message)
    (opened,) = bot.slack.calls_to("views.open")
    assert opened.params["trigger_id"]
    assert view["callback_id"] == EDIT_CALLBACK
    assert view["title"]["text"] == words.EDIT_SHORTCUT_NAME
    assert view["blocks"][0]["label"]["text"] == words.EDIT_MODAL_LABEL

    assert bot.sender is not None
    submitted = bot.slack.view_submission(view, {PROMPT_BLOCK: {PROMPT_ACTION: "make the sky warmer"}})
    status, body = await bot.sender.action(submitted)
    assert (status, body) == (200, "")  # the modal closes
    image, buttons = await bot.replies(message["ts"], 2)
    assert image["files"] and buttons["blocks"]

    (request,) = fake_gemini.requests
    assert request.prompt == "make the sky warmer"
    assert [i.data for i in request.images[-1]] == [PHOTO]  # byte for byte
    # A new conversation keyed by the message's thread, started by whoever used the shortcut.
    stored = await bot.core.store.conversation(thread_key(message["ts"]))
    assert stored is not None
    (upload,) = bot.slack.uploads.values()
    assert upload.alt_txt == "make the sky warmer"
    await settled(bot)
    assert problems_in(caplog) == []


async def test_the_edit_shortcut_on_a_message_without_an_image_answers_privately(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    document = bot.slack.host_file("notes.pdf", b"%PDF-1.4 fake", mimetype="application/pdf")
    for message in (
        bot.slack.user_message(CHANNEL, "just words"),
        bot.slack.user_message(CHANNEL, "a document", files=[document]),
    ):
        payload = bot.slack.message_action(message, EDIT_CALLBACK)
        assert bot.sender is not None
        status, _ = await bot.sender.action(payload)
        assert status == 200
        path = payload["response_url"].split("127.0.0.1", 1)[1].split("/", 1)[1]
        answers = await bot.slack.wait_for(
            lambda p=path: [a for a in bot.slack.action_responses if a["path"] == "/" + p]
        )
        assert [(a["text"], a["response_type"]) for a in answers] == [
            (escape(words.NO_IMAGE_TO_EDIT), "ephemeral")
        ]
    assert bot.slack.views == []
    assert bot.slack.calls_to("chat.postMessage") == []
    assert fake_gemini.requests == []


async def test_an_empty_edit_is_refused_in_the_modal(bot: Bot, fake_gemini: FakeGemini) -> None:
    photo = bot.slack.host_file("harbour.png", PHOTO)
    view = await open_edit(bot, bot.slack.user_message(CHANNEL, "look", files=[photo]))
    assert bot.sender is not None
    status, body = await bot.sender.action(
        bot.slack.view_submission(view, {PROMPT_BLOCK: {PROMPT_ACTION: "   "}})
    )
    assert status == 200
    assert json.loads(body) == {"response_action": "errors", "errors": {PROMPT_BLOCK: words.EDIT_EMPTY}}
    assert fake_gemini.requests == []


# -- 6. the AI app surface -------------------------------------------------------------------------


async def test_a_new_assistant_thread_gets_suggested_prompts(bot: Bot, fake_gemini: FakeGemini) -> None:
    started = bot.slack.assistant_thread_started(DM)
    await bot.deliver(started)
    (call,) = await bot.slack.wait_for(lambda: bot.slack.calls_to("assistant.threads.setSuggestedPrompts"))
    assert call.params["channel_id"] == DM
    assert call.params["thread_ts"] == started["assistant_thread"]["thread_ts"]
    prompts = [(p["title"], p["message"]) for p in call.params["prompts"]]
    assert prompts == list(words.SUGGESTED_PROMPTS) and 3 <= len(prompts) <= 4
    assert call.params["title"] == words.SUGGESTED_TITLE
    # Looking at another channel beside the thread is acknowledged and changes nothing.
    await bot.deliver(FakeSlack.assistant_thread_context_changed(started, "C0OTHER"))
    assert fake_gemini.requests == []


async def test_a_turn_in_an_assistant_thread_shows_a_status_and_titles_the_thread(
    bot: Bot, fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    started = bot.slack.assistant_thread_started(DM)
    await bot.deliver(started)
    root = started["assistant_thread"]["thread_ts"]
    await bot.say("a red bicycle at dawn", thread_ts=root, channel=DM, channel_type="im")
    await bot.replies(root, 2, channel=DM)
    await settled(bot)

    shown, cleared = statuses(bot.slack, root)
    (request,) = fake_gemini.requests
    posts = posts_in(bot.slack, root)
    assert (shown.params["status"], cleared.params["status"]) == (words.WORKING_STATUS, "")
    # Set before the Gemini request, cleared after the last post of the reply.
    assert shown.at < request.received_at < posts[0].at
    assert posts[-1].at < cleared.at
    (title,) = bot.slack.calls_to("assistant.threads.setTitle")
    assert (title.params["thread_ts"], title.params["title"]) == (root, "a red bicycle at dawn")
    assert title.at < request.received_at

    # The next prompt in the thread runs with the status again and keeps the first title.
    await bot.say("now at night", thread_ts=root, channel=DM, channel_type="im")
    await bot.replies(root, 4, channel=DM)
    await settled(bot)
    assert [c.params["status"] for c in statuses(bot.slack, root)] == [words.WORKING_STATUS, ""] * 2
    assert len(bot.slack.calls_to("assistant.threads.setTitle")) == 1
    assert [r.prompt for r in fake_gemini.requests] == ["a red bicycle at dawn", "now at night"]
    assert problems_in(caplog) == []


async def test_a_failed_turn_clears_the_status_after_saying_why(bot: Bot, fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(fg.prompt_blocked())
    message = await bot.mention("something forbidden")
    (answer,) = await bot.replies(message["ts"], 1)
    assert answer["text"].startswith(":warning:")
    await settled(bot)
    shown, cleared = statuses(bot.slack, message["ts"])
    (said,) = posts_in(bot.slack, message["ts"])
    assert shown.at < fake_gemini.requests[0].received_at < said.at < cleared.at
    assert cleared.params["status"] == ""


async def test_a_channel_thread_shows_the_status_beside_the_reaction(bot: Bot) -> None:
    message = await bot.mention("a kite over the dunes")
    await bot.replies(message["ts"], 2)
    await settled(bot)
    assert [c.params["status"] for c in statuses(bot.slack, message["ts"])] == [words.WORKING_STATUS, ""]
    assert [(verb, name) for verb, _, _, name in bot.slack.reaction_log] == [
        ("add", "hourglass_flowing_sand"),
        ("remove", "hourglass_flowing_sand"),
    ]


async def test_without_the_scope_the_status_is_not_asked_for_again(bot: Bot) -> None:
    bot.slack.fail("assistant.threads.setStatus", "missing_scope")
    for prompt in ("a kite", "a boat"):
        message = await bot.mention(prompt)
        image, _ = await bot.replies(message["ts"], 2)
        assert image["files"]
    await settled(bot)
    assert len(bot.slack.calls_to("assistant.threads.setStatus")) == 1


# -- 7. alt text on every upload -------------------------------------------------------------------


async def test_every_upload_carries_its_prompt_as_alt_text_within_slacks_limit(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    message = await bot.mention("a lighthouse   on a\ncliff")
    _, buttons = await bot.replies(message["ts"], 2)
    assert bot.sender is not None
    # Regenerate draws the stored prompt again: its image is described by that prompt too.
    await bot.sender.action(bot.slack.block_actions(buttons, "nb_regenerate"))
    await bot.replies(message["ts"], 4)
    long_prompt = "a very detailed harbour " * 60  # 1,440 characters
    second = await bot.mention(long_prompt)
    await bot.replies(second["ts"], 2)
    await settled(bot)

    gets = bot.slack.calls_to("files.getUploadURLExternal")
    assert len(gets) == len(bot.slack.uploads) == 3
    alts = [c.params.get("alt_txt") for c in gets]
    assert alts[:2] == ["a lighthouse on a cliff"] * 2
    assert len(alts[2]) == ALT_TEXT_LIMIT and alts[2].endswith("…")
    assert long_prompt.startswith(alts[2][:-1])


# -- 8. the manifests ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["manifest.json", "manifest.http.json"])
def test_the_manifests_declare_the_shortcut_and_the_assistant_view(name: str) -> None:
    manifest = _manifest(name)
    features = manifest["features"]
    shortcuts = features["shortcuts"]
    assert [(s["callback_id"], s["type"], s["name"]) for s in shortcuts] == [
        (callback, "message", words.EDIT_SHORTCUT_NAME) for callback in SHORTCUTS
    ]
    assert all(len(s["description"]) <= 80 for s in shortcuts)
    prompts = [(p["title"], p["message"]) for p in features["assistant_view"]["suggested_prompts"]]
    assert prompts == list(words.SUGGESTED_PROMPTS)
    assert features["assistant_view"]["assistant_description"]
    assert "assistant:write" in manifest["oauth_config"]["scopes"]["bot"]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= set(events)


# -- 9. payloads of an unexpected shape ------------------------------------------------------------

REFUSED_LINE = "refused a Slack payload of an unexpected shape"
ODD_PAYLOADS = {
    "actions-a-string": ("action", {"type": "block_actions", "actions": "nb_forget", "user": {"id": "U"}}),
    "event-a-list": ("event", {"type": "event_callback", "team_id": fs.TEAM_ID, "event": [{"type": "x"}]}),
    "event-a-string": ("event", {"type": "event_callback", "team_id": fs.TEAM_ID, "event": "message"}),
    "view-a-string": ("action", {"type": "view_submission", "view": "modal", "user": {"id": "U"}}),
    "message-a-list": ("action", {"type": "message_action", "callback_id": EDIT_CALLBACK, "message": []}),
    "assistant-thread-a-string": (
        "event",
        FakeSlack.event_body({"type": "assistant_thread_started", "assistant_thread": "x"}),
    ),
}


@pytest.mark.parametrize("case", list(ODD_PAYLOADS))
async def test_a_signed_payload_of_an_unexpected_shape_gets_no_500_and_one_log_line(
    bot: Bot, fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    kind, payload = ODD_PAYLOADS[case]
    assert bot.sender is not None
    if kind == "event":
        status, _ = await bot.sender.event(payload)
        assert status == 200  # acknowledged and dropped: Slack would only retry it
    else:
        status, _ = await bot.sender.action(payload)
        assert status == 400
    refused = [r for r in caplog.records if r.getMessage() == REFUSED_LINE]
    assert len(refused) == 1
    assert [r for r in caplog.records if r.name.startswith(("slack_bolt", "adapters"))] == refused
    assert problems_in(caplog) == []
    assert bot.slack.calls_to("chat.postMessage") == [] and fake_gemini.requests == []


async def test_an_unsigned_payload_of_an_unexpected_shape_is_still_refused_as_unsigned(bot: Bot) -> None:
    assert bot.sender is not None
    body = json.dumps({"type": "event_callback", "event": [1]})
    status, _ = await bot.sender.post(body, "application/json", signature="v0=" + "0" * 64)
    assert status == 401


# -- the same doors over Socket Mode ---------------------------------------------------------------


async def test_over_socket_mode_the_doors_open_and_an_odd_payload_is_acknowledged(
    socket_bot: Bot, fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    bot = socket_bot
    odd = await bot.slack.send_envelope("interactive", ODD_PAYLOADS["actions-a-string"][1])
    assert "payload" not in odd  # acknowledged, nothing shown
    assert [r.getMessage() for r in caplog.records].count(REFUSED_LINE) == 1

    started = bot.slack.assistant_thread_started(DM)
    await bot.deliver(started)
    await bot.slack.wait_for(lambda: bot.slack.calls_to("assistant.threads.setSuggestedPrompts"))

    photo = bot.slack.host_file("harbour.png", PHOTO)
    message = bot.slack.user_message(CHANNEL, "our harbour", files=[photo])
    await bot.slack.send_envelope("interactive", bot.slack.message_action(message, EDIT_CALLBACK))
    (view,) = await bot.slack.wait_for(lambda: bot.slack.views)
    values = {PROMPT_BLOCK: {PROMPT_ACTION: "as a watercolor"}}
    await bot.slack.send_envelope("interactive", bot.slack.view_submission(view, values))
    await bot.replies(message["ts"], 2)
    assert [i.data for i in fake_gemini.requests[0].images[-1]] == [PHOTO]
    await settled(bot)
    assert problems_in(caplog) == []
