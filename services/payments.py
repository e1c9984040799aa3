"""The payment gateway seam: Stripe (the official library) or the local payment page.

``gateway()`` picks the implementation from ``PAYMENTS``. Both speak in Stripe's terms
(Checkout Sessions, payment intents with manual capture, refunds, Connect accounts) so the
purchase logic in ``services/purchases.py`` is the same for both, and both deliver their
results as signed Stripe-shaped webhook events verified by ``verify_webhook``.

Charges are **destination charges**: the platform creates the payment and Stripe moves
the price less ``application_fee_amount`` to the organizer's Express account. The buyer
sees one merchant, refunds and disputes are handled in one place (the platform), and the
organizer needs no Checkout integration of their own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime

import stripe
from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import CheckoutSession, LocalPayment
from services import ServiceError


class PaymentError(ServiceError):
    """The payment service failed or is unreachable; retrying may succeed."""

    status_code = 502

    def __init__(self, message: str = "The payment service isn't answering right now. "
                                      "Please try again in a moment."):
        super().__init__(message)


@dataclass(frozen=True)
class NewSession:
    id: str
    url: str | None  # the payment service's page; None: the app's own local payment page


@dataclass(frozen=True)
class AccountStatus:
    details_submitted: bool
    charges_enabled: bool
    requirements_due: list[str] = field(default_factory=list)


def webhook_secret() -> str:
    """``STRIPE_WEBHOOK_SECRET``; the local page signs with one derived from SECRET_KEY."""
    configured = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if configured:
        return configured
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), b"local-webhook-secret",
                      hashlib.sha256).hexdigest()
    return f"whsec_local_{digest}"


def verify_webhook(payload: bytes, signature: str | None) -> dict:
    """The event as a dict, if ``signature`` is Stripe's signature of ``payload``.

    Raises ValueError (bad payload: not UTF-8, not JSON, not a JSON object) or
    stripe.SignatureVerificationError (bad signature).
    """
    if not signature:
        raise stripe.SignatureVerificationError("missing Stripe-Signature header", signature)
    text = payload.decode("utf-8")
    stripe.WebhookSignature.verify_header(text, signature, webhook_secret(),
                                          stripe.Webhook.DEFAULT_TOLERANCE)
    event = json.loads(text)
    if not isinstance(event, dict):
        raise ValueError("the webhook body is not a JSON object")
    return event


def sign_webhook(payload: str, *, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload``, made the way Stripe makes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def gateway():
    if current_app.config["PAYMENTS"] == "stripe":
        return StripeGateway(
            api_key=current_app.config["STRIPE_SECRET_KEY"],
            api_base=current_app.config.get("STRIPE_API_BASE"),
        )
    return LocalGateway()


class StripeGateway:
    name = "stripe"

    def __init__(self, *, api_key: str, api_base: str | None = None):
        if not api_key:
            raise PaymentError("Payments are not configured (STRIPE_SECRET_KEY is missing).")
        options = {"base_addresses": {"api": api_base}} if api_base else {}
        retries = current_app.config.get("STRIPE_MAX_NETWORK_RETRIES", 2)
        self.client = stripe.StripeClient(api_key, max_network_retries=retries, **options)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as error:
            current_app.logger.warning("stripe call failed: %s", error)
            raise PaymentError() from error

    def create_checkout_session(self, *, key: str, amount_pence: int, fee_pence: int,
                                description: str, metadata: dict, success_url: str,
                                cancel_url: str, expires_at: datetime, destination: str | None,
                                customer_email: str) -> NewSession:
        intent = {"capture_method": "manual", "metadata": metadata,
                  "description": description}
        if destination:
            intent["application_fee_amount"] = fee_pence
            intent["transfer_data"] = {"destination": destination}
        session = self._call(self.client.v1.checkout.sessions.create, params={
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": "gbp", "unit_amount": amount_pence,
                "product_data": {"name": description}}}],
            "payment_intent_data": intent,
            "metadata": metadata,
            "client_reference_id": str(metadata["entry_id"]),
            "customer_email": customer_email,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": int(expires_at.timestamp()),
        }, options={"idempotency_key": key})
        return NewSession(session.id, session.url)

    def expire_checkout_session(self, session_id: str) -> bool:
        """Close the session at Stripe. False when it cannot be closed because the buyer
        already paid (it is ``complete``): the payment must be fulfilled, not dropped."""
        try:
            self.client.v1.checkout.sessions.expire(session_id)
        except stripe.InvalidRequestError:
            # Stripe only expires open sessions: this one is complete or already expired.
            return self.completed_payment(session_id) is None
        except stripe.StripeError as error:
            current_app.logger.warning("stripe call failed: %s", error)
            raise PaymentError() from error
        return True

    def completed_payment(self, session_id: str) -> str | None:
        """The payment intent of the Checkout Session, if the buyer completed it."""
        session = self._call(self.client.v1.checkout.sessions.retrieve, session_id)
        if session.status != "complete":
            return None
        intent = session.payment_intent
        return intent if isinstance(intent, str) or intent is None else intent.id

    def payment_status(self, payment_intent_id: str) -> str:
        return self._call(self.client.v1.payment_intents.retrieve, payment_intent_id).status

    def capture(self, payment_intent_id: str) -> None:
        self._call(self.client.v1.payment_intents.capture, payment_intent_id,
                   options={"idempotency_key": f"capture-{payment_intent_id}"})

    def cancel(self, payment_intent_id: str) -> None:
        self._call(self.client.v1.payment_intents.cancel, payment_intent_id,
                   options={"idempotency_key": f"cancel-{payment_intent_id}"})

    def refund(self, payment_intent_id: str, *, key: str) -> str:
        refund = self._call(self.client.v1.refunds.create, params={
            "payment_intent": payment_intent_id,
            # Take the money back from the organizer and return the platform's fee too.
            "reverse_transfer": True, "refund_application_fee": True,
        }, options={"idempotency_key": key})
        return refund.id

    def create_account(self, *, email: str) -> str:
        account = self._call(self.client.v1.accounts.create, params={
            "type": "express", "country": "GB", "email": email,
            "capabilities": {"card_payments": {"requested": True},
                             "transfers": {"requested": True}},
        })
        return account.id

    def account_link(self, account_id: str, *, refresh_url: str, return_url: str) -> str:
        link = self._call(self.client.v1.account_links.create, params={
            "account": account_id, "refresh_url": refresh_url, "return_url": return_url,
            "type": "account_onboarding"})
        return link.url

    def account_status(self, account_id: str) -> AccountStatus:
        account = self._call(self.client.v1.accounts.retrieve, account_id)
        return account_status_from(account.to_dict())

    def dashboard_link(self, account_id: str) -> str:
        return self._call(self.client.v1.accounts.login_links.create, account_id).url


def account_status_from(account: dict) -> AccountStatus:
    requirements = account.get("requirements") or {}
    return AccountStatus(
        details_submitted=bool(account.get("details_submitted")),
        charges_enabled=bool(account.get("charges_enabled")),
        requirements_due=list(requirements.get("currently_due") or []),
    )


_INSERT_PAYMENT = insert(LocalPayment.__table__)


class LocalGateway:
    """Payments without Stripe: the app's own payment page and ledger (``LocalPayment``).

    Clearly a test payment page; no card data is ever asked for. What it produces goes
    through the same signed-webhook path as Stripe's events.
    """

    name = "local"

    def create_checkout_session(self, *, key: str, amount_pence: int, fee_pence: int,
                                description: str, metadata: dict, success_url: str,
                                cancel_url: str, expires_at: datetime, destination: str | None,
                                customer_email: str) -> NewSession:
        return NewSession(f"cs_local_{secrets.token_urlsafe(18)}", None)

    def expire_checkout_session(self, session_id: str) -> bool:
        """Nothing to close at a gateway (the local page refuses payment once the session
        is not open); False when the buyer already paid."""
        return self.completed_payment(session_id) is None

    def completed_payment(self, session_id: str) -> str | None:
        """The payment authorised on the local page for this session, if any."""
        return db.session.scalar(
            select(LocalPayment.id).where(LocalPayment.checkout_session_id == session_id))

    def _payment(self, payment_intent_id: str) -> LocalPayment:
        payment = db.session.get(LocalPayment, payment_intent_id)
        if payment is None:
            raise PaymentError(f"Unknown payment {payment_intent_id}.")
        return payment

    def payment_status(self, payment_intent_id: str) -> str:
        return self._payment(payment_intent_id).status

    def _move(self, payment_intent_id: str, *, to: str, allowed_from: tuple[str, ...]) -> bool:
        """One conditional update, so a parallel capture and cancel cannot both win."""
        moved = db.session.execute(
            update(LocalPayment)
            .where(LocalPayment.id == payment_intent_id, LocalPayment.status.in_(allowed_from))
            .values(status=to)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if not moved:
            self._payment(payment_intent_id)  # unknown payment: PaymentError
        return bool(moved)

    def capture(self, payment_intent_id: str) -> None:
        if not self._move(payment_intent_id, to="succeeded",
                          allowed_from=("requires_capture", "succeeded")):
            raise PaymentError("That payment's authorisation was cancelled.")

    def cancel(self, payment_intent_id: str) -> None:
        self._move(payment_intent_id, to="canceled", allowed_from=("requires_capture",))

    def refund(self, payment_intent_id: str, *, key: str) -> str:
        payment = self._payment(payment_intent_id)
        if payment.status != "succeeded":
            raise PaymentError("Only a captured payment can be refunded.")
        payment.refunded_pence = payment.amount_pence
        db.session.commit()
        return f"re_local_{hashlib.sha256(key.encode()).hexdigest()[:24]}"

    def create_account(self, *, email: str) -> str:
        return f"acct_local_{secrets.token_hex(8)}"

    def account_link(self, account_id: str, *, refresh_url: str, return_url: str) -> str:
        return return_url

    def account_status(self, account_id: str) -> AccountStatus:
        return AccountStatus(details_submitted=True, charges_enabled=True)

    def dashboard_link(self, account_id: str) -> None:
        return None  # no payment-service dashboard: the organizer's own one is the app's

    # -- the local page's "Pay" button

    @staticmethod
    def new_payment_id() -> str:
        return f"pi_local_{secrets.token_urlsafe(18)}"

    def record_captured(self, payment_id: str, *, session_id: str, amount_pence: int) -> None:
        """The ledger's row of a payment authorised and captured at once, written in the
        transaction that gives its seat (``purchases.pay_local_offer``): the two commit
        together or not at all, so no money is ever taken without a seat. A second payment
        for the session breaks the ledger's unique index (IntegrityError)."""
        db.session.execute(_INSERT_PAYMENT, {
            "id": payment_id, "checkout_session_id": session_id, "amount_pence": amount_pence,
            "status": "succeeded"})

    def authorize(self, session: CheckoutSession) -> dict:
        """Authorise the card (in the ledger) and return the Stripe-shaped event to deliver.

        One payment per session however many times Pay is pressed at once: the unique
        index on the session decides, and the losers read the winner's payment. The payment
        is recorded on the session in the same commit (Stripe's session carries its payment
        intent too), so no sweep or closing of the session can miss it.
        """
        payment_id = self.completed_payment(session.id)
        if payment_id is None:
            payment_id = self.new_payment_id()
            db.session.add(LocalPayment(id=payment_id, checkout_session_id=session.id,
                                        amount_pence=session.amount_pence))
            session.payment_intent_id = payment_id
            try:
                db.session.commit()
            except IntegrityError:  # a parallel press of Pay authorised it first
                db.session.rollback()
                payment_id = self.completed_payment(session.id)
                if payment_id is None:
                    raise
        return {
            "id": f"evt_local_{secrets.token_urlsafe(18)}",
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": {
                "id": session.id,
                "object": "checkout.session",
                "payment_intent": payment_id,
                "amount_total": session.amount_pence,
                "currency": "gbp",
                "status": "complete",
                "payment_status": "unpaid",  # authorised, not yet captured
                "client_reference_id": str(session.entry_id),
                "metadata": {"event_id": str(session.event_id), "user_id": str(session.user_id),
                             "entry_id": str(session.entry_id)},
            }},
        }


def signed_local_event(event: dict) -> tuple[bytes, str]:
    """Serialise and sign a local event exactly as Stripe would deliver it."""
    payload = json.dumps(event, separators=(",", ":"))
    return payload.encode(), sign_webhook(payload, secret=webhook_secret())
