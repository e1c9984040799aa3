"""Blueprints, one per area, registered in one place."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from blueprints import auth, events, health, seller
    from blueprints.helpers import register_filters

    app.register_blueprint(auth.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(seller.bp)
    app.register_blueprint(health.bp)
    register_filters(app)
