"""The fault suite's common parts: `python -m bot` as a process, a Slack world, and the database read back."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.slack.sink import WORKING_REACTION
from tests.auxil import fake_slack as fs
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import Behaviour, FakeGemini, RecordedRequest, generated_images
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.process import BotProcess

CHANNEL = "C0FAULTS"
GEMINI_KEY = "fault-suite-gemini-key"
# Cost limits off: the suite measures survival, not the limiter.
NO_LIMITS = {"USER_IMAGES_PER_HOUR": "0", "USER_IMAGES_PER_DAY": "0"}


# ---------------------------------------------------------------------------------------------
# The bot as a process


def slack_env(gemini: FakeGemini, slack: FakeSlack, db: Path | str, **extra: str) -> dict[str, str]:
    """A Socket Mode deployment against the fakes, with cost limits off; ``db`` is a SQLite file
    or a database URL."""
    return {
        "GEMINI_API_KEY": GEMINI_KEY,
        "GOOGLE_GEMINI_BASE_URL": gemini.base_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": db if isinstance(db, str) else f"sqlite:///{db}",
        **NO_LIMITS,
        **extra,
    }


SLACK_SECRETS = (fs.BOT_TOKEN, fs.APP_TOKEN, fs.SIGNING_SECRET, GEMINI_KEY)


async def start_slack_bot(cwd: Path, env: Mapping[str, str], slack: FakeSlack) -> BotProcess:
    """Start the bot and return once its Socket Mode connection is up."""
    sockets_before = len(slack.sockets)
    bot = await BotProcess.start(cwd, env)
    try:
        await bot.wait_for_log("slack connected")
        await slack.wait_for(lambda: any(not s.ws.closed for s in slack.sockets[sockets_before:]), 30)
    except BaseException:
        bot.ensure_dead()
        raise
    return bot


def discord_env(gemini: FakeGemini, discord: FakeDiscord, db: Path, **extra: str) -> dict[str, str]:
    """A Discord deployment against the fakes, with cost limits off."""
    return {
        "GEMINI_API_KEY": GEMINI_KEY,
        "GOOGLE_GEMINI_BASE_URL": gemini.base_url,
        "DISCORD_TOKEN": discord.token,
        "DISCORD_API_URL": discord.api_url,
        "DATABASE_URL": f"sqlite:///{db}",
        **NO_LIMITS,
        **extra,
    }


async def start_discord_bot(cwd: Path, env: Mapping[str, str], discord: FakeDiscord) -> BotProcess:
    """Start the bot and return once it has identified on the gateway and synced its commands."""
    sessions_before = len(discord.identifies)
    bot = await BotProcess.start(cwd, env)
    try:
        await bot.wait_for_log("discord connected")
        await discord.wait_ready(sessions_before + 1)
    except BaseException:
        bot.ensure_dead()
        raise
    return bot


# ---------------------------------------------------------------------------------------------
# People talking to the bot in Slack


class SlackWorld:
    """Users mentioning the bot in one channel of the fake Slack, over Socket Mode."""

    def __init__(self, slack: FakeSlack, channel: str = CHANNEL) -> None:
        self.slack = slack
        self.channel = channel

    async def say(
        self,
        text: str,
        *,
        thread_ts: str | None = None,
        user: str = fs.ALICE,
        app_mention_first: bool = False,
    ) -> dict[str, Any]:
        """A user mentions the bot; Slack delivers the mention twice (``message`` and
        ``app_mention``), in either order. Returns the message event."""
        message = self.slack.user_message(
            self.channel, f"<@{fs.BOT_USER_ID}> {text}", user=user, thread_ts=thread_ts
        )
        copies = [FakeSlack.event_body(message), FakeSlack.event_body(FakeSlack.app_mention(message))]
        if app_mention_first:
            copies.reverse()
        for body in copies:
            await self.slack.send_envelope("events_api", body)
        return message

    def finished(self, message: Mapping[str, Any]) -> bool:
        """The working reaction came off the message: its turn posted its outcome."""
        return ("remove", self.channel, message["ts"], WORKING_REACTION) in self.slack.reaction_log

    def working(self, message: Mapping[str, Any]) -> bool:
        return ("add", self.channel, message["ts"], WORKING_REACTION) in self.slack.reaction_log

    async def wait_finished(self, message: Mapping[str, Any], limit_s: float = 30.0) -> None:
        await self.slack.wait_for(lambda: self.finished(message), limit_s)

    def bot_posts(self, thread_ts: str) -> list[dict[str, Any]]:
        return self.slack.thread(self.channel, thread_ts)

    def posted_uploads(self) -> list[fs.Upload]:
        """Uploads that were shared into a channel (what users saw), in upload order."""
        return [u for u in self.slack.uploads.values() if u.share_ts is not None]


def warnings_in(posts: Iterable[Mapping[str, Any]]) -> list[str]:
    """Error sentences among the bot's Slack posts, without the ":warning: " prefix."""
    texts = (str(m.get("text", "")) for m in posts)
    return [t.removeprefix(":warning: ") for t in texts if t.startswith(":warning:")]


