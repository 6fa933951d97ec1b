"""Ids read back from signed controls: ASCII digits within signed 64-bit, nothing else."""

import pytest

from adapters.slack.blocks import turn_and_ratio_from_value, turn_from_value
from bot.ids import MAX_ID, parse_id


@pytest.mark.parametrize("text", ["1", "42", str(MAX_ID), "007"])
def test_plain_ids_are_read(text: str) -> None:
    assert parse_id(text) == int(text)


@pytest.mark.parametrize(
    "value", ["", "0", "-1", "+1", " 1", "1 ", "1e3", "²", "١٢", "1" + "0" * 23, str(MAX_ID + 1), None, 12]
)
def test_anything_else_is_no_id(value: object) -> None:
    assert parse_id(value) is None
    assert turn_from_value(value) is None


def test_ratio_values_are_read_strictly() -> None:
    assert turn_and_ratio_from_value("42|16:9") == (42, "16:9")
    assert turn_and_ratio_from_value(f"{2**63}|16:9") is None
    assert turn_and_ratio_from_value("²|16:9") is None
    assert turn_and_ratio_from_value("42|") is None
    assert turn_and_ratio_from_value("42") is None
