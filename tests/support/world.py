"""A small site in full swing, for tests that try every route as different people: an
organizer's event with a picture and a sold ticket, the same buyer holding an offer with an
open local checkout on a second event of that organizer, and another organizer with an
event of their own. Build it inside an app context (``app`` / ``any_db_app``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from extensions import db
from models import Ticket, User
from services import tickets, webhooks
from tests.support.buying import open_checkout
from tests.support.factories import image_bytes, make_event, make_user

MISSING_ID = 999999  # no event, ticket or checkout has this id


@dataclass(frozen=True)
class World:
    owner: User
    buyer: User
    other_organizer: User
    event_id: int  # the owner's, with the buyer's ticket and a picture
    second_event_id: int  # the owner's, where the buyer holds an offer and is paying
    ticket_id: int
    token: str  # the ticket's QR token, as the door reads it
    session_id: str  # the buyer's open local checkout (``/pay/local/<session_id>``)
    image_name: str  # the event's picture (``/uploads/<name>``)

    def ids(self) -> dict[str, str]:
        """The values that stand in a route's ``{placeholders}``."""
        return {"event": str(self.event_id), "second_event": str(self.second_event_id),
                "ticket": str(self.ticket_id), "token": self.token, "session": self.session_id,
                "image": self.image_name, "missing": str(MISSING_ID)}


def build_world() -> World:
    owner = make_user(name="Owner")
    buyer = make_user(name="Secret Buyer", email="secret@example.com")
    other = make_user(name="Other organizer")
    event = make_event(owner, name="Original", total_tickets=5, image=image_bytes("PNG"))
    second = make_event(owner, name="Second gig", total_tickets=5)
    make_event(other, name="Other's event")
    # Paid on the local payment page, so the ticket can be refunded like any other.
    paid = open_checkout(event, buyer)
    webhooks.pay_locally(session_id=paid.id, user_id=buyer.id, now=datetime.now(timezone.utc))
    ticket = db.session.scalars(db.select(Ticket).filter_by(user_id=buyer.id)).one()
    checkout = open_checkout(second, buyer)
    return World(owner=owner, buyer=buyer, other_organizer=other, event_id=event.id,
                 second_event_id=second.id, ticket_id=ticket.id, token=tickets.token_for(ticket),
                 session_id=checkout.id, image_name=event.image_filename)
