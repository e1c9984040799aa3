"""Bytes of the event page as a waiting buyer loads it: HTML, CSS, JS, and each poll.

``python -m bench.page_weight`` (also part of ``make bench``).
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

from bench.tables import table as markdown_table

ROOT = Path(__file__).resolve().parent.parent


def measure() -> list[tuple[str, int, int]]:
    from tests.support.apps import build_test_config, make_app
    from tests.support.factories import PASSWORD, make_event, make_user

    folder = tempfile.TemporaryDirectory(prefix="tickethub-weight-")
    app = make_app(build_test_config(Path(folder.name)))
    with folder, app.app_context():
        event = make_event(total_tickets=1)
        holder, waiter = make_user(), make_user()
        for user in (holder, waiter):
            client = app.test_client()
            client.post("/login", data={"email": user.email, "password": PASSWORD})
            client.post(f"/events/{event.id}/join")
        parts = [("event page HTML (waiting)", client.get(f"/events/{event.id}").data)]
        parts += [(name, (ROOT / "static" / name).read_bytes())
                  for name in ("app.css", "app.js", "htmx.min.js")]
        fragment = client.get(f"/events/{event.id}/status").data
    rows = [(name, len(data), len(gzip.compress(data))) for name, data in parts]
    rows.append(("page total (HTML + CSS + JS)", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    rows.append(("status fragment (each changed poll)", len(fragment),
                 len(gzip.compress(fragment))))
    return rows


def table() -> str:
    return markdown_table("Event page weight (bytes)", ("resource", "bytes", "gzip"),
                          [(name, f"{size:,}", f"{packed:,}") for name, size, packed in measure()])


if __name__ == "__main__":
    print(table())
