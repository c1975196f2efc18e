"""Inline SVG charts of report.html: bars and lines, no JavaScript, no external asset."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

PALETTE = ("#3b6fb6", "#e0803a", "#4a9d5b", "#c0504d", "#8064a2", "#4bacc6", "#9b8a3c")


def escape(value: object) -> str:
    """``value`` as HTML text (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def fmt_number(value: float | int | None, digits: int = 2) -> str:
    """A number for people: thousands separated, ``digits`` places below 1000, '-' for None."""
    if value is None:
        return "-"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def bar_chart(items: Sequence[tuple[str, float | None]], *, unit: str = "", title: str = "",
              color: str = PALETTE[0], colors: Sequence[str] | None = None,
              marker: tuple[float, str] | None = None, width: int = 720) -> str:
    """A horizontal bar chart as inline SVG (labels left, values right of each bar).

    ``marker`` draws a vertical dashed line at a value (a threshold) with a label.
    """
    rows = [(label, float(v) if v is not None else 0.0) for label, v in items]
    if not rows:
        return '<p class="muted">no data</p>'
    label_w, value_w, bar_h, gap = 210, 120, 20, 8
    plot_w = width - label_w - value_w
    top = 8
    height = top + len(rows) * (bar_h + gap) + 12
    vmax = max([v for _, v in rows] + [marker[0] if marker else 0.0]) or 1.0
    out = [f'<svg class="chart bar" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
           f' xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i, (label, v) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = max(1.0, plot_w * v / vmax) if v > 0 else 0.0
        fill = colors[i % len(colors)] if colors else color
        out.append(f'<text x="{label_w - 8}" y="{y + bar_h * 0.72:.1f}" text-anchor="end" class="lbl">{escape(label)}</text>')
        out.append(f'<rect class="bar-rect" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{fill}" rx="2">'
                   f'<title>{escape(label)}: {escape(fmt_number(v))} {escape(unit)}</title></rect>')
        out.append(f'<text x="{label_w + w + 6:.1f}" y="{y + bar_h * 0.72:.1f}" class="val">{escape(fmt_number(v))} {escape(unit)}</text>')
    if marker:
        x = label_w + plot_w * marker[0] / vmax
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="#c0504d" stroke-dasharray="4 3"/>'
                   f'<text x="{x + 3:.1f}" y="{height - 2}" class="val" fill="#c0504d">{escape(marker[1])}</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart(series: Mapping[str, Sequence[tuple[float, float]]], *, x_label: str, y_label: str,
               title: str = "", logx: bool = True, flagged: Sequence[tuple[str, float]] = (),
               width: int = 720, height: int = 300) -> str:
    """A line chart as inline SVG; ``flagged`` (series, x) points are drawn in red (super-linear)."""
    pts = [(x, y) for s in series.values() for x, y in s if x > 0]
    if not pts:
        return '<p class="muted">no data</p>'
    left, right, top, bottom = 70, 150, 14, 44
    pw, ph = width - left - right, height - top - bottom
    fx = (lambda x: math.log10(x)) if logx else (lambda x: x)
    xs = [fx(x) for x, _ in pts]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    y1 = max(y for _, y in pts) * 1.1 or 1.0

    def px(x: float) -> float:
        return left + pw * (fx(x) - x0) / (x1 - x0)

    def py(y: float) -> float:
        return top + ph - ph * y / y1

    out = [f'<svg class="chart line" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
           f' xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
           f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#888"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#888"/>']
    for k in range(5):
        yv = y1 * k / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" stroke="#eee"/>'
                   f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" text-anchor="end" class="val">{escape(fmt_number(yv, 0))}</text>')
    for x in sorted({x for x, _ in pts}):
        out.append(f'<text x="{px(x):.1f}" y="{top + ph + 16}" text-anchor="middle" class="val">{escape(fmt_number(x))}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" class="lbl">{escape(x_label)}</text>')
    out.append(f'<text x="14" y="{top + ph / 2:.1f}" text-anchor="middle" class="lbl" '
               f'transform="rotate(-90 14 {top + ph / 2:.1f})">{escape(y_label)}</text>')
    bad = set(flagged)
    for i, (name, s) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        s = sorted((x, y) for x, y in s if x > 0)
        if not s:
            continue
        path = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(s))
        out.append(f'<path class="series" d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in s:
            red = (name, x) in bad
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{5 if red else 3.5}" '
                       f'fill="{"#d62728" if red else color}"><title>{escape(name)} at {escape(fmt_number(x))} rows: '
                       f'{escape(fmt_number(y))} {escape(y_label)}{" (super-linear)" if red else ""}</title></circle>')
        ly = top + 14 + i * 18
        out.append(f'<rect x="{left + pw + 12}" y="{ly - 9}" width="12" height="10" fill="{color}"/>'
                   f'<text x="{left + pw + 30}" y="{ly}" class="lbl">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)
