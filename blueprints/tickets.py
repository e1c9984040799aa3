"""My tickets: the list, and one ticket with its QR code, door code and receipt."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from markupsafe import Markup

from blueprints.helpers import now
from models import TicketStatus
from services import tickets

bp = Blueprint("tickets", __name__)


@bp.get("/tickets")
@login_required
def index():
    return render_template("tickets/index.html",
                           groups=tickets.tickets_of(user_id=current_user.id, now=now()))


@bp.get("/tickets/<int:ticket_id>")
@login_required
def show(ticket_id: int):
    """The ticket to show at the door (or to print: the page has a print layout)."""
    ticket = tickets.owned_ticket(ticket_id=ticket_id, user_id=current_user.id)
    qr = Markup(tickets.qr_svg(ticket)) if ticket.status == TicketStatus.VALID else None
    return render_template("tickets/show.html", ticket=ticket, qr=qr,
                           receipt=tickets.receipt_for(ticket))
