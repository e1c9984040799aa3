"""Blueprints, one per area, registered in one place."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from blueprints import account, auth, calendars, events, health, payments, seller, tickets
    from blueprints.helpers import IdConverter, refuse_control_characters, register_filters

    # Before any rule is added: every <int:…> then only matches ids the database can hold.
    app.url_map.converters["int"] = IdConverter
    app.before_request(refuse_control_characters)

    app.register_blueprint(auth.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(seller.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(payments.bp)
    app.register_blueprint(tickets.bp)
    app.register_blueprint(calendars.bp)
    register_filters(app)
