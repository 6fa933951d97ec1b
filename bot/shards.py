"""Discord shard settings: how many shards there are and which of them this process runs."""

from __future__ import annotations

from collections.abc import Mapping

_SHARD_FORM = "use shard numbers such as 0,1 or 0-3"


def _shard_ids(raw: str, problems: list[str]) -> list[int] | None:
    ids: list[int] = []
    for part in (p.strip() for p in raw.split(",")):
        first, dash, last = part.partition("-")
        if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
            problems.append(f"DISCORD_SHARD_IDS must list shards, not {raw!r}; {_SHARD_FORM}.")
            return None
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            problems.append(f"DISCORD_SHARD_IDS range {part!r} runs backwards; write it as {high}-{low}.")
            return None
        ids.extend(range(low, high + 1))
    return sorted(set(ids))


def parse_shards(env: Mapping[str, str], problems: list[str]) -> tuple[int | None, tuple[int, ...] | None]:
    """DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS: both unset = every shard, as Discord says."""
    count = _count(env.get("DISCORD_SHARD_COUNT", "").strip(), problems)
    raw = env.get("DISCORD_SHARD_IDS", "").strip()
    if not raw:
        return count, None
    if not env.get("DISCORD_SHARD_COUNT", "").strip():
        problems.append(
            "DISCORD_SHARD_IDS is set but DISCORD_SHARD_COUNT is not; set the total number of shards too."
        )
        return None, None
    ids = _shard_ids(raw, problems)
    if ids is None or count is None:
        return count, None
    outside = [i for i in ids if i >= count]
    if outside:
        problems.append(
            f"DISCORD_SHARD_IDS names shard {outside[0]}, but with DISCORD_SHARD_COUNT={count} "
            f"shards are numbered 0 to {count - 1}."
        )
        return count, None
    return count, tuple(ids)


def _count(raw: str, problems: list[str]) -> int | None:
    if not raw:
        return None
    if not raw.isdigit():
        problems.append(f"DISCORD_SHARD_COUNT must be a whole number, not {raw!r}.")
        return None
    if int(raw) < 1:
        problems.append(f"DISCORD_SHARD_COUNT must be at least 1, not {raw}.")
        return None
    return int(raw)
