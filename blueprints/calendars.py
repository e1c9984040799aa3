"""Calendar files: ``GET /events/<id>/calendar.ics``, an event for any calendar app."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app
from flask_login import current_user

from blueprints.helpers import now
from services import calendars, events, reports
from services.urls import absolute_url

bp = Blueprint("calendars", __name__)


@bp.get("/events/<int:event_id>/calendar.ics")
def event_ics(event_id: int):
    """Anyone may add a published event to their calendar; a draft is its organizer's."""
    event = events.get_visible_event(
        event_id, viewer_id=lambda: current_user.id if current_user.is_authenticated else None)
    body = calendars.event_ics(
        event, url=absolute_url("events.show", event_id=event.id),
        host=urlsplit(current_app.config["BASE_URL"]).hostname or "tickethub", now=now())
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{reports.event_filename(event, "ics")}"')
    return response
