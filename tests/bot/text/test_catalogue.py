"""Every sentence people read lives in a catalogue: bot/text/messages.py for the core's words and
one words module per platform (adapters/<platform>/words.py) for that platform's own.

The rule the detector applies to every other module under bot/ and adapters/ (parsed, never
imported): a string literal or f-string is a user-facing sentence when, with each placeholder
read as a word, it starts like a sentence (a capital letter, an emoji or other symbol, or a
placeholder followed by a word), holds at least three words, and ends like one (. ! ? …), or holds
a whole sentence inside (". " followed by a capital letter) or spans several lines of words (a
help text). Not counted, because people never read them:

- docstrings and other bare string statements;
- the arguments of logging calls (``log.info(...)``, ``logging.warning(...)``...);
- the message of an exception raised for developers and logs (``raise RuntimeError("...")``);
  an exception that carries a ``user_message`` (``USER_FACING_ERRORS``) is counted like any string;
- what only the operator reads, before or instead of any chat: bot/config/ (the start-up
  problem lines, listed in bot/config/problems.py), the command line (bot/cli.py), the database
  copier (bot/migrate_db.py) and the start-up model check (bot/gemini/model_check.py). The
  PlatformError lines adapters raise at start-up fall under the exception rule above.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CATALOGUES = {
    "bot/text/messages.py",
    "bot/text/editor_words.py",
    "bot/text/model_words.py",
    "bot/text/pin_words.py",
    "bot/text/admin_words.py",
    "adapters/console/words.py",
    "adapters/discord/words.py",
    "adapters/slack/words.py",
}
# Start-up problem lines for the operator (see the module docstring).
OPERATOR_PACKAGES = ("bot/config/", "bot/cli.py", "bot/migrate_db.py", "bot/gemini/model_check.py")
# Exceptions whose message is shown to people (each keeps it as ``user_message``).
USER_FACING_ERRORS = {"SettingError", "ImageRejected", "AttachmentUnavailable", "QueueFull"}
_LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
_PLACEHOLDER = "\x00"
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\x00")
_STARTS = re.compile(r"^(?:!+ +)?(?:[A-Z]|[^\x00-\x7f]|\x00 +[a-z]|/[a-z]+ [a-z])")
_ENDS = re.compile(r"[.!?…][\"')\]*`]*$")
_INNER_SENTENCE = re.compile(r"[a-z][.!?;] +[A-Z][a-z]")
_TAG = re.compile(r"<[^>]*>")


def reads_like_a_sentence(text: str) -> bool:
    """Whether ``text`` (placeholders as ``_PLACEHOLDER``) is something a person reads."""
    shown = text.strip()
    if shown.startswith("<"):
        shown = "\n".join(part.strip() for part in _TAG.split(shown) if part.strip())
    if len(_WORD.findall(shown)) < 3 or " " not in shown:
        return False
    lines = [line for line in shown.splitlines() if len(_WORD.findall(line)) >= 3]
    if len(lines) >= 3:
        return True  # a help text or other block of prose
    if not _STARTS.match(shown):
        return False
    return bool(_ENDS.search(shown) or _INNER_SENTENCE.search(shown))


def _text_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else _PLACEHOLDER
            for v in node.values
        )
    return None


def _exempt_nodes(tree: ast.AST) -> set[int]:
    """Ids of the string nodes the rule leaves out (docstrings, log calls, developer errors)."""
    exempt: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and _text_of(node.value) is not None:
            exempt.add(id(node.value))
        elif isinstance(node, ast.Call) and _is_log_call(node):
            exempt.update(id(n) for arg in [*node.args, *node.keywords] for n in ast.walk(arg))
        elif isinstance(node, ast.Raise) and node.exc is not None and not _user_facing(node.exc):
            exempt.update(id(n) for n in ast.walk(node.exc))
    return exempt


def _is_log_call(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr not in _LOG_METHODS:
        return False
    owner = func.value
    name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
    return name in ("log", "logger", "logging", "_log", "_logger")


def _user_facing(exc: ast.expr) -> bool:
    call = exc.func if isinstance(exc, ast.Call) else exc
    name = call.id if isinstance(call, ast.Name) else call.attr if isinstance(call, ast.Attribute) else ""
    return name in USER_FACING_ERRORS


def sentences_in(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of each user-facing sentence built in ``source``."""
    tree = ast.parse(source)
    exempt = _exempt_nodes(tree)
    inside_fstrings = {
        id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in exempt or id(node) in inside_fstrings:
            continue
        text = _text_of(node)
        if text is not None and reads_like_a_sentence(text):
            found.append((node.lineno, text.replace(_PLACEHOLDER, "{}")))
    yield from sorted(found)


def modules_outside_catalogues() -> list[Path]:
    found = []
    for package in ("bot", "adapters"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name not in CATALOGUES and not name.startswith(OPERATOR_PACKAGES):
                found.append(path)
    return found


def stray_sentences() -> list[str]:
    return [
        f"{path.relative_to(ROOT).as_posix()}:{line}: {text!r}"
        for path in modules_outside_catalogues()
        for line, text in sentences_in(path.read_text(encoding="utf-8"))
    ]


def test_no_module_outside_the_catalogues_builds_a_sentence() -> None:
    stray = stray_sentences()
    assert not stray, f"{len(stray)} sentences outside the catalogues:\n" + "\n".join(stray)


def test_the_catalogues_exist() -> None:
    assert all((ROOT / name).is_file() for name in CATALOGUES)


PLANTED = '''
"""A module docstring. It has sentences."""
import logging
log = logging.getLogger(__name__)

def f(name: str, model: str) -> str:
    """A docstring. Still not counted."""
    log.warning("Something failed here, for the logs.")
    if not name:
        raise RuntimeError("This is for developers only.")
    if name == "x":
        raise SettingError(f"{name} is not a ratio {model} supports; use 1:1.")
    label = "Aspect ratio"
    key = "nb:regen:"
    return f"Forgot this conversation: {name} turns are deleted."
'''


def test_the_detector_finds_planted_sentences_and_skips_the_exempt_ones() -> None:
    found = [text for _line, text in sentences_in(PLANTED)]
    assert found == [
        "{} is not a ratio {} supports; use 1:1.",
        "Forgot this conversation: {} turns are deleted.",
    ]


def test_what_reads_like_a_sentence() -> None:
    assert reads_like_a_sentence("Queued: I'll start on this as soon as I can.")
    assert reads_like_a_sentence("🎲 Variations made four takes!")
    assert reads_like_a_sentence("Slash commands can't run here. Use the button instead")
    assert reads_like_a_sentence("! Unknown command {}; type /help for the list.".replace("{}", "\x00"))
    assert reads_like_a_sentence("line one of help\nline two of help\nline three of help")
    assert not reads_like_a_sentence("Aspect ratio")
    assert not reads_like_a_sentence("nb:regen:{turn_id}")
    assert not reads_like_a_sentence("image/png")
    assert not reads_like_a_sentence("a lowercase fragment that ends.")
    assert reads_like_a_sentence('<main class="x"><p>Your edit is on its way. Look in the thread.</p></main>')
    template = '<html lang="en"><head><meta charset="utf-8">\n<title>\x00</title></head>\n<body><h1>\x00</h1>'
    assert not reads_like_a_sentence(
        template + '\n<button type="button" id="undo">\x00</button></body></html>'
    )