def images_in(posts: Iterable[Mapping[str, Any]]) -> int:
    """Files among the bot's Slack posts."""
    return sum(len(m.get("files") or ()) for m in posts)


# ---------------------------------------------------------------------------------------------
# What Gemini saw and answered


def texts_sent(rec: RecordedRequest) -> list[str]:
    """Every text part of a request's contents (history and the new turn), in order."""
    return [
        str(part["text"])
        for content in rec.contents
        for part in content.get("parts") or ()
        if isinstance(part, dict) and "text" in part
    ]


def attempts_for(gemini: FakeGemini, marker: str) -> list[RecordedRequest]:
    """Requests whose prompt contains ``marker``, in arrival order."""
    return [r for r in gemini.requests if marker in r.prompt]


def most_in_flight(gemini: FakeGemini) -> int:
    """The most requests Gemini was working on at one moment."""
    edges = sorted(
        [(r.received_at, 1) for r in gemini.requests]
        + [(r.received_at + r.handling_s, -1) for r in gemini.requests]
    )
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def successful_generations(gemini: FakeGemini) -> Counter[str]:
    """How many image answers each prompt got."""
    return Counter(r.prompt for r in gemini.requests if r.status == 200 and r.response_images)


def uploads_by_prompt(world: SlackWorld, gemini: FakeGemini) -> dict[str, list[fs.Upload]]:
    """Posted uploads grouped by the prompt whose image they carry."""
    made = generated_images(gemini)
    out: dict[str, list[fs.Upload]] = {}
    for upload in world.posted_uploads():
        prompt = made.get(hashlib.sha256(upload.data).hexdigest(), "<not from gemini>")
        out.setdefault(prompt, []).append(upload)
    return out


def signalling(behaviour: Behaviour, on_sent: Callable[[], None]) -> Behaviour:
    """``behaviour``, then ``on_sent()`` once the answer is completely written to the bot."""

    async def respond(fake: FakeGemini, rec: RecordedRequest, req: web.Request) -> web.StreamResponse:
        response = await behaviour.respond(fake, rec, req)
        if isinstance(response, web.Response) and not response.prepared:
            # Sent here so the signal means "on the wire"; aiohttp skips a response already sent.
            await response.prepare(req)
            await response.write_eof()
        on_sent()
        return response

    return Behaviour(f"signalling:{behaviour.name}", respond)


# ---------------------------------------------------------------------------------------------
# The database, read back read-only after (or between) runs


@dataclass(frozen=True, slots=True)
class TurnRow:
    id: int
    thread: str
    parent_id: int | None
    prompt: str
    model_parts: int
    refs: tuple[str, ...]


