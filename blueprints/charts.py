"""Charts drawn on the server as inline SVG: the geometry here, the markup in a template.

No chart library and no JavaScript: the page is readable as it arrives, and the template
puts a data table beside the picture for anyone who can't see it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from blueprints.helpers import day_label
from services.reports import DaySales

WIDTH, HEIGHT = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 14, 40  # margins for the axis labels


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    day: date
    sold: int
    cumulative: int


@dataclass(frozen=True)
class Tick:
    position: float  # x for the day axis, y for the count axis
    label: str
    anchor: str = "end"  # SVG text-anchor, so edge labels stay inside the picture


@dataclass(frozen=True)
class SalesChart:
    """Cumulative tickets sold, one point per UTC day with sales, in a WIDTH × HEIGHT box."""

    points: list[ChartPoint]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def _nice_step(top: int, ticks: int = 4) -> int:
    """A round step (1, 2, 5 × 10ⁿ) that covers ``top`` in about ``ticks`` steps."""
    raw = max(1, math.ceil(top / ticks))
    magnitude = 10 ** (len(str(raw)) - 1)
    return next(m * magnitude for m in (1, 2, 5, 10) if raw <= m * magnitude)


def sales_chart(days: list[DaySales]) -> SalesChart | None:
    """The chart of ``days`` (see ``services.reports.daily_sales``); None without sales."""
    if not days:
        return None
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    step = _nice_step(days[-1].cumulative)
    y_max = step * math.ceil(days[-1].cumulative / step)
    first, last = days[0].day, days[-1].day
    span = (last - first).days

    def x_of(day: date) -> float:
        if span == 0:
            return (left + right) / 2
        return left + (day - first).days / span * (right - left)

    def y_of(count: int) -> float:
        return bottom - count / y_max * (bottom - top)

    points = [ChartPoint(x_of(d.day), y_of(d.cumulative), d.day, d.sold, d.cumulative)
              for d in days]
    y_ticks = [Tick(y_of(value), str(value)) for value in range(0, y_max + 1, step)]
    if span == 0:
        x_ticks = [Tick(x_of(first), day_label(first), "middle")]
    else:
        x_ticks = [Tick(x_of(first), day_label(first), "start"),
                   Tick(x_of(last), day_label(last), "end")]
    return SalesChart(points=points, y_ticks=y_ticks, x_ticks=x_ticks)
