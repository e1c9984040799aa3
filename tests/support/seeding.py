"""People, events and tickets made on a live server's own database with ``flask seed`` (the
chained seed commands in ``cli.py``), for browser, fault and proxy tests.

``flask seed`` runs the app's services, as the sign-up and event forms do, without their
rate limits; each call costs an app start-up, so a helper here makes all it needs in one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tests.support.factories import PASSWORD
from tests.support.live_server import LiveServer


def unique(prefix: str = "") -> str:
    """A short token that makes names and emails unique within one server."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@dataclass
class Person:
    name: str
    email: str
    password: str = PASSWORD


def new_person(role: str = "user") -> Person:
    """Someone with a unique name and email (no account yet: see ``user_words``)."""
    token = unique()
    return Person(name=f"{role.title()} {token}", email=f"{role}-{token}@example.com")


def user_words(person: Person, *, verified: bool = True) -> list[str]:
    """The ``flask seed`` words that make ``person``'s account, its address confirmed
    (``verified=False``: not yet, and the link to confirm it is sent, as on signing up)."""
    return ["user", "--name", person.name, "--email", person.email,
            "--password", person.password, *([] if verified else ["--unverified"])]


def event_words(organizer: Person, *, name: str, capacity: int, price_pence: int = 1250,
          description: str = "A night out.", location: str = "Hackney, London",
          starts_in_hours: float = 24, sale_starts_in_minutes: float | None = None) -> list[str]:
    """The ``flask seed`` words that publish an event of ``organizer``'s (with an on-sale
    time, and so a lobby, when ``sale_starts_in_minutes`` is given)."""
    words = ["event", "--organizer-email", organizer.email, "--name", name,
             "--description", description, "--location", location,
             "--capacity", str(capacity), "--price-pence", str(price_pence),
             "--starts-in-hours", str(starts_in_hours)]
    if sale_starts_in_minutes is not None:
        words += ["--sale-starts-in-minutes", str(sale_starts_in_minutes)]
    return words


def join_words(event_id: int, person: Person) -> list[str]:
    """The ``flask seed`` words with which ``person`` joins the waiting list."""
    return ["join", "--event", str(event_id), "--email", person.email]


def release_words(event_id: int, person: Person) -> list[str]:
    """The ``flask seed`` words with which ``person`` declines their offer or leaves the line."""
    return ["release", "--event", str(event_id), "--email", person.email]


def ticket_words(event_id: int, person: Person) -> list[str]:
    """The ``flask seed`` words that sell ``person`` a ticket (their live offer, or a free
    ticket they are offered on joining); the line printed is ``<ticket id> <QR token> <door
    code>``."""
    return ["ticket", "--event", str(event_id), "--email", person.email]


def seed(server: LiveServer, *words: str) -> list[str]:
    """Run ``flask seed <words>`` on ``server``'s database; one line per command chained."""
    return server.flask("seed", *words).splitlines()


def create_accounts(server: LiveServer, *people: Person, verified: bool = True) -> list[int]:
    """Accounts for ``people`` (their addresses confirmed unless ``verified=False``);
    returns their ids."""
    words = [w for p in people for w in user_words(p, verified=verified)]
    return [int(line) for line in seed(server, *words)]


def publish_event(server: LiveServer, *roles: str, price_pence: int = 1250, capacity: int = 1,
                  name: str = "Gig ", organizer: Person | None = None
                  ) -> tuple[int, list[Person]]:
    """A published event (tomorrow) by ``organizer`` (a fresh one by default), and one fresh
    buyer per role, all made with one ``flask seed``."""
    buyers = [new_person(role) for role in roles]
    organizer = organizer or new_person("organizer")
    words = [w for person in (*buyers, organizer) for w in user_words(person)]
    words += event_words(organizer, name=unique(name), capacity=capacity, price_pence=price_pence)
    return int(seed(server, *words)[-1]), buyers
