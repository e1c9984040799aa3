"""A small Stripe-compatible HTTP server for the Stripe gateway's contract tests.

localstripe (see TOOLCHAIN.md) lacks Checkout Sessions, Connect and application fees, so
this serves just the endpoints Ticket Hub calls, in Stripe's wire format (form-encoded
requests with bracketed keys, JSON answers), and records every request so tests can
assert what was sent: parameters, idempotency keys, the API key.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    params: dict
    headers: dict


@dataclass
class FakeStripe:
    requests: list[Recorded] = field(default_factory=list)
    sessions: dict = field(default_factory=dict)
    intents: dict = field(default_factory=dict)
    accounts: dict = field(default_factory=dict)
    fail_next: dict = field(default_factory=dict)  # path suffix -> (status, error type)
    fail_on_call: dict = field(default_factory=dict)  # path suffix -> nth call (1-based) fails
    refunds: list = field(default_factory=list)  # every refund Stripe actually made
    idempotent: dict = field(default_factory=dict)  # Idempotency-Key -> (status, body)
    url: str = ""

    def calls(self, path_part: str) -> list[Recorded]:
        return [r for r in self.requests if path_part in r.path]

    # -- what a test does on Stripe's side

    def authorize(self, session_id: str) -> str:
        """The buyer pays at Checkout: an uncaptured payment intent for the session."""
        session = self.sessions[session_id]
        pi = f"pi_{secrets.token_hex(8)}"
        self.intents[pi] = {"id": pi, "object": "payment_intent", "status": "requires_capture",
                            "amount": session["amount_total"]}
        session.update(status="complete", payment_intent=pi)
        return pi

    def enable_charges(self, account_id: str) -> dict:
        self.accounts[account_id].update(details_submitted=True, charges_enabled=True,
                                         requirements={"currently_due": []})
        return self.accounts[account_id]


def _handler(state: FakeStripe):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, kind: str, message: str):
            self._answer(status, {"error": {"type": kind, "message": message}})

        def do_GET(self):
            self._route("GET", {})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            params = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            self._route("POST", params)

        def _route(self, method: str, params: dict):
            path = urlsplit(self.path).path
            state.requests.append(Recorded(method, path, params, dict(self.headers)))
            key = self.headers.get("Idempotency-Key")
            if method == "POST" and key in state.idempotent:
                return self._answer(*state.idempotent[key])  # Stripe replays the first answer
            for suffix, (status, kind) in list(state.fail_next.items()):
                if path.endswith(suffix):
                    del state.fail_next[suffix]
                    return self._error(status, kind, "injected failure")
            for suffix, nth in list(state.fail_on_call.items()):
                if path.endswith(suffix) and len(state.calls(suffix)) == nth:
                    return self._error(500, "api_error", "injected failure")
            parts = path.strip("/").split("/")[1:]  # drop "v1"
            try:
                body = self._dispatch(method, parts, params)
            except KeyError:
                return self._error(404, "invalid_request_error", "No such object")
            except ValueError as error:
                return self._error(400, "invalid_request_error", str(error))
            if method == "POST" and key:
                state.idempotent[key] = (200, body)
            self._answer(200, body)

        def _dispatch(self, method, parts, params):
            if parts == ["checkout", "sessions"] and method == "POST":
                session_id = f"cs_test_{secrets.token_hex(8)}"
                session = {
                    "id": session_id, "object": "checkout.session", "status": "open",
                    "url": f"https://checkout.stripe.test/pay/{session_id}",
                    "amount_total": int(params["line_items[0][price_data][unit_amount]"]),
                    "metadata": {k[9:-1]: v for k, v in params.items()
                                 if k.startswith("metadata[")},
                    "payment_intent": None,
                }
                state.sessions[session_id] = session
                return session
            if parts[:2] == ["checkout", "sessions"] and len(parts) == 3 and method == "GET":
                return state.sessions[parts[2]]
            if parts[:2] == ["checkout", "sessions"] and parts[3:] == ["expire"]:
                session = state.sessions[parts[2]]
                if session["status"] != "open":
                    raise ValueError("Only open sessions can be expired.")
                session["status"] = "expired"
                return session
            if parts[0] == "payment_intents":
                intent = state.intents[parts[1]]
                action = parts[2] if len(parts) > 2 else None
                if action == "capture":
                    if intent["status"] != "requires_capture":
                        raise ValueError("This PaymentIntent could not be captured.")
                    intent["status"] = "succeeded"
                elif action == "cancel":
                    if intent["status"] == "succeeded":
                        raise ValueError("You cannot cancel a succeeded PaymentIntent.")
                    intent["status"] = "canceled"
                return intent
            if parts == ["refunds"]:
                intent = state.intents[params["payment_intent"]]
                if intent["status"] != "succeeded":
                    raise ValueError("This PaymentIntent has no charge to refund.")
                refund = {"id": f"re_{secrets.token_hex(8)}", "object": "refund",
                          "payment_intent": intent["id"], "amount": intent["amount"],
                          "status": "succeeded"}
                state.refunds.append(refund)
                return refund
            if parts == ["accounts"] and method == "POST":
                account_id = f"acct_{secrets.token_hex(8)}"
                state.accounts[account_id] = {
                    "id": account_id, "object": "account", "type": params.get("type"),
                    "email": params.get("email"), "details_submitted": False,
                    "charges_enabled": False,
                    "requirements": {"currently_due": ["external_account", "tos_acceptance.date"]},
                }
                return state.accounts[account_id]
            if parts[0] == "accounts" and len(parts) == 2:
                return state.accounts[parts[1]]
            if parts[0] == "accounts" and parts[2:] == ["login_links"]:
                state.accounts[parts[1]]
                return {"object": "login_link", "url": f"https://connect.stripe.test/{parts[1]}"}
            if parts == ["account_links"]:
                state.accounts[params["account"]]
                return {"object": "account_link",
                        "url": f"https://connect.stripe.test/setup/{params['account']}"}
            raise KeyError(parts)

    return Handler


def start_fake_stripe() -> tuple[FakeStripe, ThreadingHTTPServer]:
    state = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server
