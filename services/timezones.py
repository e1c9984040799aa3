"""Time zones: events happen somewhere, so their times are typed and shown as wall-clock times
in the event's zone (an IANA name), and stored in UTC.

Wall-clock times near a clock change need care: in the spring-forward gap a time does not
exist (01:30 on 29 March 2026 in London), and in the autumn overlap it happens twice (01:30
on 25 October 2026). A time in a gap is refused with a message saying so; a repeated time
means its first occurrence (summer time), and ``LocalTime.repeated`` says so to be stated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

UTC = "UTC"


class LocalTimeError(ValueError):
    """A wall-clock time that can't be placed (a clock-change gap), or an unknown zone."""


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows (the ``tzdata`` package ships them everywhere),
    sorted, legacy aliases ("US/Eastern", "GB") left out."""
    names = {name for name in available_timezones()
             if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/", "posix/",
                                                      "right/"))}
    return tuple(sorted(names | {UTC}))


def is_zone(name: str | None) -> bool:
    return bool(name) and name in zone_names()


@cache
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise LocalTimeError(f"Unknown time zone {name!r}.") from None


@dataclass(frozen=True)
class LocalTime:
    utc: datetime
    repeated: bool = False  # the clocks go back at this time: the first occurrence is meant


def to_utc(wall_clock: datetime, zone_name: str) -> LocalTime:
    """A naive wall-clock time in ``zone_name`` as an aware UTC time."""
    tz = zone(zone_name)
    first = wall_clock.replace(tzinfo=tz, fold=0)
    second = wall_clock.replace(tzinfo=tz, fold=1)
    back = first.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None)
    if back != wall_clock.replace(fold=0):
        shift = second.utcoffset() - first.utcoffset()
        minutes = abs(int(shift.total_seconds() // 60))
        raise LocalTimeError(
            f"{wall_clock:%H:%M} doesn't exist on {wall_clock.day} {wall_clock:%B %Y} in "
            f"{zone_name}: the clocks go forward {_span(minutes)} then. Choose a time before or "
            f"after the change.")
    repeated = first.utcoffset() != second.utcoffset()
    return LocalTime(first.astimezone(timezone.utc), repeated)


def _span(minutes: int) -> str:
    if minutes == 60:
        return "an hour"
    return f"{minutes} minutes" if minutes < 60 else f"{minutes / 60:g} hours"


def local(moment: datetime, zone_name: str | None) -> datetime:
    return moment.astimezone(zone(zone_name or UTC))


def abbreviation(moment: datetime, zone_name: str | None) -> str:
    """'BST', 'GMT', 'JST'; zones without letters ('+0530') get 'UTC+05:30'."""
    name = local(moment, zone_name).tzname() or ""
    if name[:1] in "+-":
        sign, digits = name[0], name[1:]
        hours, minutes = digits[:2], digits[2:4] or "00"
        return f"UTC{sign}{hours}:{minutes}"
    return name


def when(moment: datetime | None, zone_name: str | None = UTC) -> str:
    """'Fri 3 Jul 2026, 19:30 BST': the wall-clock time in the zone, with its abbreviation."""
    if moment is None:
        return ""
    there = local(moment, zone_name)
    return f"{there:%a} {there.day} {there:%b %Y, %H:%M} {abbreviation(moment, zone_name)}"


def clock(moment: datetime | None, zone_name: str | None = UTC) -> str:
    """'19:30 BST'."""
    if moment is None:
        return ""
    return f"{local(moment, zone_name):%H:%M} {abbreviation(moment, zone_name)}"


def form_value(moment: datetime | None, zone_name: str | None) -> str:
    """The event form's ``YYYY-MM-DDTHH:MM`` for a stored time, in the event's zone."""
    return "" if moment is None else f"{local(moment, zone_name):%Y-%m-%dT%H:%M}"
