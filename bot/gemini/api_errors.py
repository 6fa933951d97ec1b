"""What the API's error details say: how long to wait, and whether a quota is daily."""

import re
from typing import Any

# ---------------------------------------------------------------------------------------------
# Error details


def _detail_items(details: Any) -> list[dict[str, Any]]:
    """The ``details`` list of a Google error, whether given the envelope or the inner error."""
    if isinstance(details, dict):
        inner = details.get("error")
        if isinstance(inner, dict):
            details = inner
        details = details.get("details")
    if isinstance(details, list):
        return [d for d in details if isinstance(d, dict)]
    return []


def _of_type(items: list[dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    return [d for d in items if str(d.get("@type", "")).endswith(suffix)]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*s\s*$")


def retry_delay_s(details: Any) -> float | None:
    """``RetryInfo.retryDelay`` in seconds (``"33s"``, ``"1.5s"``), if the error carries one."""
    for info in _of_type(_detail_items(details), "google.rpc.RetryInfo"):
        value = info.get("retryDelay", info.get("retry_delay"))
        if isinstance(value, str) and (m := _DURATION.match(value)):
            return float(m.group(1))
        if isinstance(value, dict):
            try:
                return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
            except (TypeError, ValueError):
                continue
    return None


def is_daily_quota(details: Any) -> bool:
    """True when a QuotaFailure names a per-day quota (retrying will not help until reset)."""
    for failure in _of_type(_detail_items(details), "google.rpc.QuotaFailure"):
        for violation in failure.get("violations") or ():
            if isinstance(violation, dict):
                quota_id = str(violation.get("quotaId", violation.get("quota_id", "")))
                if "PerDay" in quota_id:
                    return True
    return False


def error_reasons(details: Any) -> set[str]:
    return {str(d.get("reason", "")) for d in _of_type(_detail_items(details), "ErrorInfo")}
