"""Ticket Hub behind the shipped nginx configuration (deploy/nginx/tickethub.conf).

The shared availability fragment is answered from nginx's cache, the same for everyone and
fresh again within its max-age; static files come compressed and cached; and whatever shows
a person their own state (their place in line, their pages) always comes from the app, so
nobody ever receives another person's status through the proxy.
"""

from __future__ import annotations

import gzip
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.support.html import hook
from tests.support.live_server import REPO
from tests.support.nginx import running_nginx
from tests.support.seeding import publish_event
from tests.support.web_user import Answers, WebUser, in_parallel, signed_in

HX = {"HX-Request": "true"}
# $upstream_cache_status values meaning the answer came out of the cache, not from the app.
FROM_THE_CACHE = {"HIT", "STALE", "UPDATING", "REVALIDATED"}
# Fetched from the app after the entry ran out (or was never there).
REFRESHED = {"EXPIRED", "REVALIDATED", "MISS"}
REFRESH_TIMEOUT = 20.0




def availability_path(event_id: int) -> str:
    return f"/events/{event_id}/availability"


def until_cached(fetch, *, attempts: int = 5) -> requests.Response:
    """``fetch()`` again until nginx answers it from its cache (the entry a first fetch left
    may have run out already on a slow machine); the answer that was a HIT."""
    for _ in range(attempts):
        response = fetch()
        if response.headers.get("X-Cache-Status") == "HIT":
            return response
    raise AssertionError(f"never a HIT in {attempts} tries; last {response.status_code} "
                         f"{dict(response.headers)}")


# ------------------------------------------------------------ the shared fragment


def test_the_availability_fragment_is_one_cached_answer_for_everyone(site):
    event_id, (buyer,) = publish_event(site.app, "buyer", capacity=5)
    path = availability_path(event_id)
    from_the_app = requests.get(site.app.url + path, timeout=10)
    assert from_the_app.status_code == 200
    caching = from_the_app.headers["Cache-Control"]
    assert "public" in caching
    assert 1 <= int(re.search(r"max-age=(\d+)", caching).group(1)) <= 5, caching
    assert from_the_app.headers.get("ETag")
    assert hook(from_the_app.text, "availability")["remaining"] == "5"

    # An anonymous visitor fills the cache; a signed-in buyer then gets the same answer from
    # it, with no cookie: nobody's session is handed out or replaced.
    (signed_in_buyer,) = signed_in(site.proxy.url, [buyer], Answers())
    cookies_before = signed_in_buyer.http.cookies.get_dict()

    def anonymous_then_signed_in():
        requests.get(site.proxy.url + path, timeout=10)
        return signed_in_buyer.request("GET", path)

    shared = until_cached(anonymous_then_signed_in)
    assert shared.status_code == 200
    assert "Set-Cookie" not in shared.headers
    assert shared.text == from_the_app.text
    assert "public" in shared.headers["Cache-Control"]
    assert signed_in_buyer.http.cookies.get_dict() == cookies_before

    # A browser that has the fragment already is told so by nginx, without a body.
    etag = shared.headers["ETag"]
    not_modified = until_cached(lambda: requests.get(
        site.proxy.url + path, headers={"If-None-Match": etag}, timeout=10))
    assert not_modified.status_code == 304
    assert not_modified.content == b""


def test_the_cached_fragment_catches_up_once_its_max_age_has_passed(site):
    event_id, (buyer,) = publish_event(site.app, "buyer", capacity=5)
    url = site.proxy.url + availability_path(event_id)
    cached = until_cached(lambda: requests.get(url, timeout=10))
    assert hook(cached.text, "availability")["remaining"] == "5"

    # A ticket is offered: within a few seconds everyone polling sees one fewer left.
    (user,) = signed_in(site.proxy.url, [buyer], Answers())
    user.join(event_id)
    seen = []
    deadline = time.monotonic() + REFRESH_TIMEOUT
    while time.monotonic() < deadline:
        response = requests.get(url, timeout=10)
        seen.append(response.headers.get("X-Cache-Status"))
        if hook(response.text, "availability")["remaining"] == "4":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"still the old availability after {REFRESH_TIMEOUT:.0f} s: {seen}")
    assert seen[-1] in REFRESHED, seen
    assert response.text == requests.get(site.app.url + availability_path(event_id),
                                         timeout=10).text


class CookieSettingUpstream(BaseHTTPRequestHandler):
    """An upstream that breaks the shared fragment's rule: it sets a cookie on it."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b'<div id="availability" data-remaining="3"></div>'
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "public, max-age=5")
        self.send_header("Set-Cookie", "session=someone-elses; Path=/; HttpOnly")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_shared_answer_that_sets_a_cookie_is_neither_stored_nor_passed_on(tmp_path):
    """Belt and braces: were the app ever to set a cookie on the shared fragment, nginx would
    keep that answer out of the cache, and out of the viewer's cookie jar."""
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), CookieSettingUpstream)
    serving = threading.Thread(target=upstream.serve_forever, daemon=True)
    serving.start()
    try:
        with running_nginx(tmp_path, f"127.0.0.1:{upstream.server_port}") as proxy:
            if proxy is None:
                pytest.skip("nginx not installed")
            answers = [requests.get(proxy.url + availability_path(7), timeout=10)
                       for _ in range(3)]
    finally:
        upstream.shutdown()
        upstream.server_close()
    assert [answer.status_code for answer in answers] == [200] * 3
    assert [answer.headers.get("X-Cache-Status") for answer in answers] == ["MISS"] * 3
    assert [answer.headers.get("Set-Cookie") for answer in answers] == [None] * 3


