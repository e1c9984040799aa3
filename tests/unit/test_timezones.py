"""Wall-clock times in an event's zone: summer and winter in London, a zone far from UTC,
and the clock changes (a time that doesn't exist, a time that happens twice)."""

from __future__ import annotations

from datetime import datetime

import pytest

from services import timezones
from services.timezones import LocalTimeError
from tests.support.factories import utc


@pytest.mark.parametrize("wall_clock, zone, stored, shown", [
    (datetime(2026, 7, 3, 19, 30), "Europe/London", utc(2026, 7, 3, 18, 30),
     "Fri 3 Jul 2026, 19:30 BST"),
    (datetime(2026, 12, 4, 19, 30), "Europe/London", utc(2026, 12, 4, 19, 30),
     "Fri 4 Dec 2026, 19:30 GMT"),
    (datetime(2026, 7, 3, 19, 30), "Asia/Tokyo", utc(2026, 7, 3, 10, 30),
     "Fri 3 Jul 2026, 19:30 JST"),
    (datetime(2026, 7, 3, 9, 0), "Pacific/Honolulu", utc(2026, 7, 3, 19, 0),
     "Fri 3 Jul 2026, 09:00 HST"),
    (datetime(2026, 7, 3, 19, 30), "UTC", utc(2026, 7, 3, 19, 30), "Fri 3 Jul 2026, 19:30 UTC"),
])
def test_a_wall_clock_time_is_stored_in_utc_and_shown_in_its_zone(wall_clock, zone, stored,
                                                                   shown):
    local = timezones.to_utc(wall_clock, zone)
    assert local.utc == stored and not local.repeated
    assert timezones.when(stored, zone) == shown
    assert timezones.form_value(stored, zone) == wall_clock.strftime("%Y-%m-%dT%H:%M")


def test_zones_without_letters_get_a_readable_offset():
    assert timezones.clock(utc(2026, 7, 3, 12, 0), "Asia/Kolkata") == "17:30 IST"
    assert timezones.clock(utc(2026, 7, 3, 12, 0), "America/Sao_Paulo") == "09:00 UTC-03:00"


def test_the_spring_forward_gap_is_refused_with_a_message():
    with pytest.raises(LocalTimeError, match="01:30 doesn't exist on 29 March 2026 in "
                                             "Europe/London: the clocks go forward an hour"):
        timezones.to_utc(datetime(2026, 3, 29, 1, 30), "Europe/London")
    # Either side of the gap is fine.
    assert timezones.to_utc(datetime(2026, 3, 29, 0, 59), "Europe/London").utc == utc(
        2026, 3, 29, 0, 59)
    assert timezones.to_utc(datetime(2026, 3, 29, 2, 0), "Europe/London").utc == utc(
        2026, 3, 29, 1, 0)


def test_the_autumn_overlap_means_the_first_time_and_says_so():
    local = timezones.to_utc(datetime(2026, 10, 25, 1, 30), "Europe/London")
    assert local.repeated and local.utc == utc(2026, 10, 25, 0, 30)  # 01:30 BST, not GMT
    assert timezones.when(local.utc, "Europe/London") == "Sun 25 Oct 2026, 01:30 BST"
    assert not timezones.to_utc(datetime(2026, 10, 25, 2, 30), "Europe/London").repeated


def test_only_real_zone_names_are_accepted():
    assert timezones.is_zone("Europe/London") and timezones.is_zone("UTC")
    assert not timezones.is_zone("Mars/Olympus") and not timezones.is_zone("")
    assert not timezones.is_zone("../../etc/passwd")
    assert "Europe/London" in timezones.zone_names()
