"""The task consumer's entry point: ``huey_consumer worker.huey`` (``make run`` runs it).

Builds the app once, which binds it to the tasks (``tasks.bind_app``), then hands the
consumer the Huey instance. The web app is built by gunicorn (``app:create_app()``).
"""

import logging

from app import create_app
from tasks import huey


class _ToConsumerLog(logging.Handler):
    """huey_consumer sets up logging for the ``huey`` namespace alone (after importing this
    module): the services' own notes go to the same log, at INFO as the consumer's do. One
    of them is the link in an account email when no mail server is set (README)."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger("huey").handle(record)


_services_log = logging.getLogger("services")
_services_log.setLevel(logging.INFO)
_services_log.addHandler(_ToConsumerLog())

app = create_app()

__all__ = ["app", "huey"]