# ------------------------------------------------------------ per-person answers


def own_status(response: requests.Response) -> tuple[str, str | None]:
    status = hook(response.text, "queue-status")
    return status["status"], status.get("position")


def test_nobody_ever_sees_another_persons_status_through_the_proxy(site):
    # One ticket: the first buyer holds it, the other two wait at different places.
    event_id, people = publish_event(site.app, "holder", "second", "third", capacity=1)
    answers = Answers()
    users = signed_in(site.proxy.url, people, answers)
    for user in users:
        user.join(event_id)
    anonymous = WebUser(site.proxy.url, "", "", answers)
    viewers = [*users, anonymous]

    # What the app itself tells each of them, asked directly with their own cookies.
    truth = {}
    for viewer in viewers:
        direct = viewer.http.get(f"{site.app.url}/events/{event_id}/status", timeout=10)
        truth[viewer] = own_status(direct)
    assert [truth[viewer][0] for viewer in viewers] == ["offered", "waiting", "waiting", "none"]
    assert len(set(truth.values())) == len(viewers), truth  # all told apart

    etags: dict[WebUser, str] = {}
    requests_to_make = [
        ("status", f"/events/{event_id}/status", {}),
        ("status", f"/events/{event_id}/status", HX),
        ("page", f"/events/{event_id}", {}),
        ("page", f"/events/{event_id}", HX),
    ]

    def look(viewer: WebUser, rng: random.Random) -> list[str]:
        """One viewer's requests in a random order; what went wrong, if anything."""
        problems = []
        for kind, path, headers in rng.sample(requests_to_make, len(requests_to_make)):
            headers = dict(headers)
            other = rng.choice([v for v in viewers if v is not viewer])
            if kind == "status" and other in etags and rng.random() < 0.5:
                headers["If-None-Match"] = etags[other]  # someone else's: must not match
            response = viewer.request("GET", path, headers=headers)
            cache = response.headers.get("X-Cache-Status")
            if cache not in (None, "BYPASS"):
                problems.append(f"{path} went through the cache: X-Cache-Status {cache}")
            if response.status_code != 200:
                problems.append(f"{path} {headers} answered {response.status_code}")
                continue
            if own_status(response) != truth[viewer]:
                problems.append(f"{path} showed {own_status(response)}, "
                                f"not their own {truth[viewer]}")
            if kind == "status":
                etags[viewer] = response.headers["ETag"]
        return problems

    # Rounds in which everyone asks at the same moment, each in an order of their own.
    for round_number in range(12):
        rngs = {viewer: random.Random(f"{round_number}-{i}") for i, viewer in enumerate(viewers)}
        problems = in_parallel(lambda viewer, rngs=rngs: look(viewer, rngs[viewer]), viewers)
        assert problems == [[]] * len(viewers), problems

    # Their own cookies are still theirs: the app tells each the same as at the start.
    for viewer in viewers:
        assert own_status(viewer.request("GET", f"/events/{event_id}/status")) == truth[viewer]


def test_pages_are_never_cached_for_anyone(site):
    event_id, (buyer,) = publish_event(site.app, "buyer", capacity=3)
    page = f"/events/{event_id}"

    # Two anonymous visitors, one after the other: each gets the page from the app, and if
    # it hands out a session cookie, each their own.
    visits = [requests.get(site.proxy.url + page, timeout=10) for _ in range(3)]
    for visit in visits:
        assert visit.status_code == 200
        assert "X-Cache-Status" not in visit.headers
        assert hook(visit.text, "queue-status")["status"] == "none"
    cookies = [visit.headers.get("Set-Cookie") for visit in visits]
    handed_out = [cookie for cookie in cookies if cookie]
    assert len(set(handed_out)) == len(handed_out), handed_out

    # A signed-in person's own pages: every answer from the app, never stored.
    (user,) = signed_in(site.proxy.url, [buyer], Answers())
    for path in [page, f"/events/{event_id}/status", "/tickets", "/"] * 2:
        response = user.request("GET", path)
        assert response.status_code == 200, path
        assert "X-Cache-Status" not in response.headers, path


# ------------------------------------------------------------ static files


def get_raw(url: str, **headers) -> requests.Response:
    """A GET whose ``.body`` is the bytes as they came over the wire (not unzipped)."""
    response = requests.get(url, headers=headers, stream=True, timeout=10)
    response.body = response.raw.read(decode_content=False)
    return response


def test_static_files_come_gzipped_and_from_the_cache(site):
    for name in ["app.css", "app.js", "htmx.min.js", "favicon.svg"]:
        url = f"{site.proxy.url}/static/{name}"
        on_disk = (REPO / "static" / name).read_bytes()

        zipped = until_cached(lambda url=url: get_raw(url, **{"Accept-Encoding": "gzip"}))
        assert zipped.headers.get("Content-Encoding") == "gzip", name
        assert gzip.decompress(zipped.body) == on_disk, name
        assert len(zipped.body) < len(on_disk), name
        assert "Set-Cookie" not in zipped.headers
        assert "max-age=3600" in zipped.headers["Cache-Control"], name

        plain = get_raw(url, **{"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in plain.headers, name
        assert plain.body == on_disk, name

    # The event page's HTML is compressed too.
    event_id, _ = publish_event(site.app, capacity=1)
    page = requests.get(f"{site.proxy.url}/events/{event_id}",
                        headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert page.headers.get("Content-Encoding") == "gzip"
