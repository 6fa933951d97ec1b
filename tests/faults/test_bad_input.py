"""The bad-input corpus (tests/corpus/cases.json) sent to `python -m bot` on console, Slack and Discord."""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from PIL import Image
from slack_sdk.signature import SignatureVerifier

from adapters.slack.words import CONTROLS_FALLBACK
from tests.auxil import fake_gemini as fg
from tests.auxil import fake_slack as fs
from tests.auxil.fake_discord import FakeDiscord, FakeFile, FakeInteraction, FakeMessage, pings_nobody
from tests.auxil.fake_gemini import FakeGemini, RecordedRequest
from tests.auxil.fake_slack import FakeSlack, ForeignHost
from tests.auxil.ledger import LEDGER
from tests.auxil.process import ROOT, BotProcess
from tests.corpus import make_corpus

CORPUS = ROOT / "tests" / "corpus"
MANIFEST: dict[str, Any] = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
CASES: dict[str, dict[str, Any]] = {case["name"]: case for case in MANIFEST["cases"]}
GEMINI_KEY = "corpus-gemini-key-do-not-leak"
# Cost limits off: the corpus checks what bad input does, not the rate limiter.
NO_LIMITS = {"USER_IMAGES_PER_HOUR": "0", "USER_IMAGES_PER_DAY": "0"}
WAIT_S = 30.0
PROBE_PREFIX = "probe "
SLACK_PROBE_CHANNEL = "C0PROBE"
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")


def names(platform: str) -> list[str]:
    return [name for name, case in CASES.items() if case["platform"] == platform]


def corpus_bytes(relative: str) -> bytes:
    return (CORPUS / relative).read_bytes()


def corpus_text(relative: str) -> str:
    return (CORPUS / relative).read_text(encoding="utf-8")


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------------------------
# The bot as a process
#
# One process per platform serves every case of that platform, against the fakes on 127.0.0.1:
# the console reads each case as a typed line (files attached with @path), the Slack process runs
# in HTTP mode and gets signed (or deliberately unsigned) requests, the Discord process gets
# gateway messages and interactions. After every Slack and Discord case another person mentions the
# bot (a "probe"): its answer is the barrier that ends the case and the proof the bot survived it.


def leaks(texts: list[str], secrets: tuple[str, ...]) -> list[str]:
    """Secrets (named by their first characters) found in any of ``texts``."""
    joined = "\n".join(texts)
    return [secret[:8] + "…" for secret in secrets if secret in joined]


def log_problems(bot: BotProcess) -> list[str]:
    """Log lines that say something went wrong unhandled: errors and tracebacks."""
    return [
        f"{entry.get('level')}: {entry.get('message')} ({entry.get('error')})"
        for entry in bot.logs()
        if entry.get("level") == "error" or "traceback" in entry
    ]


# ---------------------------------------------------------------------------------------------
# What a case did, judged against the manifest


@dataclass
class Outcome:
    """What one case made the bot do, as the platform's users and the fakes saw it."""

    errors: list[str] = field(default_factory=list)
    images: int = 0
    status: int | None = None
    ack_text: str | None = None
    ephemerals: list[str] = field(default_factory=list)
    posted_texts: list[str] = field(default_factory=list)
    gemini: list[RecordedRequest] = field(default_factory=list)
    survived: bool = True
    timed_out: bool = False

    @property
    def replied(self) -> bool:
        return bool(self.errors or self.images or self.ack_text or self.ephemerals)


def expects_reply(expect: Mapping[str, Any]) -> bool:
    return any(key in expect for key in ("error", "image", "ack_text", "ephemeral"))


