"""Accounts: sign up, sign in, sign out."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from blueprints.forms import LoginForm, SignupForm, attach_error
from blueprints.helpers import safe_next
from extensions import db, limiter, login_manager
from models import User
from services import accounts

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


def _login_email_key() -> str:
    """The account a sign-in tries, as sign-in itself finds it: every spelling of one
    address (case, spaces, a fullwidth ``ｅxample.com``) shares one count of tries."""
    typed = request.form.get("email") or ""
    try:
        email = accounts.normalize_email(typed)
    except accounts.AccountError:  # no account can match it; keep the key short
        email = typed.strip().lower()[:320]
    return "login-email:" + email


def _after_login() -> str:
    return safe_next(request.args.get("next")) or url_for("events.index")


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("events.index"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = accounts.register_user(
                name=form.name.data, email=form.email.data, password=form.password.data
            )
        except accounts.AccountError as error:
            attach_error(form, error)
        else:
            login_user(user)
            flash(f"Welcome to Ticket Hub, {user.name}!", "success")
            return redirect(_after_login(), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_EMAIL"], methods=["POST"], key_func=_login_email_key
)
def login():
    if current_user.is_authenticated:
        return redirect(_after_login())
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(email=form.email.data, password=form.password.data)
        if user is not None:
            login_user(user)
            flash(f"Signed in as {user.name}.", "success")
            return redirect(_after_login(), code=303)
        form.form_errors.append("That email and password don't match an account.")
    status = 422 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form), status


@bp.errorhandler(429)
def too_many_attempts(error):
    form = LoginForm() if request.endpoint == "auth.login" else SignupForm()
    form.form_errors.append(
        "Too many attempts. Please wait a few minutes before trying again."
    )
    template = "auth/login.html" if request.endpoint == "auth.login" else "auth/signup.html"
    return render_template(template, form=form), 429


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("You have signed out.", "info")
    return redirect(url_for("events.index"), code=303)
