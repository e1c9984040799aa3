"""People using a live server over plain HTTP (``requests``): they sign in through the login
form, send the CSRF token as the forms do, and every answer they get is kept, so a test can
say what users saw (``assert_no_server_errors``).
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
NO_ANSWER = 0  # the connection failed or was cut (a killed worker): no status at all


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    status: int
    retry_after: str | None


class Answers:
    """Every answer a group of users got, in arrival order (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._answers: list[Answer] = []

    def add(self, answer: Answer) -> None:
        with self._lock:
            self._answers.append(answer)

    def __iter__(self):
        with self._lock:
            return iter(list(self._answers))

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for answer in self:
            counts[answer.status] = counts.get(answer.status, 0) + 1
        return counts


def assert_no_server_errors(answers: Answers) -> None:
    """No 5xx, except a 503 that says when to try again (a thing that truly can't be done
    right now). A cut connection (a killed worker) is not an answer, so not an error page."""
    bad = [a for a in answers if a.status >= 500 and not (a.status == 503 and a.retry_after)]
    assert not bad, f"server errors seen by users: {bad}"


class WebUser:
    """One person with their own cookies, acting on the site at ``base_url``."""

    def __init__(self, base_url: str, email: str, password: str, answers: Answers):
        self.base_url = base_url
        self.email = email
        self.password = password
        self.answers = answers
        self.http = requests.Session()
        self.csrf_token: str | None = None

    def request(self, method: str, path: str, **kwargs) -> requests.Response | None:
        """Send one request without following redirects; None when no answer came."""
        kwargs.setdefault("timeout", 60)
        try:
            response = self.http.request(method, self.base_url + path, allow_redirects=False,
                                         **kwargs)
        except requests.ConnectionError:
            self.answers.add(Answer(method, path, NO_ANSWER, None))
            return None
        self.answers.add(Answer(method, path, response.status_code,
                                response.headers.get("Retry-After")))
        return response

    def post(self, path: str, data: dict | None = None, *, retries_503: int = 10):
        """A form POST with the CSRF token; a 503 with Retry-After is retried as a person
        would (after the pause it asks for, at most 2 s here). None when no answer came."""
        for _ in range(retries_503 + 1):
            response = self.request("POST", path, data={"csrf_token": self.csrf_token,
                                                        **(data or {})})
            if response is None or response.status_code != 503:
                return response
            time.sleep(min(float(response.headers.get("Retry-After") or 1), 2))
        return response

    def sign_in(self) -> None:
        page = self.request("GET", "/login")
        self.csrf_token = _CSRF.search(page.text).group(1)
        response = self.post("/login", {"email": self.email, "password": self.password})
        assert response.status_code == 303, f"sign-in answered {response.status_code}"
        # Signing in starts a new session: the forms now carry its token.
        self.csrf_token = _CSRF.search(self.request("GET", "/").text).group(1)

    def join(self, event_id: int) -> str:
        """Press "Buy ticket" / "Join the waiting list"; returns where it leads (the payment
        page when a ticket was held at once, else the event page)."""
        response = self.post(f"/events/{event_id}/join")
        assert response.status_code == 303, f"join answered {response.status_code}"
        return response.headers["Location"]

    def checkout(self, event_id: int) -> str:
        """Press "Buy now" on a held offer; returns the local payment page's path."""
        response = self.post(f"/events/{event_id}/checkout")
        assert response.status_code == 303, f"checkout answered {response.status_code}"
        location = response.headers["Location"]
        assert location.startswith("/pay/local/"), location
        return location

    def reach_payment_page(self, event_id: int) -> str:
        """Press "Buy ticket" while a ticket is free: one click to the payment page (held
        only after waiting: "Buy now" on the event page)."""
        location = self.join(event_id)
        return location if location.startswith("/pay/local/") else self.checkout(event_id)

    def pay(self, payment_page: str, *, retries_503: int = 10):
        """Press Pay on the local payment page; None when no answer came."""
        return self.post(payment_page, {"action": "pay"}, retries_503=retries_503)

    def ticket_ids(self) -> list[int]:
        """The tickets listed on "My tickets"."""
        page = self.request("GET", "/tickets")
        return sorted({int(i) for i in re.findall(r'href="/tickets/(\d+)"', page.text)})


def signed_in(base_url: str, people, answers: Answers) -> list[WebUser]:
    """One ``WebUser`` per person (anything with ``email`` and ``password``), signed in."""
    users = [WebUser(base_url, person.email, person.password, answers) for person in people]
    in_parallel(WebUser.sign_in, users)
    return users


def in_parallel(fn, items, *, workers: int = 16) -> list:
    """``fn(item)`` for every item on threads, all at once; results in item order."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(fn, items))
