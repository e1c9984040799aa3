"""Flask extensions, created unbound here and bound to the app in ``app.create_app``."""

import threading
import time

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from limits.storage import MemoryStorage
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
        self._retried_at, self._retries = 0.0, 0  # trying a dead store again: hit()
        if self._in_memory_fallback_enabled:
            self._limiter = _FailoverStrategy(self, self._limiter)

    def hit(self, item, *identifiers: str) -> bool:
        """One hit of the limit ``item`` for ``identifiers``, outside Flask-Limiter's
        per-request bookkeeping (the status poll's own count): in the shared store, or in
        memory while it is away. Flask-Limiter tries a dead store again only in its own
        checks, so this tries it too, as seldom as they do (a growing back-off)."""
        if self._storage_dead and self._storage is not None and self._retry_due():
            try:
                alive = self._storage.check()
            except Exception:  # still away: keep counting in memory
                alive = False
            if alive:
                self.logger.info("Rate limit storage recovered")
                self._storage_dead = False
        return self.limiter.hit(item, *identifiers)

    def _retry_due(self) -> bool:
        now = time.monotonic()
        if now - self._retried_at < 2 ** min(self._retries, 5):
            return False
        self._retried_at, self._retries = now, self._retries + 1
        return True

    def fall_back(self, error: Exception):
        """Note the outage and return the in-memory strategy (None without a fallback)."""
        if not self._in_memory_fallback_enabled or self._fallback_limiter is None:
            return None
        if not self._storage_dead:
            self._storage_dead = True
            self._retried_at, self._retries = time.monotonic(), 0
            self.logger.warning("Rate limit storage unreachable (%s: %s); counting limits in "
                                "memory until it is back", type(error).__name__, error)
        return self._fallback_limiter


class SweptMemoryStorage(MemoryStorage):
    """``tickethub-memory://``: limits' in-process store (one process serving, no Redis),
    without a thread per hit.

    limits' own ``memory://`` starts a 10 ms timer thread whenever the last one has ended,
    and each run walks every key: under a waiting room's polls (a key per person in line)
    that is a thread started every few polls and every waiter's key walked a hundred times
    a second, a fifth of an unchanged poll's cost. Here a counter's window ends when it is
    next read or hit, and the keys of ended windows are swept inline at most once a minute.
    Fixed windows only (the app's strategy); the moving-window methods stay limits' own.
    """

    STORAGE_SCHEME = ["tickethub-memory"]
    SWEEP_SECONDS = 60.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._lock = threading.Lock()
        self._swept_at = time.time()

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            if now - self._swept_at >= self.SWEEP_SECONDS:
                self._sweep(now)
            if self.expirations.get(key, 0) <= now:  # a new window
                self.storage[key] = 0
                self.expirations[key] = now + expiry
            self.storage[key] += amount
            return self.storage[key]

    def decr(self, key: str, amount: int = 1) -> int:
        with self._lock:
            if self.expirations.get(key, 0) > time.time():
                self.storage[key] = max(self.storage[key] - amount, 0)
            return self.get(key)

    def get(self, key: str) -> int:
        if self.expirations.get(key, 0) <= time.time():
            return 0
        return self.storage.get(key, 0)

    def _sweep(self, now: float) -> None:
        for key in [key for key, ends in self.expirations.items() if ends <= now]:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
        self._swept_at = now


limiter = FallbackLimiter(key_func=get_remote_address)