def open_readonly(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def record_refs(record: Any) -> list[str]:
    out = []
    for part in (record or {}).get("parts") or ():
        inline = part.get("inline_data") if isinstance(part, dict) else None
        if isinstance(inline, dict) and "blob" in inline:
            out.append(str(inline["blob"]))
    return out


def record_text(record: Any) -> str:
    return " ".join(
        str(p["text"]) for p in (record or {}).get("parts") or () if isinstance(p, dict) and "text" in p
    )


def read_turns(path: Path) -> list[TurnRow]:
    """Every stored turn, oldest first."""
    with open_readonly(path) as conn:
        rows = conn.execute(
            "SELECT t.id, c.thread, t.parent_id, t.user_content, t.model_content "
            "FROM turns AS t JOIN conversations AS c ON c.id = t.conversation_id ORDER BY t.id"
        ).fetchall()
    out = []
    for row in rows:
        user, model = json.loads(row["user_content"]), json.loads(row["model_content"])
        out.append(
            TurnRow(
                id=row["id"],
                thread=row["thread"],
                parent_id=row["parent_id"],
                prompt=record_text(user),
                model_parts=len(model.get("parts") or ()),
                refs=tuple(dict.fromkeys([*record_refs(user), *record_refs(model)])),
            )
        )
    return out


def database_problems(path: Path) -> list[str]:
    """Everything that would make the database unsound or a turn half-written; [] when clean.

    SQLite's integrity and foreign-key checks; every head points at a turn of its own
    conversation; every turn's parent is in the same conversation; every turn has user and model
    parts, a usage row, and every image it references stored whole (bytes hash to the key).
    """
    problems: list[str] = []
    with open_readonly(path) as conn:
        integrity = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            problems += [f"integrity_check: {line}" for line in integrity]
        problems += [f"foreign key violation: {tuple(r)}" for r in conn.execute("PRAGMA foreign_key_check")]
        for row in conn.execute(
            "SELECT c.id, c.head_turn_id, t.conversation_id FROM conversations AS c "
            "LEFT JOIN turns AS t ON t.id = c.head_turn_id"
        ):
            if row["head_turn_id"] is None or row["conversation_id"] != row["id"]:
                head = row["head_turn_id"]
                problems.append(f"conversation {row['id']} head {head} is not one of its turns")
        for row in conn.execute(
            "SELECT t.id, t.parent_id FROM turns AS t JOIN turns AS p ON p.id = t.parent_id "
            "WHERE p.conversation_id != t.conversation_id"
        ):
            problems.append(f"turn {row['id']} continues turn {row['parent_id']} of another conversation")
        stored = {
            row["sha256"]: (row["size"], hashlib.sha256(bytes(row["data"])).hexdigest())
            for row in conn.execute("SELECT sha256, size, data FROM blobs")
        }
        linked: dict[int, set[str]] = {}
        for row in conn.execute("SELECT turn_id, sha256 FROM turn_blobs"):
            linked.setdefault(row["turn_id"], set()).add(row["sha256"])
        usage = {row[0] for row in conn.execute("SELECT turn_id FROM usage_log")}
        for row in conn.execute("SELECT id, user_content, model_content FROM turns"):
            problems += turn_problems(
                row["id"], row["user_content"], row["model_content"], stored, linked, usage
            )
        problems += empty_images(stored)
    return problems


def turn_problems(
    turn_id: int,
    user_json: str,
    model_json: str,
    stored: dict[str, tuple[int, str]],
    linked: dict[int, set[str]],
    usage: set[int],
) -> list[str]:
    """What is wrong with one stored turn: its records, its usage row, its images (stored whole
    and linked); the same checks on either backend."""
    try:
        user, model = json.loads(user_json), json.loads(model_json)
    except ValueError:
        return [f"turn {turn_id} content is not JSON"]
    problems = []
    if not user.get("parts"):
        problems.append(f"turn {turn_id} has no user parts")
    if not model.get("parts"):
        problems.append(f"turn {turn_id} has no model parts")
    if turn_id not in usage:
        problems.append(f"turn {turn_id} has no usage row")
    for ref in dict.fromkeys([*record_refs(user), *record_refs(model)]):
        if ref not in stored:
            problems.append(f"turn {turn_id} references missing image {ref[:12]}")
        elif stored[ref][1] != ref:
            problems.append(f"image {ref[:12]} of turn {turn_id} is damaged")
        if ref not in linked.get(turn_id, set()):
            problems.append(f"turn {turn_id} does not link image {ref[:12]}")
    return problems


def empty_images(stored: dict[str, tuple[int, str]]) -> list[str]:
    return [f"image {sha[:12]} is empty" for sha, (size, _digest) in stored.items() if size <= 0]
