"""The console as a user drives it: `python -m bot` in a pty and with piped input, against the fake."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import pexpect
import pytest
from PIL import Image

from adapters.console.adapter import parse_attachments
from bot.entry.service import INTERRUPTED_MESSAGE
from tests.auxil import fake_gemini as fg
from tests.auxil import image_factory as img
from tests.auxil.engines import ENGINES, interactions
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import ROOT, bot_env, run_bot

TIMEOUT = 30


def console_env(fake: FakeGemini, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"GEMINI_API_KEY": "console-key", "GOOGLE_GEMINI_BASE_URL": fake.base_url, **(extra or {})}


async def run_piped(
    fake: FakeGemini, cwd: Path, lines: list[str], extra: dict[str, str] | None = None
) -> str:
    """Run `python -m bot console` with ``lines`` on a pipe; returns stdout (exit code must be 0)."""
    result = await asyncio.to_thread(
        run_bot, ["console"], cwd, console_env(fake, extra), "\n".join(lines) + "\n"
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def saved_images(stdout: str, cwd: Path) -> list[Path]:
    return [
        cwd / line.removeprefix("[image] ") for line in stdout.splitlines() if line.startswith("[image] ")
    ]


class Pty:
    """`python -m bot` in a pseudo-terminal; blocking pexpect calls run in a thread."""

    def __init__(self, cwd: Path, env: dict[str, str], args: list[str] | None = None) -> None:
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "bot", *(args or [])],
            cwd=str(cwd),
            env=bot_env(env),
            encoding="utf-8",
            timeout=TIMEOUT,
            dimensions=(40, 200),
        )

    async def expect(self, pattern: str) -> str:
        await asyncio.to_thread(self.child.expect, pattern)
        return str(self.child.before) + str(self.child.after)

    async def say(self, line: str) -> None:
        await self.expect("> ")
        self.child.sendline(line)

    async def wait_exit(self) -> int:
        await asyncio.to_thread(self.child.expect, pexpect.EOF)
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else -(self.child.signalstatus or 0)


async def test_interactive_terminal_with_no_platform_opens_the_console(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.latency_s = 0.6  # long enough for the spinner to draw
    pty = Pty(tmp_path, console_env(fake_gemini))
    await pty.expect("type /help for commands")
    await pty.expect("New conversation")
    await pty.say("a red bicycle at dawn --ar 16:9")
    spinner = await pty.expect(r"generating… \ds")
    assert "generating" in spinner
    out = await pty.expect(r"\[image\] (\S+\.png)")
    path = tmp_path / pty.child.match.group(1)
    assert "Here is your image." in out
    with Image.open(path) as im:
        assert im.width > im.height
    await pty.say("/quit")
    assert await pty.wait_exit() == 0
    assert fake_gemini.requests[0].aspect_ratio == "16:9"
    assert fake_gemini.requests[0].prompt == "a red bicycle at dawn"


@pytest.mark.parametrize("engine_api", ENGINES)
async def test_refine_attach_quit_and_continue_after_restart(
    fake_gemini: FakeGemini, tmp_path: Path, engine_api: str
) -> None:
    photo = img.jpeg(800, 600)
    (tmp_path / "my photo.jpg").write_bytes(photo)
    engine = {"GEMINI_API": engine_api}
    first = await run_piped(
        fake_gemini,
        tmp_path,
        ["a lighthouse on a cliff", "make the sky warmer", 'put it next to this @"my photo.jpg"', "/quit"],
        engine,
    )
    assert "New conversation." in first
    images = saved_images(first, tmp_path)
    assert len(images) == 3 and all(p.is_file() for p in images)
    assert fake_gemini.requests[2].images[-1] == [fg.InlineImage("image/jpeg", photo)]

    second = await run_piped(fake_gemini, tmp_path, ["now as a watercolor"], engine)
    assert "Continuing your conversation (3 turns); /new starts a fresh one." in second
    before, after = fake_gemini.requests[2], fake_gemini.requests[3]
    if interactions(engine_api):
        # The new process continues Google's copy of the conversation: only the prompt goes up,
        # and the model sees every turn with every signature.
        assert after.previous_interaction_id == before.interaction["id"] and after.sent_images == 0
        assert len(after.contents) == 7
        assert after.signatures() == [s for r in fake_gemini.requests[:3] for s in r.response_signatures]
    else:
        assert len(after.contents) == 5  # budget of 3 images keeps the last two turns whole
        assert after.signatures() == (
            fake_gemini.requests[1].response_signatures + before.response_signatures
        )
    assert after.prompt == "now as a watercolor"
    assert len(saved_images(second, tmp_path)) == 1


async def test_settings_commands_and_their_messages(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    out = await run_piped(
        fake_gemini,
        tmp_path,
        [
            "/aspect",
            "/aspect 9:16",
            "/aspect 5:7",
            "/size 2K",
            "/mode image",
            "a tall tower",
            "/bogus",
            "/help",
        ],
    )
    lines = out.splitlines()
    assert (
        "Aspect ratio for this conversation: the model default. Change it with /aspect "
        "(choices: 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9)." in lines
    )
    assert "Aspect ratio is now 9:16 for this conversation." in lines
    assert (
        "! 5:7 is not an aspect ratio gemini-2.5-flash-image supports; use one of "
        "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9."
    ) in lines
    assert "! gemini-2.5-flash-image makes images at a single size, so the size can't be changed." in lines
    assert "Replies are now images only for this conversation." in lines
    assert "! Unknown command /bogus; type /help for the list." in lines
    assert any(line.startswith("  /forget") for line in lines)
    request = fake_gemini.requests[0]
    assert (request.aspect_ratio, request.response_modalities) == ("9:16", ["IMAGE"])


async def test_size_command_on_a_model_with_sizes(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    out = await run_piped(
        fake_gemini, tmp_path, ["/size 4k", "a map"], {"GEMINI_MODEL": "gemini-3-pro-image-preview"}
    )
    assert "Image size is now 4K for this conversation." in out
    assert fake_gemini.requests[0].image_size == "4K"


@pytest.mark.parametrize("engine_api", ENGINES)
async def test_bad_inputs_get_their_sentence(
    fake_gemini: FakeGemini, tmp_path: Path, engine_api: str
) -> None:
    (tmp_path / "notes.png").write_text("not really a picture")
    (tmp_path / "empty.jpg").write_bytes(b"")
    fake_gemini.enqueue(fg.finish("IMAGE_SAFETY"))
    out = await run_piped(
        fake_gemini,
        tmp_path,
        [
            "edit @notes.png",
            "edit @empty.jpg",
            "edit @nowhere/photo.jpg",
            "--ar 3:3 a cat",
            "something unsafe",
        ],
        {"GEMINI_API": engine_api},
    )
    lines = out.splitlines()
    assert "! notes.png is not an image; attach a PNG, JPEG, WebP or HEIC photo." in lines
    assert "! empty.jpg is empty (0 bytes); attach the image again." in lines
    assert "! I can't find nowhere/photo.jpg; check the path after @ and try again." in lines
    assert any(line.startswith("! 3:3 is not an aspect ratio") for line in lines)
    assert "! Gemini withheld the image for safety reasons; try rephrasing the prompt." in lines
    assert len(fake_gemini.requests) == 1


async def test_forget_with_nothing_saved_says_so(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    out = await run_piped(fake_gemini, tmp_path, ["/forget"])
    assert (
        "There was nothing to forget here; this conversation has no saved images. "
        "Your next message starts a new image."
    ) in out.splitlines()
    assert fake_gemini.requests == []


@pytest.mark.parametrize("engine_api", ENGINES)
async def test_new_and_forget(fake_gemini: FakeGemini, tmp_path: Path, engine_api: str) -> None:
    engine = {"GEMINI_API": engine_api}
    out = await run_piped(
        fake_gemini, tmp_path, ["a fox", "/new", "a hen", "a hen on a roof", "/forget", "a duck"], engine
    )
    assert (
        "Forgot this conversation: 2 turns and their images are deleted. "
        "Your next message starts a new image." in out
    )
    assert [len(r.contents) for r in fake_gemini.requests] == [1, 1, 3, 1]
    if interactions(engine_api):
        # The hen's two interactions are deleted on Google's side too; the fox's are kept.
        hens = [r.interaction["id"] for r in fake_gemini.requests[1:3]]
        assert sorted(fake_gemini.interactions.deleted) == sorted(hens)
    again = await run_piped(fake_gemini, tmp_path, ["a duck in the rain"], engine)
    assert "Continuing your conversation (1 turn)" in again
    assert len(fake_gemini.requests[-1].contents) == 3
    assert fake_gemini.requests[-1].contents[0]["parts"][-1]["text"] == "a duck"


async def test_ctrl_c_during_generation_exits_and_leaves_history_unchanged(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    await run_piped(fake_gemini, tmp_path, ["a boat"])
    fake_gemini.enqueue(fg.delay(20.0))
    pty = Pty(tmp_path, console_env(fake_gemini), ["console"])
    await pty.say("a bigger boat")
    await pty.expect("generating")
    await fake_gemini.wait_for_requests(2)
    pty.child.sendintr()
    status = await pty.wait_exit()
    assert status in (0, 130)
    out = await run_piped(fake_gemini, tmp_path, ["a boat at night"])
    assert "Continuing your conversation (1 turn)" in out
    assert f"! {INTERRUPTED_MESSAGE}" in out.splitlines()
    assert len(fake_gemini.requests[-1].contents) == 3


@pytest.mark.parametrize("rounds", [5])
async def test_sigkill_mid_turn_leaves_a_consistent_database(
    fake_gemini: FakeGemini, tmp_path: Path, rounds: int
) -> None:
    await run_piped(fake_gemini, tmp_path, ["a boat"])
    db = tmp_path / "data" / "bot.sqlite3"
    for round_number in range(rounds):
        fake_gemini.latency_s = 0.05 * round_number  # kill at different points of the turn
        seen = len(fake_gemini.requests)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "console",
            cwd=tmp_path,
            env=bot_env(console_env(fake_gemini)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdin is not None
        proc.stdin.write(f"variation {round_number}\n".encode())
        await proc.stdin.drain()
        await fake_gemini.wait_for_requests(seen + 1)
        proc.kill()
        await proc.wait()
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            turns = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
            dangling = conn.execute(
                "SELECT COUNT(*) FROM conversations c LEFT JOIN turns t ON t.id = c.head_turn_id "
                "WHERE c.head_turn_id IS NOT NULL AND t.id IS NULL"
            ).fetchone()[0]
            missing_blobs = conn.execute(
                "SELECT COUNT(*) FROM turn_blobs tb LEFT JOIN blobs b ON b.sha256 = tb.sha256 "
                "WHERE b.sha256 IS NULL"
            ).fetchone()[0]
        assert dangling == 0 and missing_blobs == 0
        assert turns >= 1
    out = await run_piped(fake_gemini, tmp_path, ["the final boat"])
    assert "Continuing your conversation" in out
    assert len(saved_images(out, tmp_path)) == 1


def test_attachment_tokens() -> None:
    cwd = ROOT
    parsed = parse_attachments("edit @README.md and mail me@example.com @someone", cwd)
    assert parsed.files == (ROOT / "README.md",)
    assert parsed.text == "edit and mail me@example.com @someone"
    assert parse_attachments("fix @gone.png", cwd).missing == ("gone.png",)
    assert parse_attachments('fix @"no such file"', cwd).missing == ("no such file",)


async def test_unknown_model_is_announced_and_still_used(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    fake_gemini.models.add("gemini-9-image-experimental")
    out = await run_piped(fake_gemini, tmp_path, ["a cat"], {"GEMINI_MODEL": "gemini-9-image-experimental"})
    assert "Note: gemini-9-image-experimental is not a model this version knows;" in out
    assert fake_gemini.requests[0].model == "gemini-9-image-experimental"
    assert len(saved_images(out, tmp_path)) == 1


async def test_console_logs_go_to_a_file_without_secrets(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    result = await asyncio.to_thread(run_bot, ["console"], tmp_path, console_env(fake_gemini), "a cat\n")
    assert result.returncode == 0
    assert result.stderr == ""
    log = (tmp_path / "data" / "console.log").read_text()
    assert '"message": "turn finished"' in log
    assert "console-key" not in log


async def test_usage_command(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    out = await run_piped(fake_gemini, tmp_path, ["a cat", "a dog", "/usage"])
    assert "You: 2 images today (about $0.08), 2 images this month (about $0.08)." in out.splitlines()
    assert "Your limits: 60 an hour and 200 a day." in out.splitlines()
