"""Public pages: the event list, an event's page, its live status, joining and leaving."""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_login import current_user, login_required
from limits import parse_many

from blueprints.auth import SESSION_ID
from blueprints.helpers import (
    checkout_urls,
    now,
    page_number,
    render_page_or_fragment,
    shared,
    vary_by_fragment,
    wants_fragment,
)
from extensions import limiter, login_manager
from models import EntryStatus
from services import (
    NotFound,
    ServiceError,
    accounts,
    draws,
    events,
    purchases,
    queue,
    queue_reads,
    status_reads,
)

bp = Blueprint("events", __name__)


@bp.get("/")
def index():
    q = request.args.get("q", "")
    results = events.search_upcoming(
        q=q, page=page_number(), per_page=current_app.config["EVENTS_PER_PAGE"], now=now()
    )
    return render_template("events/index.html", results=results, q=q)


def _refreshed(event, moment, clock=None):
    """The event and its clock (read now unless given, just read), after passing on any
    offer that ran out before a worker could expire it.

    Rare (the deadline task normally gets there first), and done once: the readers after
    this one find nothing stale.
    """
    clock = clock or queue_reads.event_clock(event.id)
    if clock.needs_refresh(moment):
        try:
            queue.refresh_event(event_id=event.id, now=moment)
        except ServiceError:
            return event, clock  # busy: the stale offers are still shown as expired
        event, clock = events.get_event(event.id), queue_reads.event_clock(event.id)
    return event, clock


def _session_user_id() -> int | None:
    """Who is signed in, from the signed session alone: no user loaded, nothing written.
    (An unchanged poll only needs it to tell viewers apart; any page that shows their
    state loads the user through Flask-Login as usual.)"""
    raw = session.get("_user_id")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


def status_context(event, *, error: str | None = None, moment=None, clock=None) -> dict:
    """Everything the status widget shows: availability, this user's place in line, and
    how soon the page asks again."""
    moment = moment or now()
    event, clock = _refreshed(event, moment, clock)
    user_id = current_user.id if current_user.is_authenticated else None
    status = None
    if user_id is not None:
        status = queue_reads.queue_status(event_id=event.id, user_id=user_id, now=moment)
    return _status_fields(event, clock, status, user_id=user_id, moment=moment, error=error)


def _status_fields(event, clock, status, *, user_id: int | None, moment, error=None) -> dict:
    final = event.is_cancelled or event.is_past(moment) or not event.is_published
    return {
        "event": event,
        "availability": queue_reads.availability(event, now=moment, clock=clock),
        "status": status,
        "is_past": event.is_past(moment),
        "now_moment": moment,
        "error": error,
        # Someone not signed in only watches the shared remaining-tickets fragment, whose
        # cadence is the same for all (it may come from a proxy's cache).
        "poll_seconds": None if final else (
            queue_reads.poll_seconds(status, now=moment) if user_id is not None
            else queue_reads.POLL_WATCHING),
        "etag": clock.fingerprint(user_id=user_id, now=moment),
        # The earliest live offer's deadline: when a ticket can come back at the latest.
        "next_offer_end": clock.next_deadline if clock.next_deadline and
        clock.next_deadline > moment else None,
    }


def _viewer_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None


@bp.get("/events/<int:event_id>")
def show(event_id: int):
    event = events.get_visible_event(event_id, viewer_id=_viewer_id)
    html = render_template("events/show.html", **status_context(event))
    return vary_by_fragment(make_response(html), per_user=True)


@bp.get("/events/<int:event_id>/draw")
def draw(event_id: int):
    """The fair-start record: the commitment before the on-sale; the seed and every lobby
    entry's place after it (../shared/CONTRACT.md, "Fair start")."""
    moment = now()
    event, _ = _refreshed(events.get_published_event(event_id), moment)
    record = draws.draw_record(event)
    if record is None:
        raise NotFound("This event has no on-sale time, so there is no draw to show.")
    mine = None
    if current_user.is_authenticated:
        entry = queue_reads.latest_entry(event_id=event.id, user_id=current_user.id)
        mine = entry.ref if entry is not None else None
    return render_template("events/draw.html", event=event, record=record, my_ref=mine)


def _poll_key() -> str:
    user_id = _session_user_id()
    return f"poll:{user_id}" if user_id is not None else f"poll-ip:{request.remote_addr}"


@functools.cache
def _parsed_limits(text: str) -> tuple:
    return tuple(parse_many(text))


def _poll_too_fast() -> float | None:
    """Seconds until this viewer may poll again if they went over STATUS_POLL_LIMIT (per
    person, or per address signed out), else None.

    Counted with one hit in the limiter's own storage (Redis when configured, so across
    worker processes; in memory while it is away, as for every limit), not through
    Flask-Limiter's decorator, whose bookkeeping cost a third of an unchanged poll.
    """
    if not limiter.enabled:
        return None
    key = _poll_key()
    for item in _parsed_limits(current_app.config["STATUS_POLL_LIMIT"]):
        if not limiter.hit(item, "status-poll", key):
            reset_at = limiter.limiter.get_window_stats(item, "status-poll", key).reset_time
            return max(1.0, reset_at - time.time())
    return None


