"""A PNG of the results, drawn with Pillow: each figure against its target, and cost per turn."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bench.report import Report

WIDTH = 1200
ROW_H = 34
MARGIN = 24
LABEL_W = 560
BAR_W = WIDTH - LABEL_W - 2 * MARGIN - 150
SCALE_MAX = 2.0  # bars show figure / target; the target sits at 1.0, at half the bar width
GREEN = (46, 160, 67)
RED = (207, 34, 46)
GREY = (110, 118, 129)
INK = (31, 35, 40)
LIGHT = (234, 238, 242)
BUDGET = (9, 105, 218)
UNBOUNDED = (191, 135, 0)


def _ascii(text: str) -> str:
    """Pillow's built-in font has no ≤ or ×."""
    return text.replace("≤", "<=").replace("×", "x").replace("…", "...")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def draw(report: Report, path: Path) -> Path:
    targeted = [r for r in report.rows if r.target is not None]
    cost = report.series
    plot_h = 320 if cost.get("turns") else 0
    height = MARGIN * 3 + 40 + ROW_H * len(targeted) + 40 + plot_h
    image = Image.new("RGB", (WIDTH, height), "white")
    d = ImageDraw.Draw(image)
    title, small, tiny = _font(22), _font(15), _font(13)
    d.text((MARGIN, MARGIN), f"Nano Banana bot benchmarks ({report.mode} run)", fill=INK, font=title)
    d.text((MARGIN, MARGIN + 28), _ascii(report.machine.get("summary", "")), fill=GREY, font=tiny)

    top = MARGIN + 60
    x0 = MARGIN + LABEL_W
    target_x = x0 + BAR_W / SCALE_MAX
    d.line([(target_x, top - 6), (target_x, top + ROW_H * len(targeted))], fill=INK, width=2)
    d.text((target_x - 20, top - 22), "target", fill=INK, font=tiny)
    for i, row in enumerate(targeted):
        y = top + i * ROW_H
        d.rectangle([x0, y + 6, x0 + BAR_W, y + ROW_H - 6], fill=LIGHT)
        assert row.target is not None
        share = row.figure / row.target if row.target else SCALE_MAX
        length = max(2.0, min(SCALE_MAX, share) / SCALE_MAX * BAR_W)
        colour = GREEN if row.verdict == "PASS" else RED
        d.rectangle([x0, y + 6, x0 + length, y + ROW_H - 6], fill=colour)
        label = _ascii(f"{row.section}  {row.measure}")
        if len(label) > 68:
            label = label[:65] + "..."
        d.text((MARGIN, y + 9), label, fill=INK, font=small)
        figure = _ascii(f"{row.shown} / {row.target_shown}")
        d.text((x0 + BAR_W + 10, y + 9), figure, fill=colour, font=small)

    if plot_h:
        _cost_plot(d, cost, top + ROW_H * len(targeted) + 40, plot_h, small, tiny)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "PNG")
    return path


def _cost_plot(
    d: ImageDraw.ImageDraw,
    series: dict[str, list[float]],
    top: int,
    height: int,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    tiny: ImageFont.ImageFont | ImageFont.FreeTypeFont,
) -> None:
    turns = series["turns"]
    budget, unbounded = series["budget_mb"], series["unbounded_mb"]
    d.text((MARGIN, top), "Request sent to Gemini per turn (MB)", fill=INK, font=font)
    left, right = MARGIN + 60, WIDTH - MARGIN - 200
    plot_top, bottom = top + 30, top + height - 30
    peak = max([*budget, *unbounded, 1e-9])
    d.line([(left, bottom), (right, bottom)], fill=GREY)
    d.line([(left, plot_top), (left, bottom)], fill=GREY)
    last = max(turns)

    def point(turn: float, mb: float) -> tuple[float, float]:
        return (
            left + (turn - 1) / max(1, last - 1) * (right - left),
            bottom - mb / peak * (bottom - plot_top),
        )

    for frac in (0.0, 0.5, 1.0):
        y = bottom - frac * (bottom - plot_top)
        d.text((MARGIN, y - 7), f"{peak * frac:.1f}", fill=GREY, font=tiny)
    for name, values, colour in (("budget (3 images)", budget, BUDGET), ("unbounded", unbounded, UNBOUNDED)):
        points = [point(t, v) for t, v in zip(turns, values, strict=True)]
        d.line(points, fill=colour, width=3)
        for x, y in points:
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
        x, y = points[-1]
        d.text((x + 10, y - 8), f"{name}: {values[-1]:.1f} MB", fill=colour, font=tiny)
    for t in turns:
        x, _ = point(t, 0)
        d.text((x - 4, bottom + 6), f"{int(t)}", fill=GREY, font=tiny)
    d.text((right + 28, bottom + 6), "turn", fill=GREY, font=tiny)
