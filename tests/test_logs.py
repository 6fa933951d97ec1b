"""Structured logs: JSON lines with extra fields, secrets redacted everywhere."""

import io
import json
import logging

from bot.logs import REDACTED, configure_logging, log_context


def test_json_lines_with_extra_fields_and_redacted_secrets() -> None:
    stream = io.StringIO()
    configure_logging("INFO", ["AIza-super-secret", "xoxb-token"], stream)
    log = logging.getLogger("bot.test")
    log.info("turn finished", extra={"conversation": "console:local:t:1", "turn_id": 7})
    log.warning("request to https://x/?key=AIza-super-secret failed with xoxb-token")
    try:
        raise RuntimeError("boom AIza-super-secret")
    except RuntimeError:
        log.exception("crashed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "turn finished"
    assert lines[0]["conversation"] == "console:local:t:1" and lines[0]["turn_id"] == 7
    assert lines[1]["message"] == f"request to https://x/?key={REDACTED} failed with {REDACTED}"
    assert lines[2]["error"] == "RuntimeError"
    assert "AIza-super-secret" not in stream.getvalue()
    assert "xoxb-token" not in stream.getvalue()


def test_context_fields_reach_every_line_inside_the_block() -> None:
    stream = io.StringIO()
    configure_logging("INFO", [], stream)
    log = logging.getLogger("bot.test")
    with log_context(conversation="slack:T:C:1.2", message_id="1.2"):
        log.warning("gemini attempt failed", extra={"attempt": 1})
    log.info("outside")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inside["conversation"], inside["message_id"], inside["attempt"]) == ("slack:T:C:1.2", "1.2", 1)
    assert "conversation" not in outside


def test_asyncpg_pool_retries_during_an_outage_are_left_to_the_one_outage_line() -> None:
    stream = io.StringIO()
    configure_logging("INFO", [], stream)
    pool = logging.getLogger("asyncpg.pool")
    try:
        raise ConnectionRefusedError(111, "Connect call failed")
    except ConnectionRefusedError:
        pool.warning("Failed to restore the pool connection floor; retrying", exc_info=True)
    pool.warning("A connection was not released")  # anything else of asyncpg's still shows
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("asyncpg.pool", "A connection was not released")
    ]