@limiter.request_filter
def _poll_counted_by_its_view() -> bool:
    """Flask-Limiter leaves the poll to ``_poll_too_fast`` (as ``exempt`` would, but before
    it resolves any limit, which costs as much again)."""
    return request.endpoint == "events.status"


@bp.get("/events/<int:event_id>/status")
def status(event_id: int):
    """The widget HTMX polls, the waiting room's hot path.

    Unchanged since this viewer's last poll: a 304 from the event's clock (one indexed read
    at most, shared by every poll of the event in this process for up to
    ``STATUS_CLOCK_MAX_AGE`` seconds), with no user loaded, no template and no session
    written. Changed: the widget, rendered afresh from one statement for a signed-in
    viewer (``_lean_status_context``), the ordinary way for anyone else. Every poll counts
    against ``STATUS_POLL_LIMIT`` first.
    """
    if (wait := _poll_too_fast()) is not None:
        # Polling too fast: keep what is on screen and come back later.
        response = make_response("Too many status requests; slowing down.", 429)
        response.headers["HX-Reswap"] = "none"
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    moment, user_id = now(), _session_user_id()
    max_age = current_app.config["STATUS_CLOCK_MAX_AGE"]
    clock = queue_reads.cached_event_clock(event_id, max_age=max_age)
    if clock is not None and (etag := _unchanged_etag(clock, moment, user_id)):
        return _private(make_response("", 304), etag)
    session_id = session.get(SESSION_ID)
    # The event, its clock and the viewer's own row, read now in one statement.
    read = status_reads.poll_row(event_id, user_id=user_id, now=moment,
                                 session_id=session_id if isinstance(session_id, str) else None)
    if read is None or not read[1].published:
        raise NotFound("We couldn't find that event.")
    row, clock = read
    if etag := _unchanged_etag(clock, moment, user_id):
        return _private(make_response("", 304), etag)
    context = _lean_status_context(row, clock, moment)
    if context is None:
        context = status_context(events.get_event(event_id), moment=moment, clock=clock)
    response = make_response(render_template("events/_status.html", **context))
    return _private(response, context["etag"])


def _unchanged_etag(clock: queue_reads.EventClock, moment, user_id: int | None) -> str | None:
    """The ETag viewer ``user_id`` sent, if what they'd be shown now is unchanged since."""
    if clock.needs_refresh(moment):
        return None
    etag = clock.fingerprint(user_id=user_id, now=moment)
    return etag if etag in request.if_none_match else None


def _lean_status_context(row, clock: queue_reads.EventClock, moment) -> dict | None:
    """A signed-in waiter's widget from the row just read (services/status_reads.py), the
    user it shows taken from it rather than loaded; None when that path can't answer (see
    ``viewer_status``) and the ordinary one must."""
    # Flask-Login's session protection, as its own load does first (a new address or
    # browser marks the session not fresh; in "strong" mode it signs the cookie out).
    if row.user_id is None or login_manager._session_protection_failed():
        return None
    view = status_reads.viewer_status(row, clock, now=moment)
    if view is None:
        return None
    # What Flask-Login's own load would have set (blueprints/auth.py load_user checks the
    # same session, in the same way): the templates' current_user, with no second query.
    login_manager._update_request_context_with_user(view.user)
    return _status_fields(view.event, view.clock, view.status, user_id=view.user.id,
                          moment=moment)


def _private(response, etag: str):
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return vary_by_fragment(response, per_user=True)


@bp.get("/events/<int:event_id>/availability")
def availability(event_id: int):
    """The remaining tickets alone, identical for every viewer: no cookie read or set, and
    public caching, so a reverse proxy or CDN answers most of these (deploy/nginx/)."""
    moment = now()
    event, clock = _refreshed(events.get_published_event(event_id), moment)
    seats = queue_reads.availability(event, now=moment, clock=clock)
    final = event.is_cancelled or event.is_past(moment)
    etag = "-".join(str(part) for part in (
        event.id, seats.total, seats.sold, seats.reserved, int(event.is_cancelled),
        int(event.is_past(moment))))
    if etag in request.if_none_match:
        response = make_response("", 304)
    else:
        # Straight from the Jinja environment: the app's context processors would load the
        # signed-in user, and this answer must not depend on (or even read) who asks.
        template = current_app.jinja_env.get_template("events/_availability.html")
        response = make_response(template.render(
            event=event, availability=seats, status=None, is_past=event.is_past(moment),
            poll_seconds=None if final else queue_reads.POLL_WATCHING, shared=True))
    response.set_etag(etag)
    return shared(response, max_age=current_app.config["AVAILABILITY_MAX_AGE"])


