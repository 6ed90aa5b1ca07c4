"""Inline SVG plots, drawn in Python: the forget-quality / model-utility plane and line charts.

The SVG goes straight into the HTML page (no external file, no script library). Colours and fonts
come from the page's stylesheet through class names, so the plots follow the page's look. Every
text is escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

PALETTE = ("#3867d6", "#e58e26", "#8854d0", "#0fb9b1", "#d6336c", "#6d4c41", "#4b6584", "#7cb342")
"""Colours of unlearned models, in order (the target is red, the retain-only model green)."""

ROLE_COLOURS = {"target": "#d63031", "retain": "#1e9e5a"}


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for people: 3 significant digits, scientific notation for tiny p-values."""
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    if abs(value) < 1e-3 or abs(value) >= 1e5:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (1, 2 or 5 times a
    power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = [round(start, 12)]
    while ticks[-1] < hi - step * 1e-9 or len(ticks) < 2:
        ticks.append(round(start + len(ticks) * step, 12))
    return ticks


@dataclass
class PlanePoint:
    """A model on the forget-quality / model-utility plane.

    Attributes:
        name: the model's label.
        role: ``target``, ``retain`` or ``unlearned`` (decides the marker).
        forget_quality: the KS-test p-value (x, log axis); 0 is drawn at the axis's left end.
        model_utility: the model utility (y).
        colour: the marker's colour.
        note: an extra line for the hover text.
    """

    name: str
    role: str
    forget_quality: float
    model_utility: float
    colour: str
    note: str = ""


def marker_svg(role: str, colour: str) -> str:
    """A 16-pixel inline SVG of a role's marker, for legends."""
    return (
        '<svg class="marker" viewBox="0 0 20 20" width="16" '
        f'height="16">{_marker(role, 10, 10, colour)}</svg>'
    )


def _marker(role: str, x: float, y: float, colour: str) -> str:
    if role == "target":
        s = 7.5
        return (
            f'<path d="M{x:.1f} {y - s:.1f}L{x + s:.1f} {y:.1f}L{x:.1f} {y + s:.1f}L{x - s:.1f} '
            f'{y:.1f}Z" fill="{colour}"/>'
        )
    if role == "retain":
        pts = []
        for k in range(10):
            r = 9.0 if k % 2 == 0 else 4.0
            a = -math.pi / 2 + k * math.pi / 5
            pts.append(f"{x + r * math.cos(a):.1f},{y + r * math.sin(a):.1f}")
        return f'<polygon points="{" ".join(pts)}" fill="{colour}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{colour}"/>'


def _place_labels(
    anchors: list[tuple[float, float, str, bool]], char_w: float = 7.6
) -> list[tuple[float, float]]:
    """Label anchors next to each point that do not overlap earlier labels (greedy search).

    A label put left of its point is anchored at its end; the returned x is the anchor."""
    boxes: list[tuple[float, float, float, float]] = []
    out = []
    for x, y, text, left in anchors:
        w, h = char_w * len(text), 14.0
        lx = x - 11 - w if left else x + 11
        ly = y + 4
        for shift in (0, -15, 15, -30, 30, 45, -45, 60):
            top = ly + shift - 11
            if not any(
                lx < bx + bw and bx < lx + w and top < by + bh and by < top + h
                for bx, by, bw, bh in boxes
            ):
                ly += shift
                break
        boxes.append((lx, ly - 11, w, h))
        out.append((x - 11 if left else lx, ly))
    return out


def plane_svg(
    points: list[PlanePoint],
    *,
    goal_utility: float | None = None,
    width: int = 820,
    height: int = 470,
) -> str:
    """The forget-quality (log x) versus model-utility (y) plane, one marker per point."""
    left, right, top, bottom = 66, 28, 30, 56
    pw, ph = width - left - right, height - top - bottom
    positive = [p.forget_quality for p in points if p.forget_quality > 0]
    lo_dec = math.floor(math.log10(min(positive))) if positive else -3
    if any(p.forget_quality <= 0 for p in points):
        lo_dec -= 1
    lo_dec = min(lo_dec, -1)
    hi_dec = max(0, math.ceil(math.log10(max(positive)))) if positive else 0
    ys = [p.model_utility for p in points] + ([goal_utility] if goal_utility is not None else [])
    span = (max(ys) - min(ys)) if ys else 1.0
    pad = max(span * 0.12, 0.02)
    yticks = nice_ticks(max(min(ys, default=0.0) - pad, 0.0), max(ys, default=1.0) + pad, 6)
    y_lo, y_hi = yticks[0], yticks[-1]

    def sx(fq: float) -> float:
        dec = math.log10(fq) if fq > 0 else lo_dec
        return left + (max(dec, lo_dec) - lo_dec) / (hi_dec - lo_dec) * pw

    def sy(mu: float) -> float:
        return top + (y_hi - mu) / (y_hi - y_lo) * ph

    parts = [
        f'<svg class="plot plane" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="forget quality versus model '
        'utility, one point per model">',
        f'<rect class="plot-bg" x="{left}" y="{top}" width="{pw}" height="{ph}"/>',
    ]
    every = max(1, math.ceil((hi_dec - lo_dec) / 10))
    for dec in range(lo_dec, hi_dec + 1):
        x = left + (dec - lo_dec) / (hi_dec - lo_dec) * pw
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}"/>')
        if (dec - lo_dec) % every == 0 or dec == hi_dec:
            label = "1" if dec == 0 else ("0.1" if dec == -1 else f"1e{dec}")
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{top + ph + 18}" '
                f'text-anchor="middle">{label}</text>'
            )
    for t in yticks:
        y = sy(t)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{fmt(t)}</text>'
        )
    if lo_dec <= math.log10(0.05) <= hi_dec:
        x = sx(0.05)
        parts.append(f'<line class="guide" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}"/>')
        parts.append(
            f'<text class="guide-label" x="{x + 4:.1f}" y="{top + ph - 6}">p = 0.05</text>'
        )
    if goal_utility is not None and y_lo <= goal_utility <= y_hi:
        y = sy(goal_utility)
        parts.append(
            f'<line class="guide goal" x1="{left}" y1="{y:.1f}" x2="{left + pw}" '
            f'y2="{y:.1f}"><title>retain-only model utility</title></line>'
        )
    parts.append(
        f'<text class="better" x="{left + pw}" y="{top - 10}" text-anchor="end">better ↗</text>'
    )
    parts.append(
        f'<text class="axis-label" x="{left + pw / 2:.1f}" y="{height - 12}" text-anchor="middle">'
        "forget quality (KS-test p-value, log scale) →</text>"
    )
    parts.append(
        f'<text class="axis-label" transform="translate(16 {top + ph / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">model utility →</text>'
    )
    order = sorted(points, key=lambda p: {"retain": 0, "target": 1}.get(p.role, 2))
    coords = [(sx(p.forget_quality), sy(p.model_utility)) for p in order]
    flips = [x > left + pw * 0.72 for x, _ in coords]
    labels = _place_labels([(x, y, p.name, flip) for (x, y), p, flip in zip(coords, order, flips)])
    for p, (x, y), (lx, ly), flip in zip(order, coords, labels, flips):
        tip = (
            f"{p.name} ({p.role})\nforget quality {fmt(p.forget_quality)}\n"
            f"model utility {fmt(p.model_utility)}"
        )
        tip += f"\n{p.note}" if p.note else ""
        anchor = ' text-anchor="end"' if flip else ""
        parts.append(
            f'<g class="point role-{escape(p.role)}" data-model="{escape(p.name)}">'
            f"<title>{escape(tip)}</title>"
            f"{_marker(p.role, x, y, p.colour)}"
            f'<text class="point-label" x="{lx:.1f}" y="{ly:.1f}"{anchor}>'
            f"{escape(p.name)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class Series:
    """A line of a line chart.

    Attributes:
        label: the legend's text.
        xs: x values (training steps).
        ys: y values, same length as ``xs``.
        colour: the line's colour.
        dashed: draw the line dashed.
    """

    label: str
    xs: list[float]
    ys: list[float]
    colour: str
    dashed: bool = False


def line_chart_svg(
    series: list[Series],
    *,
    x_label: str = "step",
    y_label: str = "",
    width: int = 460,
    height: int = 230,
    max_points: int = 400,
) -> str:
    """A line chart of ``series`` sharing both axes, with a legend on top."""
    left, right, top, bottom = 58, 18, 34, 44
    pw, ph = width - left - right, height - top - bottom
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    yticks = nice_ticks(min(ys, default=0.0), max(ys, default=1.0), 5)
    xticks = [t for t in nice_ticks(x_lo, x_hi, 6) if x_lo <= t <= x_hi]

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * pw

    def sy(y: float) -> float:
        return top + (yticks[-1] - y) / (yticks[-1] - yticks[0]) * ph

    parts = [
        f'<svg class="plot curve" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(y_label or "values")} per {escape(x_label)}">',
        f'<rect class="plot-bg" x="{left}" y="{top}" width="{pw}" height="{ph}"/>',
    ]
    for t in yticks:
        y = sy(t)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(t)}</text>'
        )
    for t in xticks:
        parts.append(
            f'<text class="tick" x="{sx(t):.1f}" y="{top + ph + 16}" '
            f'text-anchor="middle">{fmt(t)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{left + pw / 2:.1f}" y="{height - 8}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    if y_label:
        parts.append(
            f'<text class="axis-label" transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )
    lx = left
    for s in series:
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        parts.append(
            f'<line x1="{lx}" y1="14" x2="{lx + 18}" y2="14" stroke="{s.colour}" '
            f'stroke-width="2.5"{dash}/>'
        )
        parts.append(f'<text class="legend" x="{lx + 23}" y="18">{escape(s.label)}</text>')
        lx += 23 + 7 * len(s.label) + 18
    for s in series:
        stride = max(1, math.ceil(len(s.xs) / max_points))
        pts = list(zip(s.xs, s.ys))[::stride]
        if s.xs and pts[-1] != (s.xs[-1], s.ys[-1]):
            pts.append((s.xs[-1], s.ys[-1]))
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline class="series" data-series="{escape(s.label)}" points="{path}" '
            f'fill="none" stroke="{s.colour}" '
            f'stroke-width="2"{dash}><title>{escape(s.label)}</title></polyline>'
        )
        if len(pts) <= 2:
            parts.extend(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{s.colour}"/>'
                for x, y in pts
            )
    parts.append("</svg>")
    return "".join(parts)


__all__ = [
    "PALETTE",
    "ROLE_COLOURS",
    "PlanePoint",
    "Series",
    "fmt",
    "line_chart_svg",
    "marker_svg",
    "nice_ticks",
    "plane_svg",
]
