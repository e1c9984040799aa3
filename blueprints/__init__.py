"""Blueprints, one per area, registered in one place."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from blueprints import auth, events, health, payments, seller, tickets
    from blueprints.helpers import register_filters

    app.register_blueprint(auth.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(seller.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(payments.bp)
    app.register_blueprint(tickets.bp)
    register_filters(app)
