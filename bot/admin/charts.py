"""Charts drawn on the server as SVG inside the page (no script, no other host): stacked bars of a
value per day by series, and lines of latency per day. Every mark carries its exact value
(``data-value``) and a tooltip; colours come from the stylesheet (classes ``s0``..``s5``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 20, 10, 24
COLOURS = 6
Format = Callable[[float], str]


def _frame(chart_id: str, title: str, top: float, shown: Format, labels: Sequence[str]) -> list[str]:
    """The SVG's opening, its grid with the axis values, and a day label every fifth day."""
    inner_h = HEIGHT - TOP - BOTTOM
    out = [
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for step in range(5):
        value = top * step / 4
        y = TOP + inner_h - inner_h * step / 4
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(shown(value))}</text>"
        )
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    for n, label in enumerate(labels):
        if n % 5 == (len(labels) - 1) % 5:
            x = LEFT + slot * (n + 0.5)
            out.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{escape(label)}</text>'
            )
    return out


def stacked_bars(
    chart_id: str, title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], shown: Format
) -> str:
    """One bar per day (``labels``), stacked by series in the order given."""
    totals = [sum(values[n] for values in series.values()) for n in range(len(labels))]
    top = max(totals, default=0.0) or 1.0
    out = _frame(chart_id, title, top, shown, labels)
    inner_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    for n, label in enumerate(labels):
        base = float(TOP + inner_h)
        for colour, (name, values) in enumerate(series.items()):
            value = values[n]
            if not value:
                continue
            height = inner_h * value / top
            base -= height
            out.append(
                f'<rect class="s{colour % COLOURS}" x="{LEFT + slot * n + 1:.1f}" y="{base:.1f}" '
                f'width="{max(slot - 2, 1):.1f}" height="{height:.1f}" data-day="{escape(label)}" '
                f'data-series="{escape(name)}" data-value="{value!r}">'
                f"<title>{escape(label)} · {escape(name)}: {escape(shown(value))}</title></rect>"
            )
    out.append("</svg>")
    return "".join(out)


def lines(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    shown: Format,
) -> str:
    """One line per series over the days; a day without a value has no point."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = max(values, default=0.0) or 1.0
    out = _frame(chart_id, title, top, shown, labels)
    inner_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    for colour, (name, points) in enumerate(series.items()):
        placed = [
            (LEFT + slot * (n + 0.5), TOP + inner_h - inner_h * v / top, labels[n], v)
            for n, v in enumerate(points)
            if v is not None
        ]
        if len(placed) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in placed)
            out.append(f'<polyline class="line s{colour % COLOURS}" points="{path}"/>')
        for x, y, label, v in placed:
            out.append(
                f'<circle class="s{colour % COLOURS}" cx="{x:.1f}" cy="{y:.1f}" r="3" '
                f'data-day="{escape(label)}" '
                f'data-series="{escape(name)}" data-value="{v!r}">'
                f"<title>{escape(label)} · {escape(name)}: {escape(shown(v))}</title></circle>"
            )
    out.append("</svg>")
    return "".join(out)


def legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<li><span class="swatch s{n % COLOURS}"></span>{escape(name)}</li>' for n, name in enumerate(names)
    )
    return f'<ul class="legend">{items}</ul>'
