"""The domain: plain functions over the database session, no Flask request objects.

Every service raises a ``ServiceError`` subclass whose message is fit to show the user;
``field`` names the form field it belongs to, when it belongs to one.
"""


class ServiceError(Exception):
    """A refusal the user can read. Nothing has been changed when it is raised."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class NotFound(ServiceError):
    status_code = 404


class Forbidden(ServiceError):
    status_code = 403


class Busy(ServiceError):
    """The lock the invariant needs could not be had in time: try again."""

    status_code = 503

    def __init__(self, message: str = "We're very busy right now. Please try again in a moment."):
        super().__init__(message)


def is_lock_timeout(error: Exception) -> bool:
    """Whether a database error means a lock could not be had in time (-> ``Busy``)."""
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).lower()
    return "locked" in text or "lock timeout" in text or "lock_timeout" in text
