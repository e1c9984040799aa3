"""The yardstick of the HTTP tables: a trivial Flask app, served by the same gunicorn line
as the app, so every figure can be read as a share of what the server itself can do."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "hello"


@app.get("/healthz")
def healthz():
    # What tests/support/live_server.py waits for before it calls a server ready.
    return {"db": "ok"}
