"""The dashboard's HTML: the page of figures, the sign-in form, the Forget confirmation and the
one-sentence pages. Words come from ``bot.text.admin_words``; the stylesheet is served by the bot
(``static/admin.css``); no script at all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import urlencode

from bot.admin import charts
from bot.admin.figures import Figures, Limited
from bot.text import admin_words as words
from bot.vocabulary import ConversationKey
from storage.reports import ProcessSeen

ADMIN_PATH = "/admin"


def money(value: float) -> str:
    return f"${value:,.3f}"


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def count(value: float) -> str:
    return f"{value:,.0f}"


def document(body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(words.TITLE)}</title><link rel="stylesheet" href="{ADMIN_PATH}/admin.css">'
        f"</head><body>{body}</body></html>\n"
    )


def sentence_page(sentence: str, back: bool = True) -> str:
    link = f'<p><a href="{ADMIN_PATH}">{escape(words.TITLE)}</a></p>' if back else ""
    return document(f'<main class="narrow"><p id="message">{escape(sentence)}</p>{link}</main>')


def sign_in_page(message: str = "") -> str:
    said = f'<p id="message" class="notice">{escape(message)}</p>' if message else ""
    return document(
        f'<main class="narrow"><h1>{escape(words.SIGN_IN["heading"])}</h1>{said}'
        f"<p>{escape(words.SIGN_IN['intro'])}</p>"
        f'<form method="post" action="{ADMIN_PATH}/sign-in">'
        f'<label for="token">{escape(words.SIGN_IN["token"])}</label> '
        '<input id="token" name="token" type="password" autocomplete="current-password" required autofocus> '
        f'<button id="sign-in" type="submit">{escape(words.SIGN_IN["submit"])}</button></form></main>'
    )


def _table(table_id: str, columns: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """A table of already escaped cells, or one sentence when there are no rows."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p id="{table_id}" class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(words.COLUMNS[c])}</th>" for c in columns)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _section(name: str, content: str) -> str:
    return f'<section id="section-{name}"><h2>{escape(words.HEADINGS[name])}</h2>{content}</section>'


def _usage(f: Figures) -> str:
    labels = [f.day_label(n) for n in range(len(f.bounds) - 1)]
    parts = []
    for by in ("model", "platform"):
        names = sorted({getattr(u, by) for u in f.usage})
        images: dict[str, list[float]] = {name: [0.0] * len(labels) for name in names}
        cost: dict[str, list[float]] = {name: [0.0] * len(labels) for name in names}
        for u in f.usage:
            images[getattr(u, by)][u.day] += u.images
            cost[getattr(u, by)][u.day] += u.cost_usd
        for what, series, shown in (("images", images, count), ("cost", cost, money)):
            name = f"{what}_by_{by}"
            chart = charts.stacked_bars(
                f"chart-{name.replace('_', '-')}", words.HEADINGS[name], labels, series, shown
            )
            parts.append(f"<figure><figcaption>{escape(words.HEADINGS[name])}</figcaption>{chart}</figure>")
        parts.append(charts.legend(names))
    totals: dict[int, list[float]] = defaultdict(lambda: [0, 0.0])
    for u in f.usage:
        totals[u.day][0] += u.images
        totals[u.day][1] += u.cost_usd
    rows = [(escape(labels[d]), count(t[0]), money(t[1])) for d, t in sorted(totals.items(), reverse=True)]
    table = _table("days", ("day", "images", "cost"), rows, words.NOTHING_YET)
    return _section(
        "usage", f'<div class="charts">{"".join(parts)}</div><h3>{escape(words.HEADINGS["days"])}</h3>{table}'
    )


def _of_limit(used: int, limit: int) -> str:
    if not limit:
        return f"{used} ({escape(words.NO_LIMIT)})"
    return f'{used} / {limit} <meter min="0" max="{limit}" value="{min(used, limit)}"></meter>'


def _people(f: Figures) -> str:
    rows = [
        (
            escape(p.who.platform),
            escape(p.who.author_id),
            count(p.who.images),
            money(p.who.cost_usd),
            _of_limit(p.today, p.day_limit),
            _of_limit(p.last_hour, p.hour_limit),
        )
        for p in f.people
    ]
    columns = ("platform", "person", "images", "cost", "today", "hour")
    return _section("people", _table("people", columns, rows, words.NOTHING_YET))


def _channel_row(c: Limited) -> tuple[str, ...]:
    who = c.who
    cells = (who.platform, who.workspace, who.channel)
    return (*map(escape, cells), count(who.images), money(who.cost_usd), _of_limit(c.today, c.day_limit))


def _channels(f: Figures) -> str:
    columns = ("platform", "workspace", "channel", "images", "cost", "today")
    return _section("channels", _table("channels", columns, map(_channel_row, f.channels), words.NOTHING_YET))


def _spend(f: Figures) -> str:
    spent = money(f.spent_today)
    if f.spend_cap is None:
        return _section("spend", f'<p id="spend">{escape(words.spend_uncapped(spent))}</p>')
    share = f"{f.spent_today / f.spend_cap:.0%}"
    said = words.spend_used(spent, money(f.spend_cap), share)
    meter = f'<meter min="0" max="{f.spend_cap!r}" value="{min(f.spent_today, f.spend_cap)!r}"></meter>'
    return _section("spend", f'<p id="spend">{escape(said)}</p>{meter}')


