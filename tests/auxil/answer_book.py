"""Who got which answer: the bot's Slack posts matched, message by message, to what people sent."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.slack import words as slack_words
from adapters.slack.sink import WORKING_REACTION
from bot.text import messages
from tests.auxil.fake_gemini import FakeGemini, RecordedRequest, generated_images
from tests.auxil.fake_slack import FakeSlack

WARNING = ":warning: "
# The sentences people may get instead of an image, by the name bot.text.messages gives them.
SENTENCES: dict[str, str] = {
    name: getattr(messages, name)
    for name in (
        "FAILED",
        "INTERRUPTED",
        "HEAD_MOVED",
        "STORAGE_UNREACHABLE",
        "NOT_SAVED",
        "AFTER_ALL",
        "LATE_ARRIVAL",
        "QUEUED",
    )
}
# Shapes of what a message got (see ``shape``): the ones scenarios accept.
IMAGE = "image"
AFTER_ALL_IMAGE = "INTERRUPTED + after-all image"


# ---------------------------------------------------------------------------------------------
# What Slack saw, in one order


@dataclass(frozen=True, slots=True)
class Mark:
    """One step of the timeline: the bot posted (``post``), or the working reaction went on
    (``add``) or was asked to come off (``remove``, even when it was no longer there)."""

    kind: str
    ts: str
    message: Mapping[str, Any] | None = None


class TimelineSlack(FakeSlack):
    """The fake Slack, also keeping one ordered timeline of the bot's posts and of the working
    reaction going on and off people's messages: what tells which message a sentence was for."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.timeline: list[Mark] = []

    def _post(self, channel: str, **fields: Any) -> dict[str, Any]:
        message = super()._post(channel, **fields)
        self.timeline.append(Mark("post", str(message["ts"]), message))
        return message

    async def _m_reactions_add(self, p: dict[str, Any]) -> dict[str, Any]:
        answer = await super()._m_reactions_add(p)
        if p.get("name") == WORKING_REACTION:
            self.timeline.append(Mark("add", str(p.get("timestamp"))))
        return answer

    async def _m_reactions_remove(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("name") == WORKING_REACTION:
            self.timeline.append(Mark("remove", str(p.get("timestamp"))))
        return await super()._m_reactions_remove(p)


# ---------------------------------------------------------------------------------------------
# Messages and their answers


@dataclass
class Sent:
    """A message a person sent. ``prompt`` is what Gemini sees of it (unique per message, so its
    image can be recognised); ``phase`` says when it was sent, for reports; ``expect`` lists the
    shapes of answer it may get (see ``shape``)."""

    label: str
    ts: str
    thread: str
    prompt: str
    via: str
    phase: str = ""
    resend_of: str | None = None
    expect: tuple[str, ...] = (IMAGE,)

    def describe(self) -> str:
        when = f", {self.phase}" if self.phase else ""
        return f"{self.label!r} (ts {self.ts}, via {self.via}{when})"


@dataclass(frozen=True, slots=True)
class Answer:
    """One post that answered a message: its image, or a sentence; ``how`` says how the post was
    matched to the message."""

    kind: str  # "image" or "sentence"
    text: str
    ts: str
    how: str
    after_all: bool = False

    @property
    def token(self) -> str:
        if self.kind == "image":
            return "after-all image" if self.after_all else IMAGE
        return sentence_name(self.text)

    def describe(self) -> str:
        return f"{self.token} at {self.ts} ({self.how})"


def sentence_name(text: str) -> str:
    for name, sentence in SENTENCES.items():
        if text == sentence:
            return name
    return f"sentence {text[:70]!r}"


def effective(answers: Sequence[Answer]) -> list[Answer]:
    """The answers that count: an INTERRUPTED that a later image led by AFTER_ALL takes back is
    not a second answer."""
    out = []
    for index, answer in enumerate(answers):
        taken_back = answer.kind == "sentence" and answer.text == messages.INTERRUPTED
        if taken_back and any(a.kind == "image" and a.after_all for a in answers[index + 1 :]):
            continue
        out.append(answer)
    return out


def shape(answers: Sequence[Answer]) -> str:
    """What a message got, as one string: ``image``, ``STORAGE_UNREACHABLE``,
    ``INTERRUPTED + after-all image``, ``FAILED + image``, or ``nothing``."""
    return " + ".join(a.token for a in answers) or "nothing"


def _plain(text: Any) -> str:
    """A post's text as people read it: without the warning sign and Slack's three escapes."""
    out = str(text or "").removeprefix(WARNING)
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass
class Reading:
    """Every message's answers in posting order of the bot, and posts that fit no message."""

    answers: dict[str, list[Answer]]
    strays: list[str]

    def of(self, sent: Sent) -> list[Answer]:
        return self.answers.get(sent.ts, [])


class AnswerBook:
    """The messages a scenario sent into one Slack channel, and (``read()``) what each got.

    Images are matched by their bytes (the fake Gemini paints each prompt its own colour); an
    INTERRUPTED notice to the message whose working reaction its sender takes off right after.
    Any other sentence goes to a message of its thread, posted before it, that has no other
    answer: the one being worked on when it was posted, else the first in posting order (turns
    of a conversation are answered in posting order); else to a message only told it was cut
    off (a fenced turn coming back); else to the message being worked on, else to the thread's
    latest message (so an extra sentence shows as a message answered twice)."""

    def __init__(self, slack: TimelineSlack, gemini: FakeGemini, channel: str) -> None:
        self.slack = slack
        self.gemini = gemini
        self.channel = channel
        self.sent: list[Sent] = []

    def add(self, sent: Sent) -> Sent:
        self.sent.append(sent)
        return sent

    def thread(self, root: str) -> list[Sent]:
        """The thread's messages in posting order."""
        return sorted((s for s in self.sent if s.thread == root), key=lambda s: float(s.ts))

    def by_label(self, label: str) -> Sent:
        return next(s for s in self.sent if s.label == label)

    def read(self) -> Reading:
        by_ts = {s.ts: s for s in self.sent}
        by_prompt = {s.prompt: s for s in self.sent}
        threads = {s.thread for s in self.sent}
        made = generated_images(self.gemini)
        answers: dict[str, list[Answer]] = {s.ts: [] for s in self.sent}
        strays: list[str] = []
        working: dict[str, set[str]] = defaultdict(set)
        leads: dict[str, Mark] = {}
        later: list[tuple[Mapping[str, Any], str, frozenset[str]]] = []
        timeline = list(self.slack.timeline)
        for index, mark in enumerate(timeline):
            if mark.kind in ("add", "remove"):
                if mark.ts in by_ts:
                    on = working[by_ts[mark.ts].thread]
                    on.add(mark.ts) if mark.kind == "add" else on.discard(mark.ts)
                continue
            message = mark.message or {}
            if message.get("channel") != self.channel:
                continue
            thread, text = str(message.get("thread_ts") or ""), _plain(message.get("text"))
            if thread not in threads:
                strays.append(f"a post outside every thread at {mark.ts}: {text[:80]!r}")
                continue
            if message.get("files"):
                lead = leads.pop(thread, None)
                after_all = messages.AFTER_ALL in text or lead is not None
                for owner, how in self._image_owners(message, made, by_prompt, thread, strays):
                    answers[owner].append(Answer("image", text, mark.ts, how, after_all))
                continue
            if text == slack_words.CONTROLS_FALLBACK:
                continue  # the controls under an image: part of that answer
            if text == messages.AFTER_ALL:
                leads[thread] = mark  # leads the image that follows it
                continue
            if text == messages.INTERRUPTED:
                owner = self._unreacted_after(timeline, index, thread, by_ts)
                if owner is not None:
                    answers[owner].append(Answer("sentence", text, mark.ts, "reaction taken off after it"))
                    continue
            later.append((message, text, frozenset(working[thread])))
        for lead in leads.values():
            assert lead.message is not None
            later.append((lead.message, messages.AFTER_ALL, frozenset()))
        for message, text, on in later:
            self._place_sentence(message, text, on, answers, strays)
        for got in answers.values():
            got.sort(key=lambda a: float(a.ts))
        return Reading(answers, strays)

    def _image_owners(
        self,
        message: Mapping[str, Any],
        made: Mapping[str, str],
        by_prompt: Mapping[str, Sent],
        thread: str,
        strays: list[str],
    ) -> Iterable[tuple[str, str]]:
        for file in message.get("files") or ():
            upload = self.slack.uploads.get(str(file.get("id")))
            prompt = made.get(hashlib.sha256(upload.data).hexdigest()) if upload is not None else None
            owner = by_prompt.get(prompt or "")
            if owner is None or owner.thread != thread:
                strays.append(
                    f"an image at {message.get('ts')} for no message of its thread (prompt {prompt!r})"
                )
                continue
            yield owner.ts, "its image"

    def _unreacted_after(
        self, timeline: Sequence[Mark], index: int, thread: str, by_ts: Mapping[str, Sent]
    ) -> str | None:
        """The message of ``thread`` whose working reaction is asked off next after ``index``."""
        for mark in timeline[index + 1 :]:
            if mark.kind == "remove" and mark.ts in by_ts and by_ts[mark.ts].thread == thread:
                return mark.ts
        return None

    def _place_sentence(
        self,
        message: Mapping[str, Any],
        text: str,
        on: frozenset[str],
        answers: dict[str, list[Answer]],
        strays: list[str],
    ) -> None:
        ts = str(message.get("ts"))
        before = [s for s in self.thread(str(message.get("thread_ts"))) if float(s.ts) < float(ts)]
        unanswered = [s.ts for s in before if not answers[s.ts]]
        working_unanswered = [t for t in unanswered if t in on]
        cut_off = [s.ts for s in before if shape(answers[s.ts]) == "INTERRUPTED"]
        if len(working_unanswered) == 1:
            owner, how = working_unanswered[0], "its turn was working then"
        elif unanswered:
            owner, how = unanswered[0], "first unanswered message of the thread"
        elif cut_off:
            owner, how = cut_off[0], "a message told it was cut off"
        elif on:
            owner, how = min(on, key=float), "its turn was working then"
        elif before:
            owner, how = before[-1].ts, "no message of the thread was waiting for an answer"
        else:
            strays.append(f"{sentence_name(text)} at {ts} before any message of its thread")
            return
        answers[owner].append(Answer("sentence", text, ts, how))


# ---------------------------------------------------------------------------------------------
# What Gemini was asked


def user_texts(rec: RecordedRequest) -> list[str]:
    """The text of each user turn a request carried, oldest first (the last is the new turn)."""
    return [
        " ".join(str(p["text"]) for p in c.get("parts") or () if isinstance(p, dict) and "text" in p)
        for c in rec.contents
        if c.get("role", "user") == "user"
    ]


def generations(gemini: FakeGemini) -> list[RecordedRequest]:
    """Requests Gemini answered with an image (a paid generation), in arrival order."""
    return [r for r in gemini.requests if r.status == 200 and r.response_images]


# ---------------------------------------------------------------------------------------------
# One scenario's verdict, and the table of all of them


@dataclass
class Verdict:
    """The figures of one scenario, and every problem in words (which message got what)."""

    scenario: str
    sent: int = 0
    once: int = 0
    twice: int = 0
    lost: int = 0
    wrong: int = 0
    stuck: int = 0
    generated_twice: int = 0
    out_of_order: int = 0
    leaked_rows: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def judge(scenario: str, book: AnswerBook, reading: Reading) -> Verdict:
    """Every message got exactly one answer of a shape it may get; none was generated twice; each
    thread's generations reached Gemini in posting order, each carrying as history exactly the
    images its thread had shown before it; the last message of each conversation of several
    messages was answered (else the conversation is stuck)."""
    verdict = Verdict(scenario, sent=len(book.sent))
    for sent in book.sent:
        got = reading.of(sent)
        counted = effective(got)
        what = shape(got)
        if not counted:
            verdict.lost += 1
            verdict.problems.append(f"{sent.describe()} got nothing")
        elif len(counted) > 1:
            verdict.twice += 1
            detail = "; ".join(a.describe() for a in got)
            verdict.problems.append(f"{sent.describe()} was answered {len(counted)} times: {detail}")
        else:
            verdict.once += 1
            if what not in sent.expect and shape(counted) not in sent.expect:
                verdict.wrong += 1
                detail = "; ".join(a.describe() for a in got)
                verdict.problems.append(
                    f"{sent.describe()} got {what} ({detail}); expected {' or '.join(sent.expect)}"
                )
        if what.startswith("INTERRUPTED + image"):
            verdict.problems.append(
                f"{sent.describe()} was told INTERRUPTED, then got its image without AFTER_ALL"
            )
        if messages.HEAD_MOVED in (a.text for a in got):
            resent = [s for s in book.sent if s.resend_of == sent.ts]
            if any(IMAGE in shape(reading.of(s)) for s in resent):
                verdict.problems.append(
                    f"{sent.describe()} was told HEAD_MOVED after it was sent again and answered"
                )
    verdict.problems += [f"stray post: {s}" for s in reading.strays]
    _judge_generations(verdict, book, reading)
    for root in {s.thread for s in book.sent}:
        conversation = book.thread(root)
        last = conversation[-1]
        # A lone message that got nothing is lost; a conversation is stuck when it stopped moving.
        if len(conversation) > 1 and not effective(reading.of(last)):
            verdict.stuck += 1
            verdict.problems.append(
                f"the conversation of {last.describe()} is stuck: its last message got nothing"
            )
    return verdict


def _shown_images(book: AnswerBook, reading: Reading, before: Sent) -> list[str]:
    """Prompts of the messages of ``before``'s thread, posted earlier, whose image people saw
    (and were not told it was not saved): what its turn should carry as history."""
    out = []
    for sent in book.thread(before.thread):
        if float(sent.ts) >= float(before.ts):
            break
        got = reading.of(sent)
        shown = any(a.kind == "image" for a in got)
        if shown and not any(messages.NOT_SAVED in a.text for a in got):
            out.append(sent.prompt)
    return out


def _judge_generations(verdict: Verdict, book: AnswerBook, reading: Reading) -> None:
    by_prompt = {s.prompt: s for s in book.sent}
    made = generations(book.gemini)
    counts = Counter(r.prompt for r in made)
    for prompt, count in counts.items():
        if count > 1 and prompt in by_prompt:
            verdict.generated_twice += 1
            verdict.problems.append(f"{by_prompt[prompt].describe()} was generated {count} times")
    disordered: set[str] = set()
    for rec in made:
        sent = by_prompt.get(rec.prompt)
        if sent is None:
            verdict.problems.append(f"Gemini generated for a prompt nobody sent: {rec.prompt!r}")
            continue
        seen = user_texts(rec)[:-1]
        expected = _shown_images(book, reading, sent)
        if seen != expected:
            disordered.add(sent.thread)
            verdict.problems.append(
                f"{sent.describe()} reached Gemini with history {seen}; its thread had shown {expected}"
            )
    for root in {s.thread for s in book.sent}:
        order = [
            by_prompt[r.prompt] for r in made if r.prompt in by_prompt and by_prompt[r.prompt].thread == root
        ]
        first_seen = list(dict.fromkeys(s.ts for s in order))
        if first_seen != sorted(first_seen, key=float):
            disordered.add(root)
            labels = [by_prompt_label(book, ts) for ts in first_seen]
            verdict.problems.append(f"thread {root}: Gemini was asked out of posting order: {labels}")
    verdict.out_of_order = len(disordered)


def by_prompt_label(book: AnswerBook, ts: str) -> str:
    return next((s.label for s in book.sent if s.ts == ts), ts)


COLUMNS = (
    ("scenario", "scenario"),
    ("sent", "sent"),
    ("once", "once"),
    ("twice", "twice"),
    ("lost", "lost"),
    ("wrong", "wrong"),
    ("stuck", "stuck"),
    ("generated_twice", "gen x2"),
    ("out_of_order", "order"),
    ("leaked_rows", "leaked"),
    ("seconds", "s"),
)
LEGEND = (
    "sent: messages people sent; once / twice: answered exactly once / more than once; lost: no answer;",
    "wrong: one answer, not one the scenario allows; stuck: threads of several messages, last unanswered;",
    "gen x2: messages generated twice; order: threads whose turns reached Gemini out of posting order or",
    "with another history than the images shown; leaked: turn_queue and limit_reservations rows and",
    "unfinished claims left once clean-up had time; s: wall time. All but sent, once and s must be 0.",
)


def table(verdicts: Sequence[Verdict], title: str) -> list[str]:
    """The verdicts as a fixed-width table, one row per scenario, and what the columns mean."""
    rows = [[head for _, head in COLUMNS]]
    for v in verdicts:
        cells = []
        for attr, _ in COLUMNS:
            value = getattr(v, attr)
            cells.append(f"{value:.0f}" if isinstance(value, float) else str(value))
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    lines = [title, rule]
    for number, row in enumerate(rows):
        first = row[0].ljust(widths[0])
        lines.append("  ".join([first, *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]))
        if number == 0:
            lines.append(rule)
    lines += LEGEND
    failed = [v.scenario for v in verdicts if not v.passed]
    if failed:
        lines.append("scenarios with problems: " + ", ".join(failed))
    return lines
