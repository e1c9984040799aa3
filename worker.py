"""The task consumer's entry point: ``huey_consumer worker.huey`` (``make run`` runs it).

Builds the app once, which binds it to the tasks (``tasks.bind_app``), then hands the
consumer the Huey instance. The web app is built by gunicorn (``app:create_app()``).
"""

from app import create_app
from tasks import huey

app = create_app()

__all__ = ["app", "huey"]