def _latency(f: Figures) -> str:
    labels = [f.day_label(n) for n in range(len(f.bounds) - 1)]
    p50: list[float | None] = [None] * len(labels)
    p95: list[float | None] = [None] * len(labels)
    for d in f.latency:
        p50[d.day], p95[d.day] = d.p50_s, d.p95_s
    series = {words.COLUMNS["p50"]: p50, words.COLUMNS["p95"]: p95}
    chart = charts.lines("chart-latency", words.HEADINGS["latency"], labels, series, seconds)
    rows = [
        (escape(labels[d.day]), count(d.turns), seconds(d.p50_s), seconds(d.p95_s))
        for d in reversed(f.latency)
    ]
    table = _table("latency", ("day", "turns", "p50", "p95"), rows, words.NOTHING_YET)
    figure = f'<div class="charts"><figure>{chart}</figure><div>{table}</div></div>'
    return _section("latency", f"{figure}{charts.legend(list(series))}")


def _outcomes(f: Figures) -> str:
    rows = [(escape(o.outcome), escape(o.reason), count(o.turns)) for o in f.outcomes]
    return _section("outcomes", _table("outcomes", ("outcome", "reason", "count"), rows, words.NO_FAILURES))


def _platforms(p: ProcessSeen, gone: bool) -> str:
    if not p.platforms:
        return words.NOT_REPORTED
    states = ", ".join(words.platform_state(name, state) for name, state in p.platforms)
    return words.last_reported(states) if gone else states


def _process_row(f: Figures, p: ProcessSeen) -> tuple[str, ...]:
    gone = f.now - p.seen_at > f.lease_s
    name = escape(p.id[:12]) + (f" ({escape(words.THIS_PROCESS)})" if p.this else "")
    status = f'<span class="{"gone" if gone else "live"}">{escape(words.GONE if gone else words.LIVE)}</span>'
    return (
        name,
        status,
        escape(f.when(p.started_at)),
        escape(f"{f.when(p.seen_at)} ({words.seconds_ago(f.now - p.seen_at)})"),
        escape(_platforms(p, gone)),
    )


def _processes(f: Figures) -> str:
    rows = [_process_row(f, p) for p in f.processes]
    columns = ("process", "status", "started", "renewed", "platforms")
    leases = _table("processes", columns, rows, words.ONE_PROCESS)
    states = [(escape(name), escape(words.UP if up else words.DOWN)) for name, up in f.parts.items()]
    parts = _table("parts", ("part", "state"), states, words.NOTHING_YET)
    return _section("processes", leases + parts)


def thread_link(key: ConversationKey) -> str | None:
    """Where the thread is on its platform, when it has one."""
    if key.platform == "discord":
        return f"https://discord.com/channels/{key.workspace or '@me'}/{key.thread}"
    if key.platform == "slack":
        return f"https://app.slack.com/client/{key.workspace}/{key.channel}/thread/{key.channel}-{key.thread}"
    return None


def key_query(key: ConversationKey) -> str:
    return urlencode(
        {"platform": key.platform, "workspace": key.workspace, "channel": key.channel, "thread": key.thread}
    )


def _conversations(f: Figures) -> str:
    rows = []
    for c in f.conversations:
        image = f'<img src="{ADMIN_PATH}/image/{escape(c.image)}" alt="" width="96">' if c.image else ""
        link = thread_link(c.key)
        actions = (
            [f'<a href="{escape(link)}" rel="noreferrer">{escape(words.OPEN_THREAD)}</a>'] if link else []
        )
        actions.append(
            f'<a class="forget" href="{ADMIN_PATH}/forget?{escape(key_query(c.key))}">'
            f"{escape(words.FORGET)}</a>"
        )
        rows.append(
            (image, escape(str(c.key)), count(c.turn_count), escape(f.when(c.updated_at)), " ".join(actions))
        )
    columns = ("image", "conversation", "turn_count", "updated", "actions")
    return _section("conversations", _table("conversations", columns, rows, words.NO_CONVERSATIONS))


def dashboard_page(f: Figures, form_token: str, notice: str = "") -> str:
    said = f'<p id="message" class="notice">{escape(notice)}</p>' if notice else ""
    header = (
        f"<header><h1>{escape(words.TITLE)}</h1>"
        f'<form method="post" action="{ADMIN_PATH}/sign-out">'
        f'<input type="hidden" name="form" value="{escape(form_token)}">'
        f'<button id="sign-out" type="submit">{escape(words.SIGN_OUT)}</button></form></header>'
        f'<p class="zone">{escape(words.TIMES_IN.format(zone=f.zone.key))}</p>{said}'
    )
    sections = [
        _usage(f),
        _spend(f),
        _people(f),
        _channels(f),
        _latency(f),
        _outcomes(f),
        _processes(f),
        _conversations(f),
    ]
    return document(f"<main>{header}{''.join(sections)}</main>")


def forget_page(key: ConversationKey, form_token: str) -> str:
    fields = "".join(
        f'<input type="hidden" name="{name}" value="{escape(value)}">'
        for name, value in (
            ("platform", key.platform),
            ("workspace", key.workspace),
            ("channel", key.channel),
            ("thread", key.thread),
            ("form", form_token),
        )
    )
    return document(
        f'<main class="narrow"><p id="message">{escape(words.FORGET_QUESTION)}</p>'
        f"<p><code>{escape(str(key))}</code></p>"
        f'<form method="post" action="{ADMIN_PATH}/forget">{fields}'
        f'<button id="confirm-forget" class="danger" type="submit">{escape(words.FORGET)}</button> '
        f'<a id="cancel" href="{ADMIN_PATH}">{escape(words.CANCEL)}</a></form></main>'
    )
