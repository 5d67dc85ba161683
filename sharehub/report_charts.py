"""Inline SVG charts for the auditors' report: line, horizontal bars and a histogram.

Why hand-written SVG: the report must open offline as one file. Charting libraries that
render in the browser (vega-embed behind altair, plotly.js) load JavaScript from a CDN or
inline megabytes of it; these three chart kinds are a few dozen SVG elements each, and an
SVG written here is text an auditor's browser draws without running anything.

Every function is pure: data in, an ``<svg>`` string out (no ``xmlns``: inline SVG in
HTML needs none, and the report carries no URL at all). Labels are escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

# Colour-blind-safe palette (Okabe-Ito), one colour per series in order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
TARGET_COLOUR = "#D55E00"
Formatter = Callable[[float], str]


def share(value: float | None, digits: int = 1) -> str:
    """A share as the report prints it: one decimal percent (``75.4%``) unless told."""
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def _text(x: float, y: float, body: str, *, anchor: str = "start", size: int = 12,
          weight: str = "normal", fill: str = "#222") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{escape(body)}</text>')


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def line_chart(
    series: dict[str, Sequence[tuple[int, float | None]]],
    *,
    title: str,
    versions: Sequence[int] = (),
    target: float | None = None,
    y_max: float = 1.0,
    fmt: Formatter = share,
    width: int = 700,
    height: int = 260,
) -> str:
    """One line per series over published versions (x = version), with a dashed target.

    ``versions`` are the x positions to show even where no series has a point (a version
    measured before a metric existed). A single version still draws, as dots.
    """
    left, right, top, bottom = 56, 200, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = sorted({*versions, *(x for points in series.values() for x, _ in points)}) or [1]
    x_lo, x_hi = xs[0], xs[-1]

    def px(x: float) -> float:
        return left + (plot_w / 2 if x_hi == x_lo else (x - x_lo) / (x_hi - x_lo) * plot_w)

    def py(y: float) -> float:
        return top + plot_h - max(0.0, min(y, y_max)) / y_max * plot_h

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
            'stroke="#ccc"/>']
    for i in range(5):
        y = y_max * i / 4
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                    'stroke="#e4e4e4"/>')
        body.append(_text(left - 6, py(y) + 4, fmt(y), anchor="end", size=11))
    for x in xs:
        body.append(_text(px(x), top + plot_h + 16, f"v{x}", anchor="middle", size=11))
    body.append(_text(left + plot_w / 2, height - 4, "published version", anchor="middle", size=11))
    if target is not None:
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(target):.1f}" '
                    f'y2="{py(target):.1f}" stroke="{TARGET_COLOUR}" stroke-dasharray="6 4"/>')
        body.append(_text(left + 4, py(target) - 4, f"target {fmt(target)}",
                          size=11, fill=TARGET_COLOUR))
    for n, (name, points) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        known = [(x, y) for x, y in sorted(points) if y is not None]
        if len(known) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in known)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in known:
            body.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}">'
                        f"<title>{escape(name)} v{x}: {escape(fmt(y))}</title></circle>")
        label_y = top + 14 + 18 * n
        body.append(f'<rect x="{left + plot_w + 10}" y="{label_y - 9}" width="10" height="10" '
                    f'fill="{colour}"/>')
        last = fmt(known[-1][1]) if known else "n/a"
        body.append(_text(left + plot_w + 24, label_y, f"{name} {last}", size=11))
    return _svg(width, height, title, body)


def bar_chart(
    bars: Sequence[tuple[str, float | None]],
    *,
    title: str,
    target: float | None = None,
    x_max: float = 1.0,
    fmt: Formatter = share,
    width: int = 640,
) -> str:
    """Horizontal bars, one per label, value printed at the bar's end; dashed target."""
    left, right, top, row = 150, 70, 22, 28
    plot_w = width - left - right
    height = top + row * max(len(bars), 1) + 24

    def px(v: float) -> float:
        return left + max(0.0, min(v, x_max)) / x_max * plot_w

    body = [f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - 20}" stroke="#999"/>']
    for i, (label, value) in enumerate(bars):
        y = top + i * row
        colour = PALETTE[0] if target is None or value is None or value >= target else PALETTE[1]
        body.append(_text(left - 8, y + row / 2 + 4, label, anchor="end"))
        if value is not None:
            body.append(f'<rect x="{left}" y="{y + 5}" width="{px(value) - left:.1f}" '
                        f'height="{row - 10}" fill="{colour}"/>')
        body.append(_text(px(value or 0.0) + 6, y + row / 2 + 4,
                          "n/a" if value is None else fmt(value), weight="bold"))
    for i in range(5):
        v = x_max * i / 4
        body.append(_text(px(v), height - 6, fmt(v), anchor="middle", size=10, fill="#666"))
    if target is not None:
        body.append(f'<line x1="{px(target):.1f}" x2="{px(target):.1f}" y1="{top - 8}" '
                    f'y2="{height - 20}" stroke="{TARGET_COLOUR}" stroke-dasharray="6 4"/>')
        body.append(_text(px(target) - 4, top - 10, f"target {fmt(target)}", anchor="end",
                          size=11, fill=TARGET_COLOUR))
    return _svg(width, height, title, body)


def histogram(
    bins: Sequence[tuple[float, int]],
    *,
    title: str,
    bin_width: float = 1.0,
    marker: float | None = None,
    marker_label: str = "",
    width: int = 640,
    height: int = 240,
) -> str:
    """Vertical bars of counts per bin (``bins``: lower edge, count); optional marker line."""
    left, right, top, bottom = 56, 16, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    if not bins:
        return _svg(width, 60, title, [_text(10, 30, "no data")])
    lo = min(edge for edge, _ in bins)
    hi = max(edge for edge, _ in bins) + bin_width
    if marker is not None:
        lo, hi = min(lo, marker), max(hi, marker)
    top_count = max(count for _, count in bins) or 1

    def px(x: float) -> float:
        return left + (x - lo) / (hi - lo) * plot_w

    body = [f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
            'stroke="#999"/>']
    for edge, count in bins:
        h = count / top_count * plot_h
        body.append(f'<rect x="{px(edge) + 0.5:.1f}" y="{top + plot_h - h:.1f}" '
                    f'width="{max(px(edge + bin_width) - px(edge) - 1, 1):.1f}" height="{h:.1f}" '
                    f'fill="{PALETTE[0]}"><title>[{edge:g}, {edge + bin_width:g}): '
                    f"{count:,}</title></rect>")
    for i in range(5):
        c = top_count * i / 4
        y = top + plot_h - c / top_count * plot_h
        body.append(_text(left - 6, y + 4, f"{c:,.0f}", anchor="end", size=10, fill="#666"))
    step = max(1, round((hi - lo) / 10))
    x = float(int(lo))
    while x <= hi:
        body.append(_text(px(x), top + plot_h + 14, f"{x:g}", anchor="middle", size=10, fill="#666"))
        x += step
    body.append(_text(left + plot_w / 2, height - 4, "match weight (log2 of the match odds)",
                      anchor="middle", size=11))
    if marker is not None:
        body.append(f'<line x1="{px(marker):.1f}" x2="{px(marker):.1f}" y1="{top}" '
                    f'y2="{top + plot_h}" stroke="{TARGET_COLOUR}" stroke-dasharray="6 4"/>')
        body.append(_text(px(marker) + 4, top + 12, marker_label, size=11, fill=TARGET_COLOUR))
    return _svg(width, height, title, body)
