"""The Slack adapter as people use it: the real Bolt app against a fake Slack and the fake Gemini."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack.adapter import SlackAdapter
from adapters.slack.sink import WORKING_REACTION
from adapters.slack.text import escape
from adapters.slack.words import CONTROLS_FALLBACK
from bot.entry.access import REFUSAL_MESSAGE
from bot.entry.service import INTERRUPTED_MESSAGE, queue_position_message
from bot.vocabulary import ConversationKey
from tests.auxil import fake_gemini as fg
from tests.auxil import fake_slack as fs
from tests.auxil import image_factory as img
from tests.auxil.core import Core, refusal, wait_claimed
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack, SlackSender
from tests.auxil.process import ROOT
from tests.auxil.slack_bot import CHANNEL, Bot, slack_env, start_bot
from tests.auxil.slack_bot import bot as bot
from tests.auxil.slack_bot import socket_bot as socket_bot

# Zoom out and Pan under every image (Edit region only with PUBLIC_URL).
FRAME_ACTIONS = (
    "nb_frame_zoom_1.5",
    "nb_frame_zoom_2",
    "nb_frame_pan_left",
    "nb_frame_pan_right",
    "nb_frame_pan_up",
    "nb_frame_pan_down",
)


def thread_key(thread_ts: str) -> ConversationKey:
    return ConversationKey("slack", fs.TEAM_ID, CHANNEL, thread_ts)


def held() -> tuple[fg.Behaviour, asyncio.Event]:
    """A Gemini answer that waits until the returned event is set (no sleeps, no races)."""
    release = asyncio.Event()

    async def respond(fake: FakeGemini, rec: fg.RecordedRequest, req: Any) -> Any:
        await release.wait()
        return await fg.image().respond(fake, rec, req)

    return fg.Behaviour("held", respond), release


def said(content: dict[str, Any]) -> str:
    """The text of one entry of a Gemini request's ``contents``."""
    return " ".join(str(p["text"]) for p in content.get("parts") or [] if "text" in p)


def controls(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        element["action_id"]: element
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
    }


# ---------------------------------------------------------------------------------------------
# 1. A mention starts a conversation in a thread


@pytest.mark.parametrize("socket", [False, True], ids=["http", "socket"])
async def test_mention_replies_in_a_thread_with_the_image_text_and_controls(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path, socket: bool
) -> None:
    bot = await start_bot(fake_gemini, slack, tmp_path, socket)
    try:
        message = await bot.mention("a red bicycle at dawn")
        upload, buttons = await bot.replies(message["ts"], 2)
    finally:
        await bot.stop()
        await bot.core.stop()

    assert len(fake_gemini.requests) == 1
    assert fake_gemini.requests[0].prompt == "a red bicycle at dawn"
    # The image is uploaded into the thread with the model's text as its comment.
    assert upload["subtype"] == "file_share" and upload["text"] == "Here is your image."
    (file,) = upload["files"]
    uploaded = slack.uploads[file["id"]]
    assert uploaded.data == fake_gemini.requests[0].response_images[-1].data
    assert uploaded.thread_ts == message["ts"]
    # Then the controls, whose values carry the stored turn id.
    assert set(controls(buttons)) == {
        "nb_regenerate",
        "nb_variations",
        "nb_aspect",
        "nb_model",
        *FRAME_ACTIONS,
        "nb_forget",
    }
    assert controls(buttons)["nb_regenerate"]["value"].isdigit()
    # Feedback: the hourglass was on the user's message while working, and is gone.
    assert [(verb, ts) for verb, _, ts, _ in slack.reaction_log] == [
        ("add", message["ts"]),
        ("remove", message["ts"]),
    ]


async def test_interleaved_text_and_images_keep_the_models_order(bot: Bot, fake_gemini: FakeGemini) -> None:
    # Slack shares an upload only after files.completeUploadExternal answers; the bot waits for
    # each share before posting on, so nothing lands above the image it follows.
    bot.slack.share_after_info_calls = 2
    fake_gemini.enqueue(fg.storyboard(3))
    message = await bot.mention("a storyboard of a seed growing")
    posted = await bot.replies(message["ts"], 4)
    assert [(m.get("subtype"), m["text"]) for m in posted] == [
        ("file_share", "Step 1."),
        ("file_share", "Step 2."),
        ("file_share", "Step 3."),
        (None, CONTROLS_FALLBACK),
    ]
    shown = [bot.slack.uploads[m["files"][0]["id"]].data for m in posted[:3]]
    assert shown == [img.data for img in fake_gemini.requests[0].response_images[-3:]]
    assert len(bot.slack.calls_to("files.info")) >= 3 * 3


async def test_text_after_the_image_carries_the_controls(bot: Bot, fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(
        fg.Behaviour("image_then_text", fg._answer(lambda _r: [("image", 0), ("text", "Done.")]))
    )
    message = await bot.mention("a lighthouse")
    upload, text = await bot.replies(message["ts"], 2)
    assert upload["subtype"] == "file_share" and upload["text"] == ""
    assert text["text"] == "Done."
    assert text["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": "Done."}}
    assert set(controls(text)) == {
        "nb_regenerate",
        "nb_variations",
        "nb_aspect",
        "nb_model",
        *FRAME_ACTIONS,
        "nb_forget",
    }