def _after_action(event_id: int, *, error: ServiceError | None = None, message: str | None = None,
                  code: int | None = None):
    """Answer a queue action: the widget for HTMX, else redirect (or the page with the error)."""
    event = events.get_visible_event(event_id, viewer_id=_viewer_id)
    if error is None and not wants_fragment():
        if message:
            flash(message, "success")
        return redirect(url_for("events.show", event_id=event_id), code=303)
    return render_page_or_fragment(
        "events/show.html", "events/_status.html",
        status_code=code or (error.status_code if error else 200), per_user=True,
        **status_context(event, error=str(error) if error else None))


def _join_key() -> str:
    """Joins are limited per person per event (QUEUE_JOIN_LIMIT): the limit stops churn on
    one event's line, and never holds anyone back from another event."""
    event_id = request.view_args["event_id"]
    if current_user.is_authenticated:
        return f"join:{current_user.id}:{event_id}"
    return f"join-ip:{request.remote_addr}:{event_id}"


@bp.post("/events/<int:event_id>/join")
@login_required
@limiter.limit(
    lambda: current_app.config["QUEUE_JOIN_LIMIT"],
    key_func=_join_key,
    deduct_when=lambda response: response.status_code < 400,
)
def join(event_id: int):
    user_id = current_user.id  # read once: the join's commit expires the loaded user
    try:
        accounts.ensure_may_join(user_id=user_id)
        # The buyer sees the outcome in this answer: a ticket held at once needs no email.
        entry = queue.join_queue(event_id=event_id, user_id=user_id, now=now(), watching=True)
    except ServiceError as error:  # refused: the widget again, saying why (unknown event: 404)
        return _after_action(event_id, error=error)
    if entry.status == EntryStatus.OFFERED:
        return _pay_at_once(event_id, user_id)
    if wants_fragment():
        return _after_action(event_id)
    # The event page's own status says it ("You're in the lobby", "You are number N in
    # line"): no flash message, so the 303 leaves the signed session cookie as it was.
    return redirect(url_for("events.show", event_id=event_id), code=303)


def _pay_at_once(event_id: int, user_id: int):
    """A ticket was free and held on joining: straight on to pay for it (one click from
    "Buy ticket" to the payment page; the hold keeps the seat meanwhile). Should the
    payment page be out of reach, the event page shows the held ticket and "Buy now"."""
    try:
        url = purchases.start_checkout(event_id=event_id, user_id=user_id, now=now(),
                                       urls=checkout_urls())
    except ServiceError as error:
        return _after_action(event_id, message=f"A ticket is held for you. {error}")
    if wants_fragment():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


# One rule for both methods: two rules on one path would answer an impossible id with a
# 405 (Werkzeug matches the other rule's method before the id converter refuses) instead of
# a 404.
@bp.route("/events/<int:event_id>/release", methods=["GET", "POST"])
@login_required
def release(event_id: int):
    """GET: the confirmation before releasing an offer or leaving the line or the lobby
    (what it means, and the form that posts here). POST: acts at once."""
    if request.method == "GET":
        return _confirm_release(event_id)
    try:
        queue.release(event_id=event_id, user_id=current_user.id, now=now())
    except ServiceError as error:  # refused: the widget again, saying why (unknown event: 404)
        return _after_action(event_id, error=error)
    # The status on the event page says what happened ("You left the waiting list"): once.
    return _after_action(event_id)


def _confirm_release(event_id: int):
    event = events.get_visible_event(event_id, viewer_id=_viewer_id)
    status = queue_reads.queue_status(event_id=event.id, user_id=current_user.id, now=now())
    if status.status not in (queue_reads.ViewerStatus.OFFERED, queue_reads.ViewerStatus.WAITING,
                             queue_reads.ViewerStatus.LOBBY):
        flash("You have no ticket offer or place in line to give up here.", "info")
        return redirect(url_for("events.show", event_id=event.id), code=303)
    return render_template("events/confirm_release.html", event=event, status=status)


@bp.errorhandler(429)
def rate_limited(error):
    """Joining too often (the join is the blueprint's one Flask-Limiter route)."""
    limit = limiter.current_limit
    remaining = max(0.0, limit.reset_at - time.time()) if limit else 60.0
    minutes = max(1, math.ceil(int(remaining) / 60))  # a full window reads "30 minutes"
    text = (f"You've joined the waiting list too many times. "
            f"Please wait {minutes} minutes before trying again.")
    response = _after_action(request.view_args["event_id"], error=ServiceError(text), code=429)
    response.headers["Retry-After"] = str(max(1, math.ceil(remaining)))
    return response


@bp.get("/uploads/<path:name>")
def upload(name: str):
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    response = send_from_directory(folder, name, max_age=86400)
    return response
