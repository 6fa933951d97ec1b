"""Structured logs: JSON lines with extra fields, secrets redacted everywhere."""

import io
import json
import logging

from bot.logs import REDACTED, configure_logging


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