def judge(name: str, outcome: Outcome, extra: list[str] | None = None) -> None:
    """Record the case in the ledger, then fail with every mismatch at once."""
    expect = CASES[name]["expect"]
    calls = len(outcome.gemini)
    lost = int(expects_reply(expect) and not outcome.replied)
    LEDGER.record(
        name,
        survived=outcome.survived,
        lost_turns=lost,
        duplicate_generations=max(0, calls - int(expect["gemini_calls"])),
    )
    problems = list(extra or [])
    if not outcome.survived:
        problems.append("the bot did not answer the next message (probe) after this case")
    if outcome.timed_out:
        problems.append("the expected reply never came")
    if calls != expect["gemini_calls"]:
        problems.append(f"{calls} Gemini calls, expected {expect['gemini_calls']}")
    if "error" in expect and outcome.errors != [expect["error"]]:
        problems.append(f"errors {outcome.errors!r}, expected [{expect['error']!r}]")
    if "error" not in expect and outcome.errors:
        problems.append(f"unexpected errors {outcome.errors!r}")
    if expect.get("image") and outcome.images != 1:
        problems.append(f"{outcome.images} image replies, expected 1")
    if not expect.get("image") and outcome.images:
        problems.append(f"{outcome.images} unexpected image replies")
    if "http_status" in expect and outcome.status != expect["http_status"]:
        problems.append(f"HTTP {outcome.status}, expected {expect['http_status']}")
    if "ack_text" in expect and outcome.ack_text != expect["ack_text"]:
        problems.append(f"answered {outcome.ack_text!r}, expected {expect['ack_text']!r}")
    if "ephemeral" in expect and outcome.ephemerals != [expect["ephemeral"]]:
        problems.append(f"private answers {outcome.ephemerals!r}, expected [{expect['ephemeral']!r}]")
    if expect.get("reply") == "nothing" and (outcome.replied or outcome.posted_texts):
        problems.append(f"posted {outcome.posted_texts!r} where nothing was expected")
    if "gemini_prompt" in expect and [r.prompt for r in outcome.gemini] != [expect["gemini_prompt"]]:
        problems.append(
            f"Gemini got {[r.prompt for r in outcome.gemini]!r}, expected {expect['gemini_prompt']!r}"
        )
    if "posted_text" in expect and expect["posted_text"] not in outcome.posted_texts:
        problems.append(f"posted {outcome.posted_texts!r}, expected {expect['posted_text']!r} among them")
    assert not problems, f"{name}: " + "; ".join(problems)


def case_requests(gemini: FakeGemini, since: int) -> list[RecordedRequest]:
    """Gemini requests since index ``since``, without the probes."""
    return [r for r in gemini.requests[since:] if not r.prompt.startswith(PROBE_PREFIX)]


def check_gemini_image(name: str, outcome: Outcome, input_file: bytes | None) -> list[str]:
    """The ``gemini_image`` expectation: what the user turn carried to Gemini."""
    wanted = CASES[name]["expect"].get("gemini_image")
    if wanted is None:
        return []
    if len(outcome.gemini) != 1 or not outcome.gemini[0].images:
        return ["no Gemini request with the image to check"]
    sent = outcome.gemini[0].images[-1]  # the user's turn is the last content
    if len(sent) != 1:
        return [f"the turn carried {len(sent)} images, expected 1"]
    problems = []
    if sent[0].mime_type != wanted["mime_type"]:
        problems.append(f"Gemini got {sent[0].mime_type}, expected {wanted['mime_type']}")
    if wanted.get("same_bytes_as_file") and sent[0].data != input_file:
        problems.append("Gemini did not get the file byte for byte")
    if "size" in wanted or "pixel" in wanted:
        with Image.open(io.BytesIO(sent[0].data)) as picture:
            if list(picture.size) != wanted["size"]:
                problems.append(f"Gemini got {picture.size}, expected {wanted['size']}")
            pixel = picture.convert("RGB").getpixel((0, 0))
            if list(pixel) != wanted["pixel"]:  # type: ignore[arg-type]
                problems.append(f"Gemini's first pixel is {pixel}, expected {wanted['pixel']}")
    return problems


# ---------------------------------------------------------------------------------------------
# The corpus itself


def corpus_files_of(case: Mapping[str, Any]) -> list[str]:
    """The corpus files a case sends, relative to tests/corpus."""
    spec = case["input"]
    found = list(spec.get("files", []))
    found += [spec[key] for key in ("text_file", "mention_file", "payload") if key in spec]
    if "source" in spec.get("file", {}):
        found.append(spec["file"]["source"])
    return found


