"""Paying: checkout, the pages Stripe returns to, the signed webhook, the local payment page."""

from __future__ import annotations

import stripe
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from blueprints.helpers import checkout_urls, now, render_page_or_fragment
from extensions import csrf, db, limiter
from models import CheckoutStatus
from services import Busy, ServiceError, payments, purchases, tickets, webhooks

bp = Blueprint("payments", __name__)

@bp.post("/events/<int:event_id>/checkout")
@login_required
def checkout(event_id: int):
    try:
        url = purchases.start_checkout(event_id=event_id, user_id=current_user.id, now=now(),
                                       urls=checkout_urls())
    except ServiceError as error:  # no live offer, payments down, busy: back to the event
        flash(str(error), "error")
        return redirect(url_for("events.show", event_id=event_id), code=303)
    return redirect(url, code=303)


def _session():
    return purchases.get_session(session_id=request.args.get("session_id", ""),
                                 user_id=current_user.id)


@bp.get("/checkout/success")
@login_required
def success():
    """What became of the payment; the result fragment polls here until it is settled. Once
    paid: the receipt, the door code and the ways to keep the ticket."""
    session = _session()
    receipt = tickets.receipt_for(session.ticket) if session.ticket is not None else None
    return render_page_or_fragment("payments/success.html", "payments/_result.html",
                                   per_user=True, session=session, receipt=receipt)


@bp.get("/checkout/cancel")
@login_required
def cancel():
    session = _session()
    flash("Payment cancelled. Your ticket is still held for you until the offer ends.", "info")
    return redirect(url_for("events.show", event_id=session.event_id), code=303)


@bp.post("/webhooks/stripe")
@csrf.exempt
@limiter.exempt
def stripe_webhook():
    try:
        outcome = webhooks.receive_webhook(
            request.get_data(), request.headers.get("Stripe-Signature"), now=now())
    except (ValueError, stripe.SignatureVerificationError) as error:
        db.session.rollback()
        current_app.logger.warning("webhook refused: %s", error)
        return {"error": "invalid payload or signature"}, 400
    except (payments.PaymentError, Busy):
        db.session.rollback()
        current_app.logger.warning("webhook failed transiently; Stripe will retry")
        return {"error": "temporarily unavailable"}, 503
    return {"received": True, "outcome": outcome}


# ------------------------------------------------------------ the local payment page


@bp.route("/pay/local/<session_id>", methods=["GET", "POST"])
@login_required
def local_page(session_id: str):
    if current_app.config["PAYMENTS"] != "local":
        abort(404)  # with Stripe payments there is no local payment page
    user_id = current_user.id  # read once: paying commits, which expires the loaded user
    message, status = None, 200
    action = request.form.get("action")
    if request.method == "POST" and action == "pay":
        # A repeated (or parallel) press lands on the same result page as the first.
        # (Someone else's session: NotFound, answered 404 like the page itself.)
        try:
            webhooks.pay_locally(session_id=session_id, user_id=user_id, now=now())
        except (payments.PaymentError, Busy) as error:
            db.session.rollback()
            message, status = str(error), 503
        else:
            return redirect(url_for("payments.success", session_id=session_id), code=303)
    session = purchases.get_session(session_id=session_id, user_id=user_id)
    if request.method == "POST" and action != "pay" and session.status == CheckoutStatus.OPEN:
        if action == "cancel":
            return redirect(url_for("payments.cancel", session_id=session.id), code=303)
        if action == "decline":
            message, status = "Your card was declined. No money was taken; try again.", 402
        else:
            message, status = "Choose Pay, Decline or Cancel.", 400
    return render_template("payments/local.html", session=session, message=message,
                           now_moment=now()), status
