"""Run ``python -m bot`` as a real process with a controlled environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Variables from the developer's shell that would change what the bot does.
_CONTROLLED = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_MODEL",
    "GOOGLE_GEMINI_BASE_URL",
    "DATABASE_URL",
    "DISCORD_TOKEN",
    "DISCORD_API_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_API_URL",
    "PORT",
)


def bot_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without bot settings, plus ``extra``, with the repo importable."""
    env = {k: v for k, v in os.environ.items() if k not in _CONTROLLED}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_bot(
    args: list[str], cwd: Path, env: Mapping[str, str] | None = None, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the bot to completion with piped (non-tty) stdin."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=bot_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