def test_the_corpus_has_every_kind_of_bad_input_and_stays_small() -> None:
    cases = MANIFEST["cases"]
    assert len(cases) >= 30 and len(CASES) == len(cases), "at least 30 cases, names unique"
    assert {c["platform"] for c in cases} == {"console", "slack", "discord"}
    for case in cases:
        expect = case["expect"]
        assert expects_reply(expect) or expect.get("reply") == "nothing", case["name"]
        assert isinstance(expect["gemini_calls"], int), case["name"]
    referenced = {CORPUS / f for case in cases for f in corpus_files_of(case)}
    assert [p for p in referenced if not p.is_file()] == []
    committed = {p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")}
    committed -= {CORPUS / "cases.json"}
    assert committed - referenced == set(), "every corpus file is used by a case"
    assert sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file()) < 2 * 1024 * 1024
    # The 50 MB file is made at test time, never committed.
    assert [p for p in committed if p.stat().st_size > 1024 * 1024] == []


def test_make_corpus_rebuilds_the_committed_files(tmp_path: Path) -> None:
    # Files this script writes byte for byte are reproduced exactly; codec-made ones exist.
    assert make_corpus.differences() == []
    written = make_corpus.build(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == {f.path for f in make_corpus.FILES}
    big = tmp_path / "big.png"
    make_corpus.write_big_png(big, 3 * 1024 * 1024)
    assert big.stat().st_size == 3 * 1024 * 1024
    with Image.open(big) as picture:
        picture.load()  # a valid PNG: the padding chunk is skipped
        assert picture.size == (32, 24)


# ---------------------------------------------------------------------------------------------
# Shared fakes


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gemini() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad-input")


@pytest.fixture(scope="module")
def big_file(workdir: Path) -> Iterator[Path]:
    """The real 50 MB file, made at test time (never committed) and removed afterwards."""
    path = workdir / "big.png"
    make_corpus.write_big_png(path)
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def big_bytes(big_file: Path) -> bytes:
    return big_file.read_bytes()


def base_env(gemini: FakeGemini, db: Path) -> dict[str, str]:
    return {
        "GEMINI_API_KEY": GEMINI_KEY,
        "GOOGLE_GEMINI_BASE_URL": gemini.base_url,
        "DATABASE_URL": f"sqlite:///{db}",
        **NO_LIMITS,
    }


# ---------------------------------------------------------------------------------------------
# Console: `python -m bot console`, one typed line per case


@dataclass
class ConsoleRun:
    bot: BotProcess
    gemini: FakeGemini
    cwd: Path
    big_file: Path

    def line_for(self, case: Mapping[str, Any]) -> str:
        spec = case["input"]
        text = corpus_text(spec["text_file"]) if "text_file" in spec else spec.get("text", "")
        paths = [CORPUS / f for f in spec.get("files", [])]
        if "generated" in spec:
            paths.append(self.big_file)
        return " ".join([text, *(f'@"{p}"' for p in paths)])

    async def run(self, name: str) -> tuple[list[str], Outcome]:
        """In a new conversation, type the case's line, then a command the console does not
        know: its answer ("Unknown command") marks the end of the case's output."""
        marker = f"/done-{name}"
        answer = f"! Unknown command {marker}; type /help for the list."
        start, since = len(self.bot.stdout), len(self.gemini.requests)
        await self.bot.write_line("/new")
        await self.bot.write_line(self.line_for(CASES[name]))
        await self.bot.write_line(marker)
        outcome = Outcome()
        try:
            await self.bot.wait_until(lambda: answer in self.bot.stdout[start:])
        except (TimeoutError, AssertionError):
            outcome.timed_out = True
            outcome.survived = self.bot.running
        lines = self.bot.stdout[start:]
        lines = lines[: lines.index(answer)] if answer in lines else lines
        outcome.errors = [line[2:] for line in lines if line.startswith("! ")]
        outcome.images = sum(1 for line in lines if line.startswith("[image] "))
        outcome.gemini = case_requests(self.gemini, since)
        return lines, outcome


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def console(gemini: FakeGemini, workdir: Path, big_file: Path) -> AsyncIterator[ConsoleRun]:
    cwd = workdir / "console"
    cwd.mkdir()
    bot = await BotProcess.start(cwd, base_env(gemini, cwd / "data" / "bot.sqlite3"), ["console"])
    try:
        await bot.wait_until(lambda: "New conversation. Describe the image you want." in bot.stdout)
        yield ConsoleRun(bot, gemini, cwd, big_file)
    finally:
        bot.ensure_dead()


@MODULE_LOOP
@pytest.mark.parametrize("name", names("console"))
async def test_console_case(console: ConsoleRun, name: str) -> None:
    lines, outcome = await console.run(name)
    extra = check_gemini_image(name, outcome, _first_file(name))
    extra += [f"printed a traceback: {line}" for line in lines if "Traceback" in line]
    judge(name, outcome, extra)


def _first_file(name: str) -> bytes | None:
    files = CASES[name]["input"].get("files") or []
    return corpus_bytes(files[0]) if files else None


@MODULE_LOOP
async def test_console_leaves_cleanly_and_leaks_nothing(console: ConsoleRun) -> None:
    await console.bot.write_line("/quit")
    assert await console.bot.wait() == 0
    assert console.bot.stdout[-1] == "Bye. Your conversation is saved; run the bot again to continue it."
    # The console owns the terminal, so its logs go to a file beside the database.
    log_lines = (console.cwd / "data" / "console.log").read_text(encoding="utf-8").splitlines()
    assert any('"message": "bot started"' in line for line in log_lines)
    everything = console.bot.stdout + console.bot.lines + log_lines
    assert leaks(everything, (GEMINI_KEY,)) == []
    assert not [line for line in console.bot.stdout + console.bot.lines if "Traceback" in line]
    assert not [line for line in log_lines if '"level": "error"' in line or '"traceback"' in line]


# ---------------------------------------------------------------------------------------------
# Slack: `python -m bot` in HTTP mode, signed requests to /slack/events


@dataclass
class SlackRun:
    bot: BotProcess
    slack: FakeSlack
    gemini: FakeGemini
    foreign: ForeignHost
    url: str
    session: aiohttp.ClientSession
    big: bytes
    probes: int = 0
    expected_calls: int = 0
    start: int = 0

    def bot_posts(self) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages if m.get("bot_id") == fs.BOT_ID]

    def case_posts(self, since: int) -> list[dict[str, Any]]:
        return [m for m in self.bot_posts()[since:] if m["channel"] != SLACK_PROBE_CHANNEL]

    # -- sending -------------------------------------------------------------------------------
    async def post(
        self,
        body: str,
        content_type: str,
        *,
        signature: str = "valid",
        age_s: int = 0,
        timestamp: str | None = None,
    ) -> tuple[int, str]:
        """What reaches /slack/events: signed by Slack, by someone else, replayed, or unsigned."""
        stamp = timestamp or str(int(time.time()) - age_s)
        headers = {"Content-Type": content_type}
        if signature == "valid":
            headers["X-Slack-Signature"] = SignatureVerifier(fs.SIGNING_SECRET).generate_signature(
                timestamp=stamp, body=body
            )
            headers["X-Slack-Request-Timestamp"] = stamp
        elif signature == "wrong":
            headers["X-Slack-Signature"] = SignatureVerifier("not-the-secret").generate_signature(
                timestamp=stamp if stamp.isdigit() else "0", body=body
            )
            headers["X-Slack-Request-Timestamp"] = stamp
        async with self.session.post(self.url, data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    async def deliver(self, event: Mapping[str, Any]) -> int:
        status, _ = await self.post(json.dumps(FakeSlack.event_body(event)), "application/json")
        return status

    async def mention(
        self, channel: str, text: str, *, user: str = fs.ALICE, files: Any = None
    ) -> dict[str, Any]:
        """A person posts ``<@bot> text``; Slack delivers ``message`` and ``app_mention``."""
        message = self.slack.user_message(
            channel, f"<@{fs.BOT_USER_ID}> {text}".rstrip(), user=user, files=files
        )
        for event in (message, FakeSlack.app_mention(message)):
            status = await self.deliver(event)
            assert status == 200
        return message

    # -- waiting -------------------------------------------------------------------------------
    def finished(self, channel: str, ts: str, done: Callable[[list[dict[str, Any]]], bool]) -> bool:
        posts = self.slack.thread(channel, ts)
        return done(posts) and not self.slack.reactions.get((channel, ts))

    async def wait(self, predicate: Callable[[], bool]) -> bool:
        try:
            await self.slack.wait_for(predicate, WAIT_S)
        except TimeoutError:
            return False
        return True

    async def probe(self) -> bool:
        """Someone else mentions the bot; True once its image and controls are posted."""
        self.probes += 1
        message = await self.mention(SLACK_PROBE_CHANNEL, f"{PROBE_PREFIX}{self.probes}", user=fs.BOB)

        def answered(posts: list[dict[str, Any]]) -> bool:
            return any(p.get("text") == CONTROLS_FALLBACK for p in posts)

        return self.bot.running and await self.wait(
            lambda: self.finished(SLACK_PROBE_CHANNEL, message["ts"], answered)
        )


def _reply_done(expect: Mapping[str, Any]) -> Callable[[list[dict[str, Any]]], bool]:
    if "error" in expect:
        return lambda posts: any(str(p.get("text", "")).startswith(":warning: ") for p in posts)
    return lambda posts: any(p.get("text") == CONTROLS_FALLBACK for p in posts)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slack_run(gemini: FakeGemini, workdir: Path, big_bytes: bytes) -> AsyncIterator[SlackRun]:
    cwd = workdir / "slack"
    cwd.mkdir()
    async with (
        FakeSlack() as slack,
        ForeignHost(host="127.0.0.2") as foreign,
        aiohttp.ClientSession() as session,
    ):
        env = {
            **base_env(gemini, cwd / "bot.sqlite3"),
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": fs.SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "PORT": "0",
        }
        bot = await BotProcess.start(cwd, env)
        try:
            port = (await bot.wait_for_log("slack connected"))["port"]
            run = SlackRun(
                bot,
                slack,
                gemini,
                foreign,
                f"http://127.0.0.1:{port}/slack/events",
                session,
                big_bytes,
            )
            run.start = len(gemini.requests)
            yield run
        finally:
            bot.ensure_dead()


def _clicked_message_posted(slack: FakeSlack, payload: dict[str, Any]) -> None:
    """A click comes from a bot message Slack shows in its thread: put it there in the fake too,
    so the thread has a reply (Slack shows an ephemeral in a thread only once it has one)."""
    message = payload.get("message") or {}
    channel = (payload.get("channel") or {}).get("id")
    in_thread = bool(channel and message.get("thread_ts")) and message.get("ts") != message.get("thread_ts")
    if in_thread and not any(m["channel"] == channel and m["ts"] == message["ts"] for m in slack.messages):
        # Without bot_id: it predates the case, so it is not one of the case's posts.
        slack.messages.append({**message, "channel": channel})


async def run_slack_case(run: SlackRun, name: str) -> tuple[Outcome, list[str]]:
    case = CASES[name]
    spec, expect = case["input"], case["expect"]
    outcome, extra = Outcome(), []
    since, posts_before = len(run.gemini.requests), len(run.bot_posts())
    ephemerals_before = len(run.slack.ephemerals)
    foreign_before = len(run.foreign.requests)
    hosted_id: str | None = None
    if "gemini_answers_text" in spec:
        run.gemini.enqueue(fg.image(text=spec["gemini_answers_text"]))
    done = _reply_done(expect)

    if "payload" in spec:
        raw = corpus_text(spec["payload"])
        content_type = spec.get("content_type", "application/json")
        if spec.get("unique_ts"):
            body = json.loads(raw)
            body["event"]["ts"] = body["event"]["event_ts"] = run.slack.next_ts()
            raw = json.dumps(body)
        if content_type == "application/x-www-form-urlencoded" and raw.lstrip().startswith("{"):
            _clicked_message_posted(run.slack, json.loads(raw))
            raw = urlencode({"payload": raw})  # interactivity: JSON in a form field, as Slack sends it
        outcome.status, _ = await run.post(
            raw,
            content_type,
            signature=spec.get("signature", "valid"),
            age_s=spec.get("age_s", 0),
            timestamp=spec.get("timestamp"),
        )
        if "ephemeral" in expect:
            outcome.timed_out = not await run.wait(lambda: len(run.slack.ephemerals) > ephemerals_before)
        elif expects_reply(expect):
            outcome.timed_out = not await run.wait(
                lambda: any(done([p]) for p in run.case_posts(posts_before))
            )
    elif "command" in spec:
        fields = run.slack.slash_command(spec["command"], spec["text"], "C0COMMANDS")
        outcome.status, body_text = await run.post(urlencode(fields), "application/x-www-form-urlencoded")
        outcome.ack_text = json.loads(body_text).get("text") if body_text.startswith("{") else body_text
        if not outcome.ack_text and outcome.status == 200:
            # An empty ack first; the answer comes through the command's response URL.
            outcome.ack_text = str((await run.slack.answer_to(fields))["text"])
    else:
        text = corpus_text(spec["mention_file"]) if "mention_file" in spec else spec["mention"]
        files = None
        if "file" in spec:
            file_spec = spec["file"]
            files = [slack_file(run, file_spec)]
            hosted_id = files[0]["id"]
        channel = "C0" + name.upper().replace("-", "")[:12]
        message = await run.mention(channel, text, files=files)
        outcome.status = 200
        outcome.timed_out = not await run.wait(lambda: run.finished(channel, message["ts"], done))

    outcome.survived = await run.probe()
    outcome.gemini = case_requests(run.gemini, since)
    posts = run.case_posts(posts_before)
    outcome.posted_texts = [str(p.get("text", "")) for p in posts]
    outcome.ephemerals = [str(e.get("text", "")) for e in run.slack.ephemerals[ephemerals_before:]]
    outcome.posted_texts += outcome.ephemerals
    outcome.errors = [
        t.removeprefix(":warning: ") for t in outcome.posted_texts if t.startswith(":warning: ")
    ]
    outcome.images = sum(1 for p in posts if p.get("subtype") == "file_share")
    # Errors are posted escaped; compare with the escaped expectation, report the plain one.
    if "error" in expect and outcome.errors == [slack_escape(expect["error"])]:
        outcome.errors = [expect["error"]]
    if "foreign_host_requests" in expect:
        seen = [{"authorization": r.authorization} for r in run.foreign.requests[foreign_before:]]
        if seen != expect["foreign_host_requests"]:
            extra.append(f"the foreign host saw {seen!r}, expected {expect['foreign_host_requests']!r}")
    if "downloads" in expect:
        downloads = [r for r in run.slack.file_requests if hosted_id and hosted_id in r.path]
        if len(downloads) != expect["downloads"]:
            extra.append(f"{len(downloads)} downloads of the file, expected {expect['downloads']}")
    if run.gemini.pending:
        extra.append("a scripted Gemini answer was left unused")
    return outcome, extra


def slack_file(run: SlackRun, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The file object of a message event, hosted by the fake (or pointing elsewhere)."""
    data = run.big[: spec["generated_bytes"]] if "generated_bytes" in spec else corpus_bytes(spec["source"])
    mimetype = spec.get("mimetype", "image/png")
    if spec.get("url") == "foreign":
        return run.slack.host_file(spec["name"], data, mimetype, url=run.foreign.url(f"files/{spec['name']}"))
    if spec.get("redirect") == "foreign":
        return run.slack.host_file(spec["name"], data, mimetype, redirect_to=run.foreign.url("sign-in"))
    file = run.slack.host_file(spec["name"], data, mimetype)
    if "declared_size" in spec:
        file["size"] = spec["declared_size"]
    return file


@MODULE_LOOP
@pytest.mark.parametrize("name", names("slack"))
async def test_slack_case(slack_run: SlackRun, name: str) -> None:
    outcome, extra = await run_slack_case(slack_run, name)
    slack_run.expected_calls += CASES[name]["expect"]["gemini_calls"]
    judge(name, outcome, extra)


@MODULE_LOOP
async def test_slack_process_survives_the_corpus_and_leaks_nothing(slack_run: SlackRun) -> None:
    assert slack_run.bot.running
    assert await slack_run.probe()
    assert await slack_run.bot.stop() == 0
    secrets = (fs.BOT_TOKEN, fs.SIGNING_SECRET, GEMINI_KEY)
    posted = [str(m.get("text", "")) for m in slack_run.bot_posts()]
    posted += [json.dumps(m["blocks"], ensure_ascii=False) for m in slack_run.bot_posts() if m.get("blocks")]
    posted += [str(e.get("text", "")) for e in slack_run.slack.ephemerals]
    assert leaks(slack_run.bot.lines + slack_run.bot.stdout + posted, secrets) == []
    assert log_problems(slack_run.bot) == []
    # Nothing the bot posted can notify anyone: every control sequence arrived escaped.
    assert not [text for text in posted if "<!" in text or "<@" in text]
    # The token never left for another host, with or without a redirect.
    assert all(r.authorization is None for r in slack_run.foreign.requests)
    # No case generated late, after its probe: exactly the cases' calls plus the probes.
    assert len(slack_run.gemini.requests) - slack_run.start == slack_run.expected_calls + slack_run.probes


# ---------------------------------------------------------------------------------------------
# Discord: `python -m bot` with DISCORD_TOKEN, on the fake gateway and REST API


@dataclass
class DiscordRun:
    bot: BotProcess
    fake: FakeDiscord
    gemini: FakeGemini
    big: bytes
    probes: int = 0
    expected_calls: int = 0
    start: int = 0

    async def wait(self, predicate: Callable[[], Any]) -> bool:
        try:
            await self.fake.wait_until(predicate, WAIT_S)
        except TimeoutError:
            return False
        return True

    async def mention(
        self, text: str, *, author: dict[str, Any] | None = None, files: list[FakeFile] | None = None
    ) -> FakeMessage:
        content = f"{self.fake.mention()} {text}".rstrip()
        message = await self.fake.post(self.fake.general_id, content, author=author, files=files or ())
        await self.fake.wait_until(lambda: self.fake.thread_on(message.id), WAIT_S)
        return message

    async def probe(self) -> bool:
        self.probes += 1
        message = await self.mention(f"{PROBE_PREFIX}{self.probes}", author=self.fake.bob)
        return self.bot.running and await self.wait(
            lambda: any(m.files for m in self.fake.bot_messages(message.id))
        )

    def interaction_messages(self, record: FakeInteraction) -> list[FakeMessage]:
        ids = [record.original_id, *record.followup_ids]
        return [self.fake.messages[i] for i in ids if i is not None and i in self.fake.messages]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def discord_run(gemini: FakeGemini, workdir: Path, big_bytes: bytes) -> AsyncIterator[DiscordRun]:
    cwd = workdir / "discord"
    cwd.mkdir()
    async with FakeDiscord() as fake:
        env = {
            **base_env(gemini, cwd / "bot.sqlite3"),
            "DISCORD_TOKEN": fake.token,
            "DISCORD_API_URL": fake.api_url,
        }
        bot = await BotProcess.start(cwd, env)
        try:
            await bot.wait_while_running(fake.wait_ready(), WAIT_S)
            await fake.wait_until(lambda: fake.commands, WAIT_S)
            run = DiscordRun(bot, fake, gemini, big_bytes)
            run.start = len(gemini.requests)
            yield run
        finally:
            bot.ensure_dead()


async def run_discord_case(run: DiscordRun, name: str) -> tuple[Outcome, list[str]]:
    case = CASES[name]
    spec, expect = case["input"], case["expect"]
    outcome, extra = Outcome(), []
    since = len(run.gemini.requests)
    downloads_before = sum(1 for e in run.fake.events if e[0] == "download")
    if "gemini_answers_text" in spec:
        run.gemini.enqueue(fg.image(text=spec["gemini_answers_text"]))
    case_messages: list[FakeMessage] = []

    if "command" in spec:
        record = await run.fake.command(spec["command"], unchecked=True, **spec["options"])

        def answered() -> bool:
            return any(m.ephemeral and m.content and not m.loading for m in run.interaction_messages(record))

        outcome.timed_out = not await run.wait(answered)
        case_messages = run.interaction_messages(record)
        outcome.ephemerals = [m.content for m in case_messages if m.ephemeral and not m.loading]
        if "public_posts" in expect:
            public = [m for m in case_messages if not m.ephemeral]
            if len(public) != expect["public_posts"]:
                extra.append(
                    f"{len(public)} public posts (a prompt echo or thread), expected {expect['public_posts']}"
                )
    else:
        text = corpus_text(spec["mention_file"]) if "mention_file" in spec else spec["mention"]
        files = [FakeFile(Path(f).name, corpus_bytes(f), "image/png") for f in spec.get("files", [])]
        if "file" in spec:
            files.append(
                FakeFile(spec["file"]["name"], run.big[: spec["file"]["generated_bytes"]], "image/png")
            )
        message = await run.mention(text, files=files)

        def replied() -> bool:
            posted = run.fake.bot_messages(message.id)
            if "error" in expect:
                return any(m.content for m in posted)
            return any(m.files for m in posted)

        outcome.timed_out = not await run.wait(replied)
        case_messages = run.fake.bot_messages(message.id)
        contents = [m.content for m in case_messages if m.content]
        outcome.errors = contents if "error" in expect else []
        outcome.images = sum(1 for m in case_messages if m.files)
        outcome.posted_texts = contents

    outcome.survived = await run.probe()
    outcome.gemini = case_requests(run.gemini, since)
    if "error" not in expect:
        # Text the bot posts along with an image is the model's, not an error.
        outcome.errors = []
    if "downloads" in expect:
        downloads = sum(1 for e in run.fake.events if e[0] == "download") - downloads_before
        if downloads != expect["downloads"]:
            extra.append(f"{downloads} attachment downloads, expected {expect['downloads']}")
    if expect.get("pings") == "none":
        extra += [f"{m.content!r} may ping" for m in case_messages if not pings_nobody(m.allowed_mentions)]
    if run.gemini.pending:
        extra.append("a scripted Gemini answer was left unused")
    return outcome, extra


@MODULE_LOOP
@pytest.mark.parametrize("name", names("discord"))
async def test_discord_case(discord_run: DiscordRun, name: str) -> None:
    outcome, extra = await run_discord_case(discord_run, name)
    discord_run.expected_calls += CASES[name]["expect"]["gemini_calls"]
    judge(name, outcome, extra)


@MODULE_LOOP
async def test_discord_process_survives_the_corpus_and_leaks_nothing(discord_run: DiscordRun) -> None:
    assert discord_run.bot.running
    assert await discord_run.probe()
    assert await discord_run.bot.stop() == 0
    fake = discord_run.fake
    bot_posts = [m for m in fake.messages.values() if m.author_id == int(fake.bot["id"])]
    assert [m.content for m in bot_posts if m.content and not pings_nobody(m.allowed_mentions)] == []
    secrets = (fake.token, GEMINI_KEY)
    assert leaks(discord_run.bot.lines + [m.content for m in bot_posts], secrets) == []
    assert log_problems(discord_run.bot) == []
    # Every interaction was answered in time.
    assert all(r.callbacks and not r.late_callbacks for r in fake.interactions.values())
    assert len(discord_run.gemini.requests) - discord_run.start == (
        discord_run.expected_calls + discord_run.probes
    )
