"""Configuration from the environment: the embedded defaults and the refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from config import load_config


def env(tmp_path, **values):
    return {"INSTANCE_PATH": str(tmp_path), **values}


def test_embedded_defaults_need_nothing_but_the_instance_folder(tmp_path):
    config = load_config(env(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'tickethub.sqlite3'}"
    assert config["RATELIMIT_STORAGE_URI"] == "tickethub-memory://"
    assert config["PAYMENTS"] == "local"
    assert config["TICKET_OFFER_SECONDS"] == 1800
    assert config["QUEUE_JOIN_LIMIT"] == "3 per 30 minutes"
    assert config["PLATFORM_FEE_PERCENT"] == 1


def test_the_generated_secret_key_is_kept_across_restarts(tmp_path):
    first = load_config(env(tmp_path))["SECRET_KEY"]
    assert len(first) >= 32
    assert load_config(env(tmp_path))["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert load_config(env(tmp_path, SECRET_KEY="set"))["SECRET_KEY"] == "set"


def test_redis_url_moves_rate_limits_to_redis(tmp_path):
    config = load_config(env(tmp_path, REDIS_URL="redis://127.0.0.1:6390/0"))
    assert config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6390/0"


def test_stripe_key_switches_payments_to_stripe(tmp_path):
    assert load_config(env(tmp_path, STRIPE_SECRET_KEY="sk_test_x"))["PAYMENTS"] == "stripe"


def test_several_processes_without_a_shared_store_are_refused(tmp_path):
    with pytest.raises(RuntimeError, match="needs REDIS_URL"):
        load_config(env(tmp_path, WEB_CONCURRENCY="4"))
    assert load_config(env(tmp_path, WEB_CONCURRENCY="4", REDIS_URL="redis://x:1/0"))


@pytest.mark.parametrize("name, value", [
    ("TICKET_OFFER_SECONDS", "soon"),
    ("QUEUE_JOIN_LIMIT", "lots"),
    ("PAYMENTS", "paypal"),
    ("PLATFORM_FEE_PERCENT", "one"),
    ("SESSION_LIFETIME_HOURS", "0"),
    ("SESSION_LIFETIME_HOURS", "a fortnight"),
    ("LOGIN_LIMIT_PER_EMAIL", "5 per 5 minutes; often"),
])
def test_bad_settings_stop_the_app_with_a_clear_message(tmp_path, name, value):
    with pytest.raises(RuntimeError, match=name):
        load_config(env(tmp_path, **{name: value}))


def test_a_sign_in_lasts_two_weeks_unless_told_otherwise(tmp_path):
    assert load_config(env(tmp_path))["PERMANENT_SESSION_LIFETIME"] == timedelta(days=14)
    assert load_config(env(tmp_path, SESSION_LIFETIME_HOURS="12"))[
        "PERMANENT_SESSION_LIFETIME"] == timedelta(hours=12)


def test_sign_in_limits_are_steps_of_a_growing_wait(tmp_path):
    config = load_config(env(tmp_path, LOGIN_LIMIT_PER_EMAIL="3 per minute; 6 per hour"))
    assert config["LOGIN_LIMIT_PER_EMAIL"] == "3 per minute; 6 per hour"
    assert load_config(env(tmp_path))["LOGIN_LIMIT_PER_EMAIL"] == (
        "5 per 5 minutes; 10 per hour; 20 per day")
