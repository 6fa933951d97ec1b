"""What the operators' dashboard (``GET /admin``) says: its sign-in, its headings and labels, the
Forget confirmation, and its refusals."""

from __future__ import annotations

TITLE = "Nano Banana: dashboard"
SIGN_IN = {
    "heading": "Sign in",
    "intro": "Enter the dashboard token (ADMIN_TOKEN) to see this deployment's figures.",
    "token": "Token",
    "submit": "Sign in",
}
WRONG_TOKEN = "That token is not right; try again."
SIGNED_OUT = "You are signed out."
SIGN_IN_FIRST = "Sign in to the dashboard first."
STALE_FORM = "That form has expired; reload the dashboard and try again."
IMAGE_GONE = "That image is no longer in the database."
SIGN_OUT = "Sign out"

HEADINGS = {
    "usage": "Images and estimated cost, last 30 days",
    "images_by_model": "Images per day by model",
    "cost_by_model": "Estimated cost per day by model",
    "images_by_platform": "Images per day by platform",
    "cost_by_platform": "Estimated cost per day by platform",
    "days": "Per day",
    "people": "Top people this month",
    "channels": "Top channels this month",
    "spend": "Spend cap",
    "latency": "Turn latency, last 30 days",
    "outcomes": "Refusals and failures, last 30 days",
    "processes": "Processes and platforms",
    "conversations": "Recent conversations",
}
COLUMNS = {
    "day": "Day",
    "images": "Images",
    "cost": "Estimated cost",
    "platform": "Platform",
    "person": "Person",
    "workspace": "Workspace",
    "channel": "Channel",
    "today": "Today (limit)",
    "hour": "Last hour (limit)",
    "turns": "Turns answered",
    "p50": "p50",
    "p95": "p95",
    "outcome": "Outcome",
    "reason": "Reason",
    "count": "Turns",
    "process": "Process",
    "started": "Started",
    "renewed": "Last renewal",
    "status": "Status",
    "platforms": "Platforms",
    "part": "Part",
    "state": "State",
    "conversation": "Conversation",
    "updated": "Last turn",
    "turn_count": "Turns",
    "image": "Latest image",
    "actions": "Actions",
}
NO_LIMIT = "no limit"
NOTHING_YET = "Nothing recorded in this period."
NO_FAILURES = "No refusals or failures in this period."
NO_CONVERSATIONS = "No conversations are stored."
ONE_PROCESS = "SQLite: one process has the database to itself, so there are no leases to list."
THIS_PROCESS = "this process"
# A process whose lease is renewed, and one whose lease lapsed (stopped dead, or cut off).
LIVE, GONE = "live", "gone"
UP, DOWN = "connected", "down"
# A platform's state as a process's lease reports it; a word this version does not know is shown
# as UNKNOWN_STATE (a newer process wrote it).
PLATFORM_STATES = {"connected": "connected", "disconnected": "disconnected"}
UNKNOWN_STATE = "unknown"
NOT_REPORTED = "none reported"
OPEN_THREAD = "Open the thread"
FORGET = "Forget"
CANCEL = "Cancel"
FORGET_QUESTION = "Forget this conversation? Its history and images are deleted from the database for good."
TIMES_IN = "Days and times are in {zone}; daily limits and the spend cap reset at midnight UTC."


def spend_used(spent: str, cap: str, share: str) -> str:
    return f"{spent} of {cap} spent today ({share})."


def spend_uncapped(spent: str) -> str:
    return f"{spent} spent today; no daily spend cap is set (DAILY_SPEND_CAP_USD)."


def forgotten(turns: int) -> str:
    return f"Forgotten: {turns} turn{'s' if turns != 1 else ''} and their images were deleted."


DATABASE_AWAY = "The database does not answer right now; reload the page in a moment."


def platform_state(platform: str, state: str) -> str:
    return f"{platform}: {PLATFORM_STATES.get(state, UNKNOWN_STATE)}"


def seconds_ago(seconds: float) -> str:
    return f"{max(seconds, 0):.0f} s ago"


def last_reported(states: str) -> str:
    """A gone process's platforms, as its last renewal told them."""
    return f"last reported {states}"
