"""Drive Debian's wrk with bench/rush.lua: every request sent exactly once, each one timed.

wrk runs one connection per wrk thread, so the script can time every request itself and
send each user's request exactly once: each thread reads its own slice of the requests,
parks its connection once the slice is sent and stops after the last answer; ``done()``
adds up the status codes and prints wrk's p50/p99 next to the exact ones.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).with_name("rush.lua")
POLL_SCRIPT = Path(__file__).with_name("poll.lua")
MAX_SECONDS = 240  # wrk's -d: the hard bound of one run


@dataclass
class WrkResult:
    sent: int = 0
    received: int = 0
    lost: int = 0  # sent, but the connection dropped before an answer
    threads_finished: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    p50_ms: float = 0.0  # wrk's latency histogram, as done() gets it
    p99_ms: float = 0.0
    exact_p50_ms: float = 0.0  # every request timed by the script itself
    exact_p99_ms: float = 0.0
    max_ms: float = 0.0
    errors: str = ""
    output: str = ""
    server_cpu_s: float = 0.0  # the server's CPU time during the run
    load_before: float = 0.0  # the machine's 1-minute load average as the run started

    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_s * 1e3 / self.received if self.received else 0.0

    def rate(self, count: int) -> float:
        return count / self.seconds if self.seconds else 0.0

    def statuses_text(self) -> str:
        """``303: 9,000, 429: 1,000``, with any socket errors wrk counted after it."""
        text = ", ".join(f"{code}: {n:,}" for code, n in sorted(self.statuses.items()))
        bad = [pair for pair in self.errors.split(",") if pair and not pair.endswith("=0")]
        return (text or "none") + (" (socket errors " + ", ".join(bad) + ")" if bad else "")


def warm_up(url: str) -> None:
    """A second of GETs, so every worker has imported, connected and compiled templates."""
    subprocess.run(["wrk", "-t", "2", "-c", "8", "-d", "1s", url],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)


def post_each_once(url: str, requests: list[tuple[str, str, str]], workdir: Path, *,
                   connections: int, user_agent: str, cpu_seconds=lambda: 0.0) -> WrkResult:
    """POST every (path, session cookie, form body) to ``url`` exactly once, ``connections``
    at a time; ``cpu_seconds()`` is read before and after (the server's CPU so far)."""
    workdir.mkdir(parents=True, exist_ok=True)
    connections = max(1, min(connections, len(requests)))
    for k in range(connections):
        part = requests[k * len(requests) // connections:(k + 1) * len(requests) // connections]
        (workdir / f"requests-{k}.txt").write_text(
            "".join(f"{path}\t{cookie}\t{body}\n" for path, cookie, body in part))
    load_before, cpu_before = os.getloadavg()[0], cpu_seconds()
    process = subprocess.Popen(
        ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{MAX_SECONDS}s",
         "--timeout", "60s", "-s", str(SCRIPT), url, "--", str(workdir), user_agent],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        # wrk always runs for its -d; once every thread has stopped, SIGINT ends it early.
        deadline = time.monotonic() + MAX_SECONDS + 5
        while process.poll() is None and time.monotonic() < deadline:
            if sum(1 for _ in workdir.glob("done-*")) >= connections:
                process.send_signal(signal.SIGINT)
                break
            time.sleep(0.02)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    result = parse_output(output)
    result.server_cpu_s = cpu_seconds() - cpu_before
    result.load_before = load_before
    return result


def get_for(url: str, requests: list[tuple[str, str | None, str | None]], workdir: Path, *,
            seconds: float, connections: int, user_agent: str,
            threads: int = 1) -> WrkResult:
    """GET (path, session cookie or None, If-None-Match ETag or None) in turn, round and
    round, on ``connections`` keep-alive connections for ``seconds`` (bench/poll.lua)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("requests-*.txt"):
        old.unlink()
    threads = max(1, min(threads, connections, len(requests)))
    for k in range(threads):
        part = requests[k::threads]
        (workdir / f"requests-{k}.txt").write_text("".join(
            f"{path}\t{cookie or '-'}\t{etag or '-'}\n" for path, cookie, etag in part))
    load_before = os.getloadavg()[0]
    done = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
         "--timeout", "10s", "-s", str(POLL_SCRIPT), url, "--", str(workdir), user_agent],
        capture_output=True, text=True, timeout=seconds + 60, check=False)
    result = parse_output(done.stdout + done.stderr)
    result.load_before = load_before
    return result


def parse_output(output: str) -> WrkResult:
    """The figures of the script's ``BENCH key value`` lines."""
    result = WrkResult(output=output)
    values = dict(line.split(" ", 2)[1:] for line in output.splitlines()
                  if line.startswith("BENCH "))
    if "sent" in values:
        sent, received, lost = re.match(r"(\d+) received (\d+) lost (\d+)",
                                        values["sent"]).groups()
        result.sent, result.received, result.lost = int(sent), int(received), int(lost)
    if "threads" in values:
        result.threads_finished = int(values["threads"].split()[-1])
    for pair in filter(None, values.get("statuses", "").split(",")):
        code, count = pair.split("=")
        result.statuses[int(code)] = int(count)

    def ms(key: str) -> float:  # microseconds in, milliseconds out
        return int(values.get(key, "0")) / 1e3

    result.seconds = ms("elapsed_us") / 1e3
    result.p50_ms, result.p99_ms = ms("wrk_p50_us"), ms("wrk_p99_us")
    result.exact_p50_ms, result.exact_p99_ms = ms("exact_p50_us"), ms("exact_p99_us")
    result.max_ms = ms("max_us")
    result.errors = values.get("errors", "")
    return result