async def test_a_text_only_answer_offers_only_forget(bot: Bot, fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(fg.text_only("I would rather describe it: a quiet harbour at dusk."))
    message = await bot.mention("a harbour")
    (answer,) = await bot.replies(message["ts"], 1)
    assert answer["text"] == "I would rather describe it: a quiet harbour at dusk."
    assert set(controls(answer)) == {"nb_forget"}


# ---------------------------------------------------------------------------------------------
# Double delivery and retries: exactly one generation, and it sees the files


@pytest.mark.parametrize("order", ["message_first", "mention_first"])
async def test_one_mention_delivered_twice_makes_one_image_that_sees_the_photo(
    bot: Bot, fake_gemini: FakeGemini, order: str
) -> None:
    photo = img.jpeg(320, 240)
    file = bot.slack.host_file("house.jpg", photo, "image/jpeg")
    message = await bot.mention("put a red bicycle in front of this house", files=[file], order=order)
    await bot.replies(message["ts"], 2)
    assert len(fake_gemini.requests) == 1
    assert fake_gemini.requests[0].images[-1] == [fg.InlineImage("image/jpeg", photo)]
    assert fake_gemini.requests[0].prompt == "put a red bicycle in front of this house"
    assert len(bot.slack.thread(CHANNEL, message["ts"])) == 2
    # The app_mention copy stood down for the message copy; no lookup was needed.
    assert bot.slack.calls_to("conversations.replies") == []


async def test_a_mention_whose_message_copy_never_comes_finds_its_files(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=slack_env(slack)).start()
    bot = await Bot(core, slack, socket=False, grace_s=0.2).start()
    try:
        photo = img.png(64, 64)
        file = slack.host_file("cat.png", photo)
        message = await bot.mention("make this cat purple", files=[file], order="mention_only")
        await bot.replies(message["ts"], 2)
    finally:
        await bot.stop()
        await core.stop()
    (lookup,) = slack.calls_to("conversations.replies")
    assert lookup.params["ts"] == message["ts"]
    assert fake_gemini.requests[0].images[-1] == [fg.InlineImage("image/png", photo)]


async def test_event_retries_never_generate_twice(bot: Bot, fake_gemini: FakeGemini) -> None:
    message = await bot.mention("a red bicycle at dawn")
    await bot.deliver(message, retry_num=1)
    await bot.deliver(FakeSlack.app_mention(message), retry_num=2)
    await bot.replies(message["ts"], 2)
    await bot.deliver(message, retry_num=3)
    reply = await bot.say("make it blue", thread_ts=message["ts"])
    await bot.replies(message["ts"], 4)
    assert [r.prompt for r in fake_gemini.requests] == ["a red bicycle at dawn", "make it blue"]
    assert bot.statuses == [200] * 6
    assert reply["ts"] != message["ts"]


async def test_socket_mode_acknowledges_every_envelope_and_ignores_redelivery(
    socket_bot: Bot, fake_gemini: FakeGemini
) -> None:
    message = await socket_bot.mention("a paper boat", order="mention_first")
    await socket_bot.deliver(message, retry_num=1)
    await socket_bot.replies(message["ts"], 2)
    assert len(fake_gemini.requests) == 1


# ---------------------------------------------------------------------------------------------
# HTTP mode: signatures, URL verification, health, every subscribed event type


async def test_bad_signature_is_refused_and_nothing_happens(bot: Bot, fake_gemini: FakeGemini) -> None:
    assert bot.sender is not None
    message = bot.slack.user_message(CHANNEL, f"<@{fs.BOT_USER_ID}> a forged request")
    body = FakeSlack.event_body(message)
    status, _ = await bot.sender.event(body, signature="v0=" + "0" * 64)
    assert status == 401
    stale = int(time.time()) - 10 * 60
    status, _ = await bot.sender.event(body, timestamp=stale)
    assert status == 401
    forged = SlackSender(bot.sender.url, signing_secret="not-the-secret")
    async with forged:
        status, _ = await forged.command(bot.slack.slash_command("/aspect", "16:9", CHANNEL))
    assert status == 401
    assert fake_gemini.requests == []
    assert bot.slack.thread(CHANNEL, message["ts"]) == []


async def test_url_verification_and_health(bot: Bot) -> None:
    assert bot.sender is not None and bot.adapter is not None
    status, text = await bot.sender.event({"token": "x", "challenge": "c-123", "type": "url_verification"})
    assert (status, json.loads(text)) == (200, {"challenge": "c-123"})
    health = f"http://127.0.0.1:{bot.adapter.http_port}/healthz"
    async with aiohttp.ClientSession() as session, session.get(health) as resp:
        assert resp.status == 200
        assert (await resp.json())["ok"] is True


def _manifest(name: str) -> dict[str, Any]:
    return json.loads((ROOT / name).read_text())


async def test_every_subscribed_event_type_has_a_listener(bot: Bot, fake_gemini: FakeGemini) -> None:
    assert bot.sender is not None
    events = _manifest("manifest.json")["settings"]["event_subscriptions"]["bot_events"]
    edited = FakeSlack.app_mention(bot.slack.user_message(CHANNEL, "hi <@UBOT|bot>"))
    samples = {
        # An edit re-sends app_mention for the original message; edits are not turns.
        "app_mention": {**edited, "edited": {"user": fs.ALICE, "ts": bot.slack.next_ts()}},
        "message.channels": bot.slack.user_message(CHANNEL, "lunch?"),
        "message.groups": bot.slack.user_message("G0PRIVATE", "hello", channel_type="group"),
        "message.im": {**bot.slack.user_message("D0ALICE", "", channel_type="im"), "subtype": "channel_join"},
        "message.mpim": bot.slack.user_message("G0MPIM", "hey all", channel_type="mpim"),
    }
    started = bot.slack.assistant_thread_started("D0ALICE")
    samples["assistant_thread_started"] = started
    changed = FakeSlack.assistant_thread_context_changed(started, "C0OTHER")
    samples["assistant_thread_context_changed"] = changed
    # Leaving events (with nothing stored yet, nothing to delete); a person's token, not the bot's.
    samples["app_uninstalled"] = {"type": "app_uninstalled"}
    samples["tokens_revoked"] = {"type": "tokens_revoked", "tokens": {"oauth": [fs.ALICE]}}
    assert sorted(events) == sorted(samples)
    for name in events:
        status, _ = await bot.sender.event(FakeSlack.event_body(samples[name]))
        # Bolt answers 404 for an event without a listener, and Slack then retries it.
        assert status == 200, name
    # None of those is a turn (no new mention, no DM text, no conversation); this one is.
    message = await bot.mention("a kite")
    await bot.replies(message["ts"], 2)
    assert [r.prompt for r in fake_gemini.requests] == ["a kite"]
    assert {m["thread_ts"] for m in bot.slack.messages if m.get("bot_id")} == {message["ts"]}


# ---------------------------------------------------------------------------------------------
# 2. Replies refine; a mention elsewhere starts another conversation


async def test_replies_in_a_conversation_thread_refine_without_a_mention(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    first = await bot.mention("a lighthouse on a cliff")
    await bot.replies(first["ts"], 2)
    await bot.say("make the sky warmer", thread_ts=first["ts"])
    await bot.replies(first["ts"], 4)
    second = fake_gemini.requests[1]
    assert second.prompt == "make the sky warmer"
    assert len(second.contents) == 3  # the first turn (user, model) and this one
    assert second.signatures() == fake_gemini.requests[0].response_signatures

    # Someone else's thread: no mention, not a conversation -> the bot stays out of it.
    other_root = bot.slack.user_message(CHANNEL, "what's for lunch?")
    await bot.say("pizza", thread_ts=other_root["ts"])
    # A mention in that thread starts a conversation there, keyed on the thread's root.
    mention = await bot.mention("draw the pizza", thread_ts=other_root["ts"])
    posted = await bot.replies(other_root["ts"], 2)
    assert all(m["thread_ts"] == other_root["ts"] for m in posted)
    assert [r.prompt for r in fake_gemini.requests] == [
        "a lighthouse on a cliff",
        "make the sky warmer",
        "draw the pizza",
    ]
    assert len(fake_gemini.requests[2].contents) == 1
    assert mention["thread_ts"] == other_root["ts"]


async def test_an_empty_mention_asks_for_a_prompt_and_a_plain_reply_then_works(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    message = await bot.mention("")
    (ask,) = await bot.replies(message["ts"], 1)
    assert ask["text"] == (
        ":warning: Tell me what to draw, for example: a red bicycle at dawn. "
        "Add --ar 16:9 to change the shape."
    )
    await bot.say("a red bicycle at dawn", thread_ts=message["ts"])
    await bot.replies(message["ts"], 3)
    assert [r.prompt for r in fake_gemini.requests] == ["a red bicycle at dawn"]


async def test_a_dm_message_starts_a_thread_conversation(bot: Bot, fake_gemini: FakeGemini) -> None:
    dm = "D0ALICE"
    message = await bot.say("a watercolor fox", thread_ts=None, channel=dm, channel_type="im")
    await bot.replies(message["ts"], 2, channel=dm)
    await bot.say("now at night", thread_ts=message["ts"], channel=dm, channel_type="im")
    await bot.replies(message["ts"], 4, channel=dm)
    assert [r.prompt for r in fake_gemini.requests] == ["a watercolor fox", "now at night"]
    assert len(fake_gemini.requests[1].contents) == 3


async def test_turns_in_one_thread_queue_and_say_so(bot: Bot, fake_gemini: FakeGemini) -> None:
    first = await bot.mention("a slow painting")
    await bot.replies(first["ts"], 2)
    behaviour, release = held()
    fake_gemini.enqueue(behaviour)
    await bot.say("add a moon", thread_ts=first["ts"])
    await fake_gemini.wait_for_requests(2)
    queued = await bot.say("and stars", thread_ts=first["ts"], channel=CHANNEL)
    (notice,) = await bot.slack.wait_for(lambda: bot.slack.ephemerals_in(CHANNEL, first["ts"]))
    release.set()
    await bot.replies(first["ts"], 6)
    assert notice["user"] == fs.ALICE
    assert notice["text"] == "Queued: I'll start on this as soon as the image before it is finished."
    assert [r.prompt for r in fake_gemini.requests] == ["a slow painting", "add a moon", "and stars"]
    assert queued["ts"] in {ts for _, _, ts, _ in bot.slack.reaction_log}


async def test_a_refusal_on_a_first_mention_reaches_the_person(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    # Slack shows an ephemeral in a thread only once the thread has a reply (the fake drops it,
    # as Slack does): the first mention's thread has none, so the refusal goes to the channel.
    env = {**slack_env(slack), "SLACK_ALLOWED_USERS": fs.BOB}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    running = await Bot(core, slack, socket=False).start()
    try:
        await running.mention("a castle")
        (notice,) = await slack.wait_for(lambda: slack.ephemerals_in(CHANNEL))
    finally:
        await running.stop()
        await core.stop()
    assert (notice["user"], notice["text"], notice["thread_ts"]) == (fs.ALICE, escape(REFUSAL_MESSAGE), None)
    assert slack.dropped_ephemerals == []
    assert fake_gemini.requests == []


async def test_a_queue_position_on_a_first_mention_reaches_the_person(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    env = {**slack_env(slack), "MAX_CONCURRENT_GENERATIONS": "1"}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    running = await Bot(core, slack, socket=False).start()
    try:
        behaviour, release = held()
        fake_gemini.enqueue(behaviour)
        first = await running.mention("a slow painting")
        await fake_gemini.wait_for_requests(1)
        second = await running.mention("a quick sketch")
        (notice,) = await slack.wait_for(lambda: slack.ephemerals_in(CHANNEL))
        release.set()
        await running.replies(first["ts"], 2)
        await running.replies(second["ts"], 2)
    finally:
        await running.stop()
        await core.stop()
    assert (notice["user"], notice["thread_ts"]) == (fs.ALICE, None)
    assert notice["text"] == escape(queue_position_message(1))
    assert slack.dropped_ephemerals == []


async def test_the_fake_shows_an_ephemeral_in_a_thread_only_once_it_has_a_reply(slack: FakeSlack) -> None:
    root = slack.user_message(CHANNEL, "hello")
    async with aiohttp.ClientSession() as session:

        async def ephemeral() -> None:
            form = {"channel": CHANNEL, "user": fs.ALICE, "text": "psst", "thread_ts": root["ts"]}
            headers = {"Authorization": f"Bearer {slack.bot_token}"}
            async with session.post(slack.api_url + "chat.postEphemeral", data=form, headers=headers) as r:
                assert (await r.json())["ok"] is True

        await ephemeral()
        assert (len(slack.dropped_ephemerals), slack.ephemerals) == (1, [])
        slack.user_message(CHANNEL, "a reply", thread_ts=root["ts"])
        await ephemeral()
    assert [e["thread_ts"] for e in slack.ephemerals] == [root["ts"]]


# ---------------------------------------------------------------------------------------------
# 3. Photos: downloaded with the token only from Slack, clear errors otherwise


async def test_photos_on_a_reply_are_downloaded_with_the_bot_token(bot: Bot, fake_gemini: FakeGemini) -> None:
    first = await bot.mention("a garden")
    await bot.replies(first["ts"], 2)
    photo, logo = img.jpeg(640, 480), img.png(32, 32)
    files = [bot.slack.host_file("IMG_0001.jpg", photo, "image/jpeg"), bot.slack.host_file("logo.png", logo)]
    await bot.say("put this bench and logo in it", thread_ts=first["ts"], files=files)
    await bot.replies(first["ts"], 4)
    assert fake_gemini.requests[1].images[-1] == [
        fg.InlineImage("image/jpeg", photo),
        fg.InlineImage("image/png", logo),
    ]
    assert [r.authorization for r in bot.slack.file_requests] == [f"Bearer {fs.BOT_TOKEN}"] * 2


async def test_a_sign_in_page_instead_of_the_image_is_a_clear_error(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    file = bot.slack.host_file("photo.png", img.png())
    # What Slack does when the app lacks files:read: 200 with the HTML sign-in page.
    bot.slack.hosted[file["id"]].data = fs.SIGN_IN_PAGE.encode()
    bot.slack.hosted[file["id"]].content_type = "text/html"
    message = await bot.mention("edit this", files=[file])
    (error,) = await bot.replies(message["ts"], 1)
    assert error["text"] == (
        ":warning: photo.png could not be downloaded from Slack (got a sign-in page instead of the file); "
        "check the app has the files:read scope and try again."
    )
    assert fake_gemini.requests == []


async def test_a_file_url_on_a_foreign_host_never_gets_the_token(bot: Bot, fake_gemini: FakeGemini) -> None:
    async with fs.ForeignHost(body=img.png(), content_type="image/png") as foreign:
        file = bot.slack.host_file("photo.png", img.png(), url=foreign.url("/files-pri/T0FAKE-F1/photo.png"))
        message = await bot.mention("edit this", files=[file])
        (error,) = await bot.replies(message["ts"], 1)
    assert error["text"] == (
        ":warning: photo.png is a link to a file stored outside Slack, so I can't open it; "
        "upload the image itself and try again."
    )
    assert foreign.requests == []
    assert fake_gemini.requests == []


async def test_a_redirect_is_never_followed_with_the_token(bot: Bot, fake_gemini: FakeGemini) -> None:
    async with fs.ForeignHost() as foreign:
        file = bot.slack.host_file("photo.png", img.png(), redirect_to=foreign.url("/login?redir=photo"))
        message = await bot.mention("edit this", files=[file])
        (error,) = await bot.replies(message["ts"], 1)
    assert [r.authorization for r in bot.slack.file_requests] == [f"Bearer {fs.BOT_TOKEN}"]
    assert [(r.path, r.authorization) for r in foreign.requests] == [("/login", None)]
    assert "got a sign-in page instead of the file" in error["text"]
    assert fake_gemini.requests == []


async def test_a_slack_connect_file_is_resolved_with_files_info(bot: Bot, fake_gemini: FakeGemini) -> None:
    photo = img.webp(48, 48)
    file = bot.slack.host_file("shared.webp", photo, "image/webp", connect=True)
    assert "url_private" not in file
    message = await bot.mention("make it pop art", files=[file])
    await bot.replies(message["ts"], 2)
    assert bot.slack.calls_to("files.info")[0].params["file"] == file["id"]
    assert fake_gemini.requests[0].images[-1] == [fg.InlineImage("image/webp", photo)]


async def test_a_file_slack_will_not_show_is_explained(bot: Bot, fake_gemini: FakeGemini) -> None:
    file = bot.slack.host_file("secret.png", img.png(), connect=True)
    bot.slack.fail("files.info", "file_not_found")
    message = await bot.mention("edit this", files=[file])
    (error,) = await bot.replies(message["ts"], 1)
    assert error["text"] == (
        ":warning: Slack wouldn't let me read the attached file "
        "(it may be shared from another organization); download it and attach it here again."
    )


async def test_a_file_that_is_not_an_image_is_refused_by_name(bot: Bot, fake_gemini: FakeGemini) -> None:
    file = bot.slack.host_file("notes.pdf", b"%PDF-1.7\n" + b"0" * 200, "application/pdf")
    message = await bot.mention("illustrate this", files=[file])
    (error,) = await bot.replies(message["ts"], 1)
    assert error["text"] == (
        ":warning: notes.pdf is a PDF document, not a photo; export the page as PNG and attach that."
    )
    assert fake_gemini.requests == []


# ---------------------------------------------------------------------------------------------
# 5. Settings: slash commands set channel defaults; inline flags change a thread


async def test_slash_aspect_sets_the_channel_default_and_answers_privately(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    assert bot.sender is not None
    status, text = await bot.command("/aspect", "16x9")
    assert status == 200
    # A plain-text answer to a slash command is shown to the caller only.
    assert text == (
        "Aspect ratio is now 16:9 for new conversations in this channel. "
        "Inside a thread, add --ar 16:9 to a message or use the menu on my reply."
    )
    status, text = await bot.command("/aspect", "")
    assert text.startswith("Aspect ratio for new conversations in this channel: 16:9. Change it with /aspect")
    message = await bot.mention("a panorama of the alps")
    await bot.replies(message["ts"], 2)
    other = await bot.mention("a portrait", channel="C0OTHER")
    await bot.replies(other["ts"], 2, channel="C0OTHER")
    assert [r.aspect_ratio for r in fake_gemini.requests] == ["16:9", None]


@pytest.mark.parametrize(
    ("command", "text"), [("/aspect", ""), ("/aspect", "3:2"), ("/usage", ""), ("/model", "")]
)
async def test_a_busy_database_does_not_delay_a_slash_commands_ack(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, command: str, text: str
) -> None:
    # The store blocks (a database past its pool, a lock) for 5 s; Slack gives 3 s to answer.
    store = bot.core.store
    settings = store.settings

    async def slow_settings(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(5)
        return await settings(*args, **kwargs)

    monkeypatch.setattr(store, "settings", slow_settings)
    assert bot.sender is not None
    fields = bot.slack.slash_command(command, text, CHANNEL)
    started = time.monotonic()
    status, body = await bot.sender.command(fields)
    assert (status, body) == (200, "")
    assert time.monotonic() - started < 1.0
    answer = await bot.slack.answer_to(fields, limit_s=15)
    assert time.monotonic() - started >= 5
    assert answer["response_type"] == "ephemeral" and answer["text"]


async def test_usage_answers_the_caller_privately(bot: Bot) -> None:
    assert bot.sender is not None
    message = await bot.mention("a red kite")
    await bot.replies(message["ts"], 2)
    status, text = await bot.command("/usage", "")
    assert status == 200
    assert text.splitlines() == [
        "You: 1 image today (about $0.04), 1 image this month (about $0.04).",
        "Your limits: 60 an hour and 200 a day.",
        "This conversation draws with gemini-2.5-flash-image.",
    ]


async def test_slash_command_mistakes_get_one_plain_sentence(bot: Bot) -> None:
    assert bot.sender is not None

    async def answer(command: str, text: str) -> str:
        status, body = await bot.command(command, text)
        assert status == 200
        return body

    assert await answer("/aspect", "7:3 &lt;!channel&gt;") == (
        "7:3 &lt;!channel&gt; is not an aspect ratio gemini-2.5-flash-image supports; use one of "
        "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9."
    )
    assert await answer("/size", "2K") == (
        "gemini-2.5-flash-image makes images at a single size, so the size can't be changed."
    )
    assert await answer("/forget", "") == (
        "Slash commands can't run inside threads, so to clear one use the Forget thread button on my "
        "reply in that thread; its image history is then deleted."
    )


async def test_slash_size_on_a_model_with_sizes(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    env = {**slack_env(slack), "GEMINI_MODEL": "gemini-3-pro-image-preview"}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    bot = await Bot(core, slack, socket=False).start()
    try:
        assert bot.sender is not None
        _, text = await bot.command("/size", "2k")
        assert text == (
            "Image size is now 2K for new conversations in this channel. "
            "Inside a thread, add --size 2K to a message."
        )
        message = await bot.mention("a mountain")
        await bot.replies(message["ts"], 2)
    finally:
        await bot.stop()
        await core.stop()
    assert fake_gemini.requests[0].image_size == "2K"


async def test_inline_flags_change_only_that_thread(bot: Bot, fake_gemini: FakeGemini) -> None:
    first = await bot.mention("a tall tower —ar 9:16")
    await bot.replies(first["ts"], 2)
    await bot.say("now in autumn", thread_ts=first["ts"])
    await bot.replies(first["ts"], 4)
    other = await bot.mention("a wide field")
    await bot.replies(other["ts"], 2)
    assert [(r.prompt, r.aspect_ratio) for r in fake_gemini.requests] == [
        ("a tall tower", "9:16"),
        ("now in autumn", "9:16"),
        ("a wide field", None),
    ]


async def test_a_mention_with_only_a_flag_sets_the_thread_and_waits_for_a_prompt(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    message = await bot.mention("--ar 21:9")
    (note,) = await bot.replies(message["ts"], 1)
    assert note["text"] == "This conversation now uses aspect ratio 21:9; send a prompt to make an image."
    await bot.say("a city skyline", thread_ts=message["ts"])
    await bot.replies(message["ts"], 3)
    assert [(r.prompt, r.aspect_ratio) for r in fake_gemini.requests] == [("a city skyline", "21:9")]


# ---------------------------------------------------------------------------------------------
# 6. Controls on every image reply, working after a restart


async def test_controls_regenerate_change_ratio_and_forget_after_a_restart(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    message = await bot.mention("a red bicycle at dawn")
    _, buttons = await bot.replies(message["ts"], 2)
    await bot.restart()
    assert bot.sender is not None

    await bot.sender.action(bot.slack.block_actions(buttons, "nb_aspect", option="16:9"))
    posted = await bot.replies(message["ts"], 4)
    again = fake_gemini.requests[1]
    assert (again.prompt, again.aspect_ratio, len(again.contents)) == ("a red bicycle at dawn", "16:9", 1)
    assert ("add", CHANNEL, buttons["ts"], "hourglass_flowing_sand") in bot.slack.reaction_log

    await bot.sender.action(bot.slack.block_actions(posted[-1], "nb_regenerate", user=fs.BOB))
    posted = await bot.replies(message["ts"], 6)
    assert (fake_gemini.requests[2].prompt, fake_gemini.requests[2].aspect_ratio) == (
        "a red bicycle at dawn",
        "16:9",
    )

    await bot.sender.action(bot.slack.block_actions(posted[-1], "nb_forget"))
    forgot = await bot.slack.wait_for(
        lambda: [m for m in bot.slack.thread(CHANNEL, message["ts"]) if m["text"].startswith("Forgot")]
    )
    assert forgot[0]["text"] == (
        "Forgot this conversation: 3 turns and their images are deleted. Mention me to start again."
    )
    clicked = await bot.slack.wait_for(
        lambda: next((m for m in bot.slack.messages if m["ts"] == posted[-1]["ts"] and "edited" in m), None)
    )
    assert controls(clicked) == {}
    assert await bot.core.store.conversation(thread_key(message["ts"])) is None

    # The thread is no longer a conversation: a plain reply is ignored, a mention starts again.
    await bot.say("one more", thread_ts=message["ts"])
    restart = await bot.mention("a blue bicycle", thread_ts=message["ts"])
    await bot.slack.wait_for(lambda: len(fake_gemini.requests) == 4)
    assert [r.prompt for r in fake_gemini.requests][3:] == ["a blue bicycle"]
    assert len(fake_gemini.requests[3].contents) == 1
    assert restart["thread_ts"] == message["ts"]


async def test_a_conversation_continues_after_a_restart(bot: Bot, fake_gemini: FakeGemini) -> None:
    message = await bot.mention("a castle")
    await bot.replies(message["ts"], 2)
    await bot.restart()
    await bot.say("add a dragon", thread_ts=message["ts"])
    await bot.replies(message["ts"], 4)
    after = fake_gemini.requests[1]
    assert after.prompt == "add a dragon"
    assert after.signatures() == fake_gemini.requests[0].response_signatures


async def test_a_turn_cut_off_by_a_crash_is_announced_after_the_restart(bot: Bot) -> None:
    message = await bot.mention("a castle")
    await bot.replies(message["ts"], 2)
    # What a crash mid-turn leaves: the message claimed, its turn never finished.
    key = thread_key(message["ts"])
    await bot.core.store.claim_message("slack", key.channel, "1700000999.000100", key)
    await bot.restart()
    posted = await bot.replies(message["ts"], 3)
    assert posted[-1]["text"] == INTERRUPTED_MESSAGE

    def removed_from_the_cut_off_message() -> bool:
        removed = bot.slack.calls_to("reactions.remove")
        return ("1700000999.000100", WORKING_REACTION) in [
            (c.params["timestamp"], c.params["name"]) for c in removed
        ]

    assert await bot.slack.wait_for(removed_from_the_cut_off_message)
    await bot.restart()
    assert len(await bot.replies(message["ts"], 3)) == 3  # told once, not on every start


async def test_a_control_for_a_forgotten_turn_says_so(bot: Bot, fake_gemini: FakeGemini) -> None:
    message = await bot.mention("a castle")
    _, buttons = await bot.replies(message["ts"], 2)
    await bot.core.service.forget(thread_key(message["ts"]))
    assert bot.sender is not None
    await bot.sender.action(bot.slack.block_actions(buttons, "nb_regenerate"))
    posted = await bot.replies(message["ts"], 3)
    assert posted[-1]["text"] == (
        ":warning: That image is no longer in this conversation's history (it may have been forgotten); "
        "send a new prompt instead."
    )


async def test_socket_mode_commands_and_controls_are_acknowledged(
    socket_bot: Bot, fake_gemini: FakeGemini
) -> None:
    fields = socket_bot.slack.slash_command("/aspect", "3:2", CHANNEL)
    ack = await socket_bot.slack.send_envelope("slash_commands", fields)
    assert not ack.get("payload")  # an empty ack; the answer goes to the response URL
    answer = await socket_bot.slack.answer_to(fields)
    assert (answer["text"], answer["response_type"]) == (
        "Aspect ratio is now 3:2 for new conversations in this channel. "
        "Inside a thread, add --ar 16:9 to a message or use the menu on my reply.",
        "ephemeral",
    )
    message = await socket_bot.mention("a harbour")
    _, buttons = await socket_bot.replies(message["ts"], 2)
    ack = await socket_bot.slack.send_envelope(
        "interactive", socket_bot.slack.block_actions(buttons, "nb_regenerate")
    )
    assert "envelope_id" in ack
    await socket_bot.replies(message["ts"], 4)
    assert [r.aspect_ratio for r in fake_gemini.requests] == ["3:2", "3:2"]


# ---------------------------------------------------------------------------------------------
# 9. Output safety


async def test_prompts_are_unescaped_and_mentions_are_never_echoed(bot: Bot, fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(
        fg.image(text="Done <!channel> <@UBOB> & <!here|here> — see <https://example.com|this>")
    )
    message = await bot.mention(
        "a cat &amp; a dog &lt;3 for <!here> and <@UBOB|bob> at <https://example.com|example.com>"
    )
    upload, _ = await bot.replies(message["ts"], 2)
    assert fake_gemini.requests[0].prompt == "a cat & a dog <3 for @here and @bob at example.com"
    assert upload["text"] == (
        "Done &lt;!channel&gt; &lt;@UBOB&gt; &amp; &lt;!here|here&gt; — see &lt;https://example.com|this&gt;"
    )
    for posted in bot.slack.messages:
        if posted.get("bot_id"):
            assert "<!" not in posted["text"] and "<@" not in posted["text"]


async def test_a_file_name_with_a_mention_is_escaped_in_the_error(bot: Bot) -> None:
    file = bot.slack.host_file("<!channel>.png", b"", "image/png")
    message = await bot.mention("edit this", files=[file])
    (error,) = await bot.replies(message["ts"], 1)
    assert error["text"] == ":warning: &lt;!channel&gt;.png is empty (0 bytes); attach the image again."


# ---------------------------------------------------------------------------------------------
# Operator problems and shutdown


async def test_a_rejected_bot_token_stops_with_one_plain_line(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    env = {**slack_env(slack), "SLACK_BOT_TOKEN": "xoxb-revoked"}
    assert await refusal(SlackAdapter, fake_gemini, tmp_path / "bot.sqlite3", env) == (
        "Slack rejected SLACK_BOT_TOKEN; reinstall the app and copy the Bot User OAuth Token again."
    )


async def test_a_rejected_app_token_stops_with_one_plain_line(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    env = {**slack_env(slack, socket=True), "SLACK_APP_TOKEN": "xapp-wrong"}
    refused = await refusal(SlackAdapter, fake_gemini, tmp_path / "bot.sqlite3", env)
    assert refused.startswith("Slack rejected SLACK_APP_TOKEN; create an app-level token")
    assert slack.sockets == []


async def test_an_unreachable_slack_api_is_named(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    async with FakeSlack() as gone:
        env = slack_env(gone)
    refused = await refusal(SlackAdapter, fake_gemini, tmp_path / "bot.sqlite3", env)
    assert refused.startswith(f"Cannot reach the Slack API at {env['SLACK_API_URL']} (")
    assert refused.endswith("check SLACK_API_URL and the network.")


async def test_a_refused_upload_is_explained_in_the_thread(bot: Bot, fake_gemini: FakeGemini) -> None:
    bot.slack.fail("files.getUploadURLExternal", "missing_scope")
    message = await bot.mention("a red bicycle")
    posted = await bot.replies(message["ts"], 2)
    assert posted[0]["text"] == (
        "I made the image but Slack refused the upload; ask a workspace admin to check the app has "
        "the files:write scope, then press Regenerate."
    )
    assert set(controls(posted[1])) == {
        "nb_regenerate",
        "nb_variations",
        "nb_aspect",
        "nb_model",
        "nb_frame_zoom_1.5",
        "nb_frame_zoom_2",
        "nb_frame_pan_left",
        "nb_frame_pan_right",
        "nb_frame_pan_up",
        "nb_frame_pan_down",
        "nb_forget",
    }


async def test_closing_stops_intake_and_lets_a_turn_in_flight_post_its_reply(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    assert bot.adapter is not None and bot.task is not None
    port = bot.adapter.http_port
    behaviour, release = held()
    fake_gemini.enqueue(behaviour)
    message = await bot.mention("a slow sunset")
    await fake_gemini.wait_for_requests(1)
    await bot.adapter.close()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/healthz")
    assert not bot.task.done()  # still finishing the turn it took
    release.set()
    posted = await bot.replies(message["ts"], 2)
    assert posted[0]["subtype"] == "file_share"
    async with asyncio.timeout(10):
        await bot.task


# ---------------------------------------------------------------------------------------------
# Order: a thread's turns run one at a time, in the order people posted them


@pytest.mark.parametrize("socket", [False, True], ids=["http", "socket"])
async def test_a_burst_of_replies_arriving_out_of_order_is_answered_in_posting_order(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path, socket: bool
) -> None:
    slack.realtime_ts = True  # stamped as Slack stamps a message just posted
    env = {**slack_env(slack, socket=socket), "TURN_ORDER_SETTLE_MS": "2000"}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    bot = await Bot(core, slack, socket).start()
    try:
        first = await bot.mention("a lighthouse")
        await bot.replies(first["ts"], 2)
        names = ["one", "two", "three", "four"]
        burst = [slack.user_message(CHANNEL, f"burst {n}", thread_ts=first["ts"]) for n in names]
        watch = fg.OverlapWatch()
        fake_gemini.enqueue(*watch.behaviours(len(burst)))
        # Slack delivers the third reply first, and the bot has taken it up (claimed it) before
        # the other three arrive, all at once and not in the order they were posted.
        await bot.deliver(burst[2])
        await wait_claimed(core.store, "slack", burst[2]["ts"])
        await asyncio.gather(*(bot.deliver(burst[i]) for i in (0, 3, 1)))
        await bot.replies(first["ts"], 2 + 2 * len(burst))
    finally:
        await bot.stop()
        await core.stop()
    assert [r.prompt for r in fake_gemini.requests] == ["a lighthouse", *(f"burst {n}" for n in names)]
    # Each request continues the one before: its history ends with the previous prompt and answer.
    requests = fake_gemini.requests
    assert [said(r.contents[-3]) for r in requests[1:]] == [r.prompt for r in requests[:-1]]
    assert all(r.contents[-2]["role"] == "model" for r in requests[1:])
    assert watch.peak == 1


async def test_a_reply_that_arrives_after_a_later_one_was_answered_is_still_answered(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    first = await bot.mention("a lighthouse")
    await bot.replies(first["ts"], 2)
    earlier = bot.slack.user_message(CHANNEL, "add a boat", thread_ts=first["ts"])
    later = bot.slack.user_message(CHANNEL, "add gulls", thread_ts=first["ts"])
    await bot.deliver(later)
    await bot.replies(first["ts"], 4)
    await bot.deliver(earlier)  # a retry that took the long way round
    posted = await bot.replies(first["ts"], 6)
    assert [r.prompt for r in fake_gemini.requests] == ["a lighthouse", "add gulls", "add a boat"]
    assert len(fake_gemini.requests[2].contents) == 5  # applied to the latest image
    late_texts = " ".join(str(m.get("text") or "") for m in posted[4:])
    assert (
        "This message reached me after a later one had already been answered, so I applied it to the "
        "latest image." in late_texts
    )
