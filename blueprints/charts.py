"""Charts drawn on the server as inline SVG: the geometry here, the markup in a template.

No chart library and no JavaScript: the page is readable as it arrives, and the template
puts a data table beside the picture for anyone who can't see it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from blueprints.helpers import day_label
from services.reports import DaySales

WIDTH, HEIGHT = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 30, 40  # margins for the axis and point labels


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
    """Cumulative tickets sold as a step line over the days the event has been on sale, in a
    WIDTH × HEIGHT box: from 0 on the first day to the total today, so even one day of sales
    reads as a rise from nothing rather than a dot in an empty box."""

    points: list[ChartPoint]  # one per UTC day with sales
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    steps: list[tuple[float, float]]  # the line: flat between sales days, up on each
    labelled: list[ChartPoint]  # points that carry their total as a label
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.steps)

    def anchor_of(self, point: ChartPoint) -> str:
        """How a point's label is anchored, so labels near an edge stay inside the picture."""
        if point.x > self.right - 30:
            return "end"
        return "start" if point.x < self.left + 30 else "middle"

    @property
    def area(self) -> str:
        """The region under the line, down to the axis."""
        (first_x, _), (last_x, _) = self.steps[0], self.steps[-1]
        return f"{first_x:.1f},{self.bottom:.1f} {self.polyline} {last_x:.1f},{self.bottom:.1f}"


# With this many points or fewer, each carries its total; beyond, only the last does.
LABEL_EVERY_POINT_UP_TO = 8


def _nice_step(top: int, ticks: int = 4) -> int:
    """A round step (1, 2, 5 × 10ⁿ) that covers ``top`` in about ``ticks`` steps."""
    raw = max(1, math.ceil(top / ticks))
    magnitude = 10 ** (len(str(raw)) - 1)
    return next(m * magnitude for m in (1, 2, 5, 10) if raw <= m * magnitude)


def sales_chart(days: list[DaySales], *, since: date | None = None,
                until: date | None = None) -> SalesChart | None:
    """The chart of ``days`` (see ``services.reports.daily_sales``); None without sales.

    The day axis runs from ``since`` (the day sales opened) to ``until`` (today, or the
    event's day once it is over), and always at least from the day before the first sale.
    """
    if not days:
        return None
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    total = days[-1].cumulative
    step = _nice_step(total)
    y_max = step * math.ceil(total / step)
    first = min(since or days[0].day, days[0].day)
    last = max(until or days[-1].day, days[-1].day)
    if last == first:
        first -= timedelta(days=1)
    span = (last - first).days

    def x_of(day: date) -> float:
        return left + (day - first).days / span * (right - left)

    def y_of(count: int) -> float:
        return bottom - count / y_max * (bottom - top)

    points = [ChartPoint(x_of(d.day), y_of(d.cumulative), d.day, d.sold, d.cumulative)
              for d in days]
    steps = [(x_of(first), y_of(0))]
    before = 0
    for point in points:
        steps += [(point.x, y_of(before)), (point.x, point.y)]
        before = point.cumulative
    steps.append((x_of(last), y_of(total)))
    labelled = points if len(points) <= LABEL_EVERY_POINT_UP_TO else points[-1:]
    y_ticks = [Tick(y_of(value), str(value)) for value in range(0, y_max + 1, step)]
    x_ticks = [Tick(x_of(first), day_label(first), "start"),
               Tick(x_of(last), day_label(last), "end")]
    return SalesChart(points=points, y_ticks=y_ticks, x_ticks=x_ticks, steps=steps,
                      labelled=labelled)
