"""The editor's HTML: the page people paint on, the one-sentence pages, and the headers every
editor response carries. Words come from ``bot.text.messages``; script and styles are files in
``static/`` served by the bot itself (no inline script, no other host)."""

from __future__ import annotations

from html import escape

from aiohttp import web

from bot.health import security_headers
from bot.text import editor_words

# Everything from the bot's own origin; nothing inline, nothing from elsewhere, never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The link's token is in the address: the headers never hand it to anyone in a Referer.
SECURITY_HEADERS = security_headers(CONTENT_SECURITY_POLICY)
HTML = "text/html"


def plain_page(sentence: str, status: int) -> web.Response:
    """A page with one sentence (refusals, a missing image)."""
    title = escape(editor_words.EDIT_LABELS["title"])
    body = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body><p>{escape(sentence)}</p></body></html>\n"
    )
    return web.Response(text=body, status=status, content_type=HTML, charset="utf-8")


def editor_page(token: str, max_instruction_chars: int) -> web.Response:
    """The editor for one link. Paths are relative to ``/edit/``, so a ``PUBLIC_URL`` with a
    path (behind a proxy) works as well."""
    label = {name: escape(text) for name, text in editor_words.EDIT_LABELS.items()}
    says = {
        "sending": editor_words.EDIT_SENDING,
        "failed": editor_words.EDIT_SEND_FAILED,
        "nothing": editor_words.EDIT_NOTHING_PAINTED,
        "no-text": editor_words.EDIT_NO_INSTRUCTION,
    }
    data = " ".join(f'data-{name}="{escape(text)}"' for name, text in says.items())
    t = escape(token)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{label["title"]}</title><link rel="stylesheet" href="static/editor.css"></head>
<body><main id="editor" data-token="{t}" {data}>
<h1>{label["title"]}</h1><p>{label["intro"]}</p>
<div class="stage"><img id="picture" src="{t}/image" alt="{label["image"]}">
<canvas id="paint" width="0" height="0" aria-label="{label["image"]}"></canvas></div>
<div class="tools" role="toolbar">
<button type="button" id="brush" aria-pressed="true">{label["brush"]}</button>
<button type="button" id="eraser" aria-pressed="false">{label["eraser"]}</button>
<label class="size">{label["size"]} <input type="range" id="size" min="4" max="160" value="40"></label>
<button type="button" id="undo">{label["undo"]}</button>
<button type="button" id="clear">{label["clear"]}</button></div>
<form id="form"><label for="instruction">{label["instruction"]}</label>
<textarea id="instruction" name="instruction" rows="3" maxlength="{max_instruction_chars}"
 placeholder="{label["placeholder"]}"></textarea>
<button type="submit" id="submit">{label["submit"]}</button></form>
<p id="status" role="status" aria-live="polite"></p>
<figure id="result" hidden><img id="result-image" alt="{label["result"]}"></figure>
</main><script src="static/editor.js"></script></body></html>
"""
    return web.Response(text=body, content_type=HTML, charset="utf-8")
