"""Fair start: the draw that turns an event's lobby into places in line, and its public record.

When an organizer schedules an on-sale, a secret seed is made and its SHA-256 published (the
**commitment**) before anyone can join. Everyone who joins before the on-sale waits in the
lobby with a random public entry reference. At the on-sale the lobby is ordered by
``HMAC-SHA256(seed, "{event_id}:{entry_ref}")`` (hex digest, ascending) and the seed is
revealed, so anyone can check that the seed matches the commitment and recompute every place
(``../shared/CONTRACT.md``, "Fair start"). The seed never changes once committed, so nobody,
the organizer included, can pick a seed after seeing who is in the lobby.

This module is the arithmetic and the reading of the record; the draw itself (entries taking
their places) is a transition of the waiting list, in ``services/queue.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from extensions import db
from models import Event, WaitingListEntry


def new_seed() -> str:
    """32 random bytes as 64 hex characters."""
    return secrets.token_hex(32)


def commitment_of(seed: str) -> str:
    """What is published before the draw: ``sha256(bytes.fromhex(seed)).hexdigest()``."""
    return hashlib.sha256(bytes.fromhex(seed)).hexdigest()


def draw_key(seed: str, event_id: int, entry_ref: str) -> str:
    """An entry's sort key in the draw."""
    return hmac.new(bytes.fromhex(seed), f"{event_id}:{entry_ref}".encode(),
                    hashlib.sha256).hexdigest()


def draw_order(seed: str, event_id: int, entry_refs: Iterable[str]) -> list[str]:
    """The entry references in draw order: place 1 first."""
    return sorted(entry_refs, key=lambda ref: draw_key(seed, event_id, ref))


def new_entry_ref() -> str:
    """An entry's public reference: 16 random hex characters, naming nobody."""
    return secrets.token_hex(8)


def commit_seed(event: Event) -> None:
    """Give an event with an on-sale time its seed and commitment, once (never replaced)."""
    if event.sale_starts_at is not None and event.draw_seed is None:
        event.draw_seed = new_seed()
        event.draw_commitment = commitment_of(event.draw_seed)


@dataclass(frozen=True)
class DrawRecord:
    """The public record of an event's fair start (``GET /events/<id>/draw``)."""

    event: Event
    commitment: str
    drawn: bool
    seed: str | None  # revealed only after the draw
    places: list[tuple[int, str]]  # (place, entry reference), place order; after the draw


def draw_record(event: Event) -> DrawRecord | None:
    """None for an event that never had an on-sale time (nothing was drawn or will be)."""
    if event.draw_commitment is None:
        return None
    if event.drawn_at is None:
        return DrawRecord(event, event.draw_commitment, False, None, [])
    rows = db.session.execute(
        select(WaitingListEntry.seq, WaitingListEntry.ref)
        .where(WaitingListEntry.event_id == event.id, WaitingListEntry.seq >= 1,
               WaitingListEntry.seq <= (event.draw_size or 0))
        .order_by(WaitingListEntry.seq)
    ).all()
    return DrawRecord(event, event.draw_commitment, True, event.draw_seed,
                      [(seq, ref) for seq, ref in rows])


def verify(*, seed: str, commitment: str, event_id: int,
           places: list[tuple[int, str]]) -> list[str]:
    """Every way a published record fails to check out (empty: it is right)."""
    problems = []
    if commitment_of(seed) != commitment:
        problems.append("the seed does not match the commitment published before the draw")
    refs = [ref for _, ref in sorted(places)]
    if [place for place, _ in sorted(places)] != list(range(1, len(places) + 1)):
        problems.append("the places are not 1..N")
    if draw_order(seed, event_id, refs) != refs:
        problems.append("the places are not in the order the seed gives")
    return problems
