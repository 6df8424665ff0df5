"""Charts as inline SVG, drawn in Python: report.html needs no JavaScript, no fonts and nothing from a network.

A `Chart` has an x and a y `Scale` (linear, log10, percentile "nines", or named bands), draws marks in
data coordinates (lines, dots, interval whiskers, bars, shaded spans) and renders axes, grid, ticks,
labels and a legend around them. Each mark is an SVG element of class `mark`, so a browser test can
count what was drawn. Values outside a scale's domain are clamped to its edge, never drawn off-chart.

Not here: what a plot shows (meshproof.report.plots) or the page around it (meshproof.report.html).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
GRID = "#e5e5e5"
INK = "#333333"
Formatter = Callable[[float], str]


class Scale(Protocol):
    def fraction(self, value: float) -> float:
        """0 at the axis start (left, or bottom), 1 at its end; not yet clamped."""

    def ticks(self) -> list[tuple[float, str]]: ...


def _general(value: float) -> str:
    return f"{value:.4g}"


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(float(m * magnitude) for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


@dataclass(frozen=True)
class Linear:
    lo: float
    hi: float
    fmt: Formatter = _general
    count: int = 5

    def __post_init__(self) -> None:
        if not self.hi > self.lo:
            object.__setattr__(self, "hi", self.lo + (abs(self.lo) or 1.0))  # a flat series still gets an axis

    @classmethod
    def covering(cls, values: Sequence[float], *, fmt: Formatter = _general, include_zero: bool = False,
                 pad: float = 0.05) -> Linear:
        """A domain over `values`, padded, with round ends."""
        finite = [v for v in values if math.isfinite(v)] or [0.0]
        lo, hi = min(finite), max(finite)
        if include_zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        span = (hi - lo) or abs(hi) or 1.0
        step = _nice_step(span * (1 + 2 * pad), 5)
        start = 0.0 if include_zero and lo == 0 else math.floor((lo - pad * span) / step) * step
        return cls(start, math.ceil((hi + pad * span) / step) * step, fmt)

    def fraction(self, value: float) -> float:
        return (value - self.lo) / (self.hi - self.lo)

    def ticks(self) -> list[tuple[float, str]]:
        step = _nice_step(self.hi - self.lo, self.count)
        first = math.ceil(self.lo / step - 1e-9)
        values = [(first + i) * step for i in range(int((self.hi - self.lo) / step + 1e-9) + 1)]
        inside = [v for v in values if self.lo - 1e-9 <= v <= self.hi + 1e-9]
        return [(v, self.fmt(0.0 if abs(v) < step * 1e-9 else v)) for v in inside]


@dataclass(frozen=True)
class Log10:
    lo: float
    hi: float
    fmt: Formatter = _general

    def __post_init__(self) -> None:
        lo = self.lo if self.lo > 0 else 1e-3
        hi = self.hi if self.hi > lo else lo * 10
        object.__setattr__(self, "lo", 10 ** math.floor(math.log10(lo)))
        object.__setattr__(self, "hi", 10 ** math.ceil(math.log10(hi)))

    def fraction(self, value: float) -> float:
        value = max(value, self.lo)
        return (math.log10(value) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))

    def ticks(self) -> list[tuple[float, str]]:
        decades = range(round(math.log10(self.lo)), round(math.log10(self.hi)) + 1)
        multiples = (1, 2, 5) if len(decades) <= 4 else (1,)
        return [(m * 10**d, self.fmt(m * 10**d)) for d in decades for m in multiples if m * 10**d <= self.hi]


@dataclass(frozen=True)
class Nines:
    """Percentiles spaced by their nines, as HDR histogram plots do: p50, p90, p99, p99.9 equally apart,
    so the tail a mesh adds is as visible as its median."""

    hi: float = 0.999  # the highest quantile shown (rounded up to the next tick)
    lo: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "hi", next((q for q in NINES if q >= self.hi - 1e-12), NINES[-1]))

    def fraction(self, value: float) -> float:
        def nines(q: float) -> float:
            return -math.log10(1 - min(q, 1 - 1e-9))

        return (nines(value) - nines(self.lo)) / (nines(self.hi) - nines(self.lo))

    def ticks(self) -> list[tuple[float, str]]:
        return [(q, percentile_label(q)) for q in NINES if self.lo <= q <= self.hi + 1e-12]


NINES = (0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999)


def percentile_label(q: float) -> str:
    return f"p{q * 100:.10g}"


@dataclass(frozen=True)
class Bands:
    """Named rows, the first at the top (endpoints of a timeline, versions of a split)."""

    names: Sequence[str]

    def fraction(self, value: float) -> float:
        return 1 - (value + 0.5) / max(len(self.names), 1)

    def index(self, name: str) -> float:
        return float(list(self.names).index(name))

    def ticks(self) -> list[tuple[float, str]]:
        return [(float(i), name) for i, name in enumerate(self.names)]


def _clamp(fraction: float) -> float:
    return min(max(fraction, 0.0), 1.0)


@dataclass
class Chart:
    title: str
    x: Scale
    y: Scale
    x_label: str = ""
    y_label: str = ""
    width: int = 620
    height: int = 300
    left: int = 70
    right: int = 16
    top: int = 30
    bottom: int = 46
    _marks: list[str] = field(default_factory=list)
    _legend: dict[str, str] = field(default_factory=dict)

    # --- coordinates ---------------------------------------------------------------------------------
    def px(self, x: float, y: float) -> tuple[float, float]:
        inner_w, inner_h = self.width - self.left - self.right, self.height - self.top - self.bottom
        return (round(self.left + _clamp(self.x.fraction(x)) * inner_w, 2),
                round(self.top + (1 - _clamp(self.y.fraction(y))) * inner_h, 2))

    def _band_px(self) -> float:
        """The height of one named row, for bars drawn on Bands."""
        rows = len(self.y.names) if isinstance(self.y, Bands) else 10
        return (self.height - self.top - self.bottom) / max(rows, 1)

    def _label(self, label: str | None, color: str) -> None:
        if label:
            self._legend.setdefault(label, color)

    # --- marks ---------------------------------------------------------------------------------------
    def line(self, points: Sequence[tuple[float, float]], color: str, label: str | None = None,
             dashed: bool = False) -> None:
        if len(points) < 2:
            self.dots(points, color, label)
            return
        path = " ".join(f"{px},{py}" for px, py in (self.px(x, y) for x, y in points))
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        self._marks.append(f'<polyline class="mark" fill="none" stroke="{color}" stroke-width="2"{dash} '
                           f'points="{path}"/>')
        self._label(label, color)

    def dots(self, points: Sequence[tuple[float, float]], color: str, label: str | None = None,
             radius: float = 3.5) -> None:
        for x, y in points:
            cx, cy = self.px(x, y)
            self._marks.append(f'<circle class="mark" cx="{cx}" cy="{cy}" r="{radius}" fill="{color}"/>')
        self._label(label, color)

    def y_interval(self, x: float, lo: float, hi: float, color: str) -> None:
        """A vertical whisker with caps: the interval of a value at x."""
        (cx, top), (_, bottom) = self.px(x, hi), self.px(x, lo)
        self._marks.append(f'<path class="mark" stroke="{color}" stroke-width="1.5" fill="none" '
                           f'd="M{cx},{bottom}V{top}M{cx - 5},{top}h10M{cx - 5},{bottom}h10"/>')

    def x_interval(self, y: float, lo: float, hi: float, color: str) -> None:
        """A horizontal whisker with caps: the interval of a value on row y."""
        (left, cy), (right, _) = self.px(lo, y), self.px(hi, y)
        self._marks.append(f'<path class="mark" stroke="{color}" stroke-width="1.5" fill="none" '
                           f'd="M{left},{cy}H{right}M{left},{cy - 5}v10M{right},{cy - 5}v10"/>')

    def tick(self, x: float, y: float, color: str = INK, label: str | None = None) -> None:
        """A short vertical stroke at (x, y): an expected value on a row."""
        cx, cy = self.px(x, y)
        half = min(self._band_px() * 0.4, 9)
        self._marks.append(f'<path class="mark" stroke="{color}" stroke-width="2" d="M{cx},{cy - half}V{cy + half}"/>')
        self._label(label, color)

    def bar(self, y: float, lo: float, hi: float, color: str, label: str | None = None, *,
            min_px: float = 2.0, title: str = "") -> None:
        """A horizontal bar on row y from lo to hi (at least min_px wide, so a single event shows)."""
        (left, cy), (right, _) = self.px(lo, y), self.px(hi, y)
        thickness = self._band_px() * 0.6
        tooltip = f"<title>{html.escape(title)}</title>" if title else ""
        self._marks.append(f'<rect class="mark" x="{left}" y="{round(cy - thickness / 2, 2)}" '
                           f'width="{round(max(right - left, min_px), 2)}" height="{round(thickness, 2)}" '
                           f'fill="{color}">{tooltip}</rect>')
        self._label(label, color)

    def x_span(self, lo: float, hi: float, color: str, label: str | None = None) -> None:
        """A shaded band over the plot's full height: a window in time (a fault) or an interval."""
        (left, _), (right, _) = self.px(lo, 0), self.px(hi, 0)
        self._marks.append(f'<rect class="mark span" x="{left}" y="{self.top}" '
                           f'width="{round(max(right - left, 1), 2)}" height="{self.height - self.top - self.bottom}" '
                           f'fill="{color}" fill-opacity="0.18"/>')
        self._label(label, color)

    def h_rule(self, y: float, color: str = INK, dashed: bool = True) -> None:
        """A reference line across the plot (zero overhead, a threshold)."""
        (left, cy), (right, _) = self.px(_domain_start(self.x), y), self.px(_domain_end(self.x), y)
        dash = ' stroke-dasharray="4,3"' if dashed else ""
        self._marks.append(f'<path stroke="{color}" stroke-width="1"{dash} d="M{left},{cy}H{right}"/>')

    # --- rendering -----------------------------------------------------------------------------------
    def render(self) -> str:
        inner_right, inner_bottom = self.width - self.right, self.height - self.bottom
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{self.width}" '
                 f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" role="img" '
                 f'aria-label="{html.escape(self.title)}" font-family="sans-serif" font-size="11">',
                 f"<title>{html.escape(self.title)}</title>",  # shown by the page above the chart, where it wraps
                 f'<rect width="{self.width}" height="{self.height}" fill="#ffffff"/>']
        for value, text in self.x.ticks():
            px, _ = self.px(value, 0)
            parts.append(f'<path stroke="{GRID}" d="M{px},{self.top}V{inner_bottom}"/>'
                         f'<text x="{px}" y="{inner_bottom + 15}" text-anchor="middle" fill="{INK}">'
                         f"{html.escape(text)}</text>")
        for value, text in self.y.ticks():
            _, py = self.px(_domain_start(self.x), value)
            parts.append(f'<path stroke="{GRID}" d="M{self.left},{py}H{inner_right}"/>'
                         f'<text x="{self.left - 6}" y="{py + 4}" text-anchor="end" fill="{INK}">'
                         f"{html.escape(text)}</text>")
        parts.append(f'<path stroke="{INK}" fill="none" d="M{self.left},{self.top}V{inner_bottom}H{inner_right}"/>')
        if self.x_label:
            parts.append(f'<text x="{(self.left + inner_right) / 2}" y="{self.height - 8}" text-anchor="middle" '
                         f'fill="{INK}">{html.escape(self.x_label)}</text>')
        if self.y_label:
            middle = (self.top + inner_bottom) / 2
            parts.append(f'<text transform="translate(14,{middle}) rotate(-90)" text-anchor="middle" '
                         f'fill="{INK}">{html.escape(self.y_label)}</text>')
        parts += self._marks
        parts += self._legend_parts(inner_right)
        parts.append("</svg>")
        return "".join(parts)

    def _legend_parts(self, inner_right: float) -> list[str]:
        parts = []
        x = inner_right
        for label, color in reversed(list(self._legend.items())):
            width = 18 + 6.2 * len(label)
            x -= width + 8
            parts.append(f'<rect x="{x}" y="{self.top - 22}" width="10" height="10" fill="{color}"/>'
                         f'<text x="{x + 14}" y="{self.top - 13}" fill="{INK}">{html.escape(label)}</text>')
        return parts


def _domain_start(scale: Scale) -> float:
    return float(getattr(scale, "lo", 0.0))


def _domain_end(scale: Scale) -> float:
    return float(getattr(scale, "hi", len(getattr(scale, "names", ())) or 1.0))
