"""My tickets: the list (with offers held and places in line), and one ticket with its QR
code, door code and receipt."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from markupsafe import Markup

from blueprints.helpers import now
from models import TicketStatus
from services import queue_reads, tickets

bp = Blueprint("tickets", __name__)


@bp.get("/tickets")
@login_required
def index():
    moment = now()
    return render_template("tickets/index.html", now_moment=moment,
                           places=queue_reads.places_of(user_id=current_user.id, now=moment),
                           groups=tickets.tickets_of(user_id=current_user.id, now=moment))


@bp.get("/tickets/<int:ticket_id>")
@login_required
def show(ticket_id: int):
    """The ticket to show at the door (or to print: the page has a print layout)."""
    ticket = tickets.owned_ticket(ticket_id=ticket_id, user_id=current_user.id)
    qr = Markup(tickets.qr_svg(ticket)) if ticket.status == TicketStatus.VALID else None
    return render_template("tickets/show.html", ticket=ticket, qr=qr,
                           receipt=tickets.receipt_for(ticket))
