"""Flask extensions, created unbound here and bound to the app in ``app.create_app``."""

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints, so migrations can refer to (and drop) them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


class _FailoverStrategy:
    """The shared store's rate-limit strategy, handing over to the in-memory one when it fails.

    Flask-Limiter falls back only when the check before the view fails. A ``deduct_when``
    limit (the join) is counted after the view, and the 429 pages read the window; if the
    store goes away in between, that call would raise after the work was committed. Here
    every call fails over the same way, so the join is answered normally and still counted.
    """

    def __init__(self, owner: "FallbackLimiter", shared):
        self._owner = owner
        self._shared = shared

    def __getattr__(self, name: str):
        shared_call = getattr(self._shared, name)
        if not callable(shared_call):
            return shared_call

        def call(*args, **kwargs):
            try:
                return shared_call(*args, **kwargs)
            except Exception as error:
                fallback = self._owner.fall_back(error)
                if fallback is None:
                    raise
                return getattr(fallback, name)(*args, **kwargs)

        return call


class FallbackLimiter(Limiter):
    """Flask-Limiter that keeps counting in memory while its storage (Redis) is unreachable.

    ``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED`` turns the fallback on: the route limits are then
    counted per process, a warning is logged once per outage, and the shared store is used
    again once it answers a ping (Flask-Limiter retries it with a growing back-off).
    """

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        if not self.enabled:
            return
        # One Limiter serves every app built in a process (the tests build many): a new
        # binding starts on its own storage, not in an outage left by the one before.
        self._storage_dead = False
        if self._in_memory_fallback_enabled:
            self._limiter = _FailoverStrategy(self, self._limiter)

    def fall_back(self, error: Exception):
        """Note the outage and return the in-memory strategy (None without a fallback)."""
        if not self._in_memory_fallback_enabled or self._fallback_limiter is None:
            return None
        if not self._storage_dead:
            self._storage_dead = True
            self.logger.warning("Rate limit storage unreachable (%s: %s); counting limits in "
                                "memory until it is back", type(error).__name__, error)
        return self._fallback_limiter


limiter = FallbackLimiter(key_func=get_remote_address)
