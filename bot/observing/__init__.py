"""What operators see of the core: Prometheus metrics (``metrics.py``), the turn log behind the
dashboard (``journal.py``), OpenTelemetry traces when configured (``traces.py``), each turn followed
from arrival to answer (``watch.py``), and an observer that sees nothing (``null.py``) for parts
built without one. The seam is ``bot.ports.Observer``."""

from __future__ import annotations

# The gauges a part may offer to be read at each scrape (``Observer.sample``): the name it offers,
# then the metric and the image-memory pool it is shown as.
GAUGES: dict[str, tuple[str, str | None]] = {
    "turns_in_flight": ("nanobanana_turns_in_flight", None),
    "generations_in_flight": ("nanobanana_generations_in_flight", None),
    "generations_waiting": ("nanobanana_generations_waiting", None),
    "image_memory_turns": ("nanobanana_image_memory_in_use_bytes", "turns"),
    "image_memory_decodes": ("nanobanana_image_memory_in_use_bytes", "decodes"),
    "image_memory_turns_capacity": ("nanobanana_image_memory_capacity_bytes", "turns"),
    "image_memory_decodes_capacity": ("nanobanana_image_memory_capacity_bytes", "decodes"),
}

# How a failed platform API call ended, as the API errors metric says it (``status_class``).
STATUS_CLASSES = frozenset({"4xx", "5xx", "network"})


def status_class(status: int | None) -> str:
    """``network`` when no HTTP answer came back (``None``), ``5xx`` for a server error, else
    ``4xx`` (a refusal: Slack's ``ok: false`` answers come with HTTP 200 and count here too)."""
    if status is None:
        return "network"
    return "5xx" if status >= 500 else "4xx"
