"""The live-server harness starts servers on the embedded defaults plus what a test asks for:
whatever the person running the tests has exported never reaches them."""

from __future__ import annotations

from config import load_config
from tests.support.live_server import app_settings, server_env


class RecordingEnviron(dict):
    """An environment that notes every name read from it."""

    def __init__(self, values: dict):
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


def test_every_setting_the_app_reads_is_kept_from_the_servers(tmp_path):
    environ = RecordingEnviron({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k"})
    load_config(environ)
    assert "MAIL_SERVER" in environ.read  # the recording works
    assert environ.read - app_settings() == set()


def test_an_exported_mail_server_or_redis_does_not_leak_into_a_server(tmp_path, monkeypatch):
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    monkeypatch.setenv("REDIS_URL", "redis://example.com:6379/0")
    monkeypatch.setenv("OUTBOX_LEASE_SECONDS", "1")
    env = server_env(tmp_path, {"TICKET_OFFER_SECONDS": "60", "PAYMENTS": None})
    config = load_config(env)
    assert (config["MAIL_SERVER"], config["REDIS_URL"]) == (None, None)
    assert config["OUTBOX_LEASE_SECONDS"] == load_config({"INSTANCE_PATH": str(tmp_path),
                                                         "SECRET_KEY": "k"})["OUTBOX_LEASE_SECONDS"]
    assert config["TICKET_OFFER_SECONDS"] == 60
    assert config["SQLALCHEMY_DATABASE_URI"].startswith(f"sqlite:///{tmp_path}")
