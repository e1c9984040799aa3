"""Organizers: the dashboard and figures, the event form, the door check-in, the export."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from blueprints import charts
from blueprints.forms import CheckInForm, EventForm, SummaryEmailForm, attach_error
from blueprints.helpers import now, render_page_or_fragment, wants_fragment
from extensions import limiter
from services import (
    Busy,
    ServiceError,
    events,
    payouts,
    purchases,
    queue,
    reports,
    summaries,
    tickets,
    timezones,
)
from services.events import EventDetails
from services.payments import PaymentError
from services.text import plural
from services.urls import absolute_url

bp = Blueprint("seller", __name__, url_prefix="/seller")


@bp.before_request
@login_required
def require_login():
    """Every seller page needs a signed-in organizer."""


def _owned_event(event_id: int):
    """The signed-in organizer's event (another's is a 403, an unknown one a 404)."""
    return events.get_owned_event(event_id=event_id, user_id=current_user.id)


@bp.get("")
def dashboard():
    moment = now()
    form = SummaryEmailForm(daily_sales_email=current_user.daily_sales_email)
    return render_template("seller/dashboard.html", now=moment, summary_form=form,
                           rows=reports.organizer_figures(current_user.id, now=moment))


@bp.post("/summary-email")
def summary_email():
    """The dashboard's setting: a daily email of yesterday's sales, or none."""
    form = SummaryEmailForm()
    if not form.validate():
        flash("That setting could not be saved. Please try again.", "error")
        return redirect(url_for("seller.dashboard"), code=303)
    summaries.set_daily_sales_email(user_id=current_user.id,
                                    enabled=bool(form.daily_sales_email.data))
    flash("You'll get a summary of yesterday's sales by email each morning."
          if form.daily_sales_email.data else "Daily sales emails are off.", "success")
    return redirect(url_for("seller.dashboard"), code=303)


def _details(form: EventForm) -> EventDetails:
    return EventDetails(
        name=form.name.data or "",
        description=form.description.data or "",
        location=form.location.data or "",
        starts_at=form.starts_at,
        price_pence=form.price_pence,
        total_tickets=form.capacity,
        timezone=form.timezone.data,
        sale_starts_at=form.sale_starts,
    )


def _event_form() -> EventForm:
    return EventForm(default_zone=current_app.config["DEFAULT_TIMEZONE"])


def _flash_repeated_times(form: EventForm, event) -> None:
    """A wall-clock time the clocks pass twice means its first occurrence: say so."""
    for name in form.repeated_times:
        moment = event.starts_at if name == "event_date" else event.sale_starts_at
        flash(f"The clocks go back around {getattr(form, name).label.text.lower()}: we took "
              f"the first {timezones.clock(moment, event.timezone)}. Edit the event if you "
              "meant the second.", "info")


def _no_picture_to_count() -> bool:
    upload = request.files.get("image")
    return not (current_user.is_authenticated and upload and upload.filename)


# Each picture is decoded and re-encoded, which costs memory and CPU: pictures per
# organizer are limited, across both forms and every process (the limiter's store).
picture_uploads = limiter.shared_limit(
    lambda: current_app.config["IMAGE_UPLOAD_LIMIT"], scope="event-picture",
    key_func=lambda: f"event-picture:{current_user.get_id()}",
    methods=["POST"], exempt_when=_no_picture_to_count,
)


@bp.errorhandler(429)
def too_many_pictures(error):
    """Over the picture limit: the form again as typed, saying why on the picture field."""
    if request.endpoint not in ("seller.new_event", "seller.edit_event"):
        return render_template("errors/error.html", title="Too many requests",
                               text=error.description, code=429), 429
    event = None
    if request.endpoint == "seller.edit_event":
        event = _owned_event(request.view_args["event_id"])
    form = _event_form()
    form.image.errors = [
        f"You've uploaded a lot of pictures lately (the limit is "
        f"{current_app.config['IMAGE_UPLOAD_LIMIT']}). Please try again later, or save "
        "without a picture for now."]
    return render_template("seller/event_form.html", form=form, event=event), 429


@bp.route("/events/new", methods=["GET", "POST"])
@picture_uploads
def new_event():
    form = _event_form()
    if form.is_submitted() and form.validate_event(now=now()):
        try:
            event = events.create_event(
                organizer_id=current_user.id, details=_details(form),
                image=form.image_bytes(), now=now(), draft=form.draft.data,
            )
        except ServiceError as error:
            attach_error(form, error)
        else:
            if event.is_published:
                flash(f"“{event.name}” is published.", "success")
            else:
                flash(f"“{event.name}” is saved as a draft: only you can see it. Publish it "
                      "when it's ready.", "success")
            _flash_repeated_times(form, event)
            return redirect(url_for("events.show", event_id=event.id), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template("seller/event_form.html", form=form, event=None), status


@bp.route("/events/<int:event_id>/edit", methods=["GET", "POST"])
@picture_uploads
def edit_event(event_id: int):
    event = _owned_event(event_id)
    if event.is_cancelled:
        flash("This event was cancelled and can't be edited.", "error")
        return redirect(url_for("events.show", event_id=event.id), code=303)
    form = _event_form()
    if not form.is_submitted():
        form.name.data = event.name
        form.description.data = event.description
        form.location.data = event.location
        form.timezone.data = event.timezone
        form.event_date.data = timezones.form_value(event.starts_at, event.timezone)
        form.sale_starts_at.data = timezones.form_value(event.sale_starts_at, event.timezone)
        form.price.data = f"{event.price_pence / 100:.2f}"
        form.total_tickets.data = str(event.total_tickets)
        form.draft.data = not event.is_published
    elif form.validate_event(now=now(), current_sale_starts_at=event.sale_starts_at):
        was_draft = not event.is_published
        try:
            event = events.update_event(
                event_id=event.id, organizer_id=current_user.id, details=_details(form),
                image=form.image_bytes(), now=now(),
            )
            if not event.is_published and not form.draft.data:
                event = events.publish_event(event_id=event.id, organizer_id=current_user.id,
                                             now=now())
        except ServiceError as error:
            attach_error(form, error)
        else:
            flash("Your changes are saved and the event is published."
                  if was_draft and event.is_published else "Your changes are saved.", "success")
            _flash_repeated_times(form, event)
            return redirect(url_for("events.show", event_id=event.id), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template("seller/event_form.html", form=form, event=event), status


@bp.post("/events/<int:event_id>/publish")
def publish_event(event_id: int):
    """A draft goes public: listed, and open to join (or to its lobby)."""
    try:
        event = events.publish_event(event_id=event_id, organizer_id=current_user.id, now=now())
    except events.EventError as error:
        flash(str(error), "error")
        return redirect(url_for("events.show", event_id=event_id), code=303)
    flash(f"“{event.name}” is published.", "success")
    return redirect(url_for("events.show", event_id=event.id), code=303)


@bp.get("/events/<int:event_id>")
def event_detail(event_id: int):
    event = _owned_event(event_id)
    moment = now()
    sales = reports.daily_sales(event.id)
    on_sale_since = (event.published_at or event.created_at).date()
    until = min(moment, event.cancelled_at or moment, event.starts_at).date()
    return render_template(
        "seller/event.html", event=event, figures=reports.event_figures(event, now=moment),
        sales=sales, chart=charts.sales_chart(sales, since=on_sale_since, until=until),
        tickets=events.tickets_of_event(event.id), is_past=event.is_past(moment),
        refunds=purchases.refund_progress(event.id), audit=events.audit_trail(event.id),
    )


@bp.route("/events/<int:event_id>/checkin", methods=["GET", "POST"])
def checkin(event_id: int):
    """The door: check tickets in by their QR token (a page, or the result fragment).

    Unlike other forms, a check-in answers in place (200) instead of redirecting: the
    answer is about this one scan, and sending it again can only say "already used".
    """
    event = _owned_event(event_id)
    form = CheckInForm()
    result, error, status = None, None, 200
    if form.is_submitted():
        if not form.validate():
            status = 400
        else:
            try:
                result = tickets.check_in(event_id=event.id, token=form.token.data, now=now(),
                                          actor_id=current_user.id)
            except Busy as busy:  # the code stays in the field, to try again
                error, status = str(busy), 503
            else:
                form.token.data = ""  # ready for the next ticket
    tally = result.tally if result else tickets.door_tally(event.id)
    return render_page_or_fragment(
        "seller/checkin.html", "seller/_checkin_result.html", status_code=status,
        event=event, form=form, result=result, error=error, tally=tally, fragment=wants_fragment())


@bp.get("/events/<int:event_id>/attendees.csv")
def attendees_csv(event_id: int):
    """Every ticket of the event as a CSV download (see ``reports.attendee_csv``)."""
    event = _owned_event(event_id)
    response = Response(reports.attendee_csv(event.id), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{reports.attendee_filename(event)}"')
    return response


@bp.get("/events/<int:event_id>/cancel")
def confirm_cancel(event_id: int):
    """The confirmation step: what cancelling will do, and the button that does it."""
    event = _owned_event(event_id)
    return render_template("seller/confirm_cancel.html", event=event,
                           figures=reports.event_figures(event, now=now()))


@bp.post("/events/<int:event_id>/cancel")
def cancel_event(event_id: int):
    before = reports.event_figures(_owned_event(event_id), now=now())
    try:
        events.cancel_event(event_id=event_id, organizer_id=current_user.id, now=now())
    except events.EventError as error:  # already cancelled: say so on the event's page
        flash(str(error), "error")
        return redirect(url_for("seller.event_detail", event_id=event_id), code=303)
    flash(f"The event is cancelled: {_cancel_outcome(before)}. We've emailed you a summary.",
          "success")
    return redirect(url_for("seller.event_detail", event_id=event_id), code=303)


def _cancel_outcome(before: reports.EventFigures) -> str:
    """What a cancel did, from the figures just before it, in words that fit the numbers."""
    held, in_line = before.valid, before.live_offers + before.waiting
    done = []
    if held:
        done.append(f"{plural(held, 'ticket')} {'is' if held == 1 else 'are'} being refunded")
    if in_line:
        done.append(f"{plural(in_line, 'person', 'people')} in line "
                    f"{'has' if in_line == 1 else 'have'} been told")
    return " and ".join(done) or "nobody had a ticket or a place in line"


# One rule for both methods (see events.release): an impossible id is a 404, not a 405.
@bp.route("/tickets/<int:ticket_id>/refund", methods=["GET", "POST"])
def refund_ticket(ticket_id: int):
    """GET: the confirmation before refunding one ticket. POST: refunds it at once."""
    if request.method == "GET":
        ticket = purchases.organizer_ticket(ticket_id=ticket_id, organizer_id=current_user.id)
        return render_template("seller/confirm_refund.html", ticket=ticket)
    try:
        ticket = purchases.refund_ticket(ticket_id=ticket_id, organizer_id=current_user.id,
                                         now=now())
    except queue.QueueError as error:  # used or refunded already: say so on the dashboard
        flash(str(error), "error")
        return redirect(url_for("seller.dashboard"), code=303)
    flash(f"Ticket #{ticket.id} is refunded; its seat goes to the next person in line.", "success")
    return redirect(url_for("seller.event_detail", event_id=ticket.event_id), code=303)


@bp.get("/connect")
def connect():
    """Stripe Connect: onboarding and status of the organizer's own account. With local
    payments there is no account to set up, and the page says only that."""
    status = None
    if current_app.config["PAYMENTS"] != "local":
        try:
            status = payouts.connect_status(user_id=current_user.id)
        except PaymentError as error:
            flash(str(error), "error")
    return render_template("seller/connect.html", status=status,
                           payments=current_app.config["PAYMENTS"])


@bp.post("/connect")
def start_onboarding():
    try:
        url = payouts.onboarding_link(
            user_id=current_user.id,
            # Stripe sends the organizer back here: on BASE_URL, never the request's Host.
            refresh_url=absolute_url("seller.connect"),
            return_url=absolute_url("seller.connect"),
        )
    except ServiceError as error:
        flash(str(error), "error")
        return redirect(url_for("seller.connect"), code=303)
    return redirect(url, code=303)


@bp.post("/connect/dashboard")
def connect_dashboard():
    try:
        link = payouts.dashboard_link(user_id=current_user.id)
    except ServiceError as error:
        flash(str(error), "error")
        return redirect(url_for("seller.connect"), code=303)
    # Local payments have no payment-service dashboard: the organizer's own is this one.
    return redirect(link or url_for("seller.dashboard"), code=303)
