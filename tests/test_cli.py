"""`python -m bot` as a process: what it says and exits with when it cannot start."""

from pathlib import Path

from bot.cli import NOTHING_TO_RUN
from tests.auxil.process import run_bot


def test_nothing_configured_and_no_terminal_says_what_to_set(tmp_path: Path) -> None:
    result = run_bot([], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == NOTHING_TO_RUN
    assert result.stdout == ""


def test_bad_configuration_fails_with_one_line_each_and_no_traceback(tmp_path: Path) -> None:
    result = run_bot(
        ["console"],
        tmp_path,
        {"GEMINI_API_KEY": "k", "DATABASE_URL": "postgresql+psycopg://u@h/db", "DEFAULT_ASPECT_RATIO": "5:7"},
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: DATABASE_URL scheme 'postgresql+psycopg' is not supported; "
        "use postgresql://user:password@host:5432/database.",
        "error: DEFAULT_ASPECT_RATIO '5:7' is not supported by gemini-2.5-flash-image; use one of "
        "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9.",
    ]
    assert "Traceback" not in result.stderr


def test_console_without_a_key_says_how_to_get_one(tmp_path: Path) -> None:
    result = run_bot(["console"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: GEMINI_API_KEY is not set;")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_key_from_dotenv_file_is_used(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=mysql://nope\n")
    result = run_bot(["console"], tmp_path, {"GEMINI_API_KEY": "k"})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: DATABASE_URL scheme 'mysql' is not supported; use sqlite:///data/bot.sqlite3."
    )


def test_every_kind_of_bad_setting_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    env = {
        "GEMINI_API_KEY": "k",
        "DISCORD_TOKEN": "t",
        "DISCORD_SHARD_IDS": "0-1",
        "PORT": "http",
        "LOG_LEVEL": "chatty",
        "SLACK_BOT_TOKEN": "xoxb-1",
    }
    result = run_bot([], tmp_path, env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: DISCORD_SHARD_IDS is set but DISCORD_SHARD_COUNT is not; set the total number of shards too.",
        "error: SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
        "SLACK_SIGNING_SECRET (HTTP mode) is; set one of them.",
        "error: PORT must be a whole number, not 'http'.",
        "error: LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not 'CHATTY'.",
    ]
    assert "xoxb-1" not in result.stderr and result.stdout == ""
