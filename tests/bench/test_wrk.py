"""bench/wrk.py with bench/rush.lua against a real HTTP server: every request arrives exactly
once, as it was written (cookie, body, User-Agent), and every answer is counted and timed."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.wrk import get_for, post_each_once

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None,
                                reason="wrk is not installed (`make bench` installs it)")


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn: one connection per wrk thread
    posts: Counter

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.posts[(self.path, self.headers["Cookie"], body, self.headers["User-Agent"])] += 1
        self._answer(429 if self.path.startswith("/limited/") else 303)

    def do_GET(self):
        self._answer(200)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    Recorder.posts = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder.posts
    server.shutdown()
    server.server_close()


def test_every_request_is_sent_once_and_every_answer_counted(recorder, tmp_path):
    url, posts = recorder
    requests = [(f"/{'limited' if i % 4 == 0 else 'ok'}/{i}", f"cookie-{i}", f"csrf_token=t{i}")
                for i in range(43)]
    cpu = iter([1.0, 1.5])  # the server's CPU seconds before and after the run

    result = post_each_once(url, requests, tmp_path, connections=5, user_agent="bench-test",
                            cpu_seconds=lambda: next(cpu))

    assert posts == Counter({(path, f"session={cookie}", body, "bench-test"): 1
                             for path, cookie, body in requests})
    assert (result.sent, result.received, result.lost) == (43, 43, 0)
    assert result.threads_finished == 5
    assert result.statuses == Counter({303: 32, 429: 11})
    assert result.statuses_text() == "303: 32, 429: 11"
    assert 0 < result.exact_p50_ms <= result.exact_p99_ms <= result.max_ms
    assert 0 < result.seconds < 60
    assert result.cpu_ms_per_request() == pytest.approx(500 / 43)


class Poller(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    gets: Counter

    def do_GET(self):
        self.gets[(self.path, self.headers["Cookie"], self.headers["If-None-Match"],
                   self.headers["User-Agent"])] += 1
        self.send_response(304 if self.headers["If-None-Match"] else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_polls_go_round_every_request_as_written_for_the_time_asked(tmp_path):
    Poller.gets = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Poller)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    requests = [("/status/1", "cookie-1", "etag-1"), ("/status/2", "cookie-2", None),
                ("/", None, None)]
    try:
        result = get_for(f"http://127.0.0.1:{server.server_address[1]}", requests, tmp_path,
                         seconds=1, connections=2, user_agent="bench-test", threads=1)
    finally:
        server.shutdown()
        server.server_close()

    assert set(Poller.gets) == {("/status/1", "session=cookie-1", '"etag-1"', "bench-test"),
                                ("/status/2", "session=cookie-2", None, "bench-test"),
                                ("/", None, None, "bench-test")}
    # Answered and counted, less at most one request in flight per connection when wrk stops.
    assert 0 <= sum(Poller.gets.values()) - result.received <= 2
    assert result.received > 30
    revalidated = Poller.gets[("/status/1", "session=cookie-1", '"etag-1"', "bench-test")]
    assert 0 <= revalidated - result.statuses[304] <= 2
    assert 0.5 < result.seconds < 3
