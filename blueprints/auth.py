"""Accounts: sign up, sign in and out, confirm an address, forgotten passwords."""

from __future__ import annotations

import math
import time

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from blueprints.forms import (
    ForgotPasswordForm,
    LoginForm,
    ResetPasswordForm,
    SafeForm,
    SignupForm,
    attach_error,
)
from blueprints.helpers import now, safe_next
from extensions import limiter, login_manager
from models import User
from services import accounts, sessions
from services.account_links import LinkError

bp = Blueprint("auth", __name__)

SESSION_ID = "_sid"  # the server-side SignInSession's id, in the signed session cookie
_LOGIN_KEYS = ("_user_id", "_fresh", "_id", SESSION_ID)
DEVICE_COOKIE = "trusted_device"  # services/sessions.py: this browser signed in here before


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The signed-in user, if the session the cookie names is still live (one query). A
    session ended elsewhere (sign out, sign out everywhere, a new password) signs this
    cookie out too, however it was copied."""
    session_id = session.get(SESSION_ID)
    user = None
    if isinstance(user_id, str) and user_id.isdigit() and isinstance(session_id, str):
        user = sessions.session_user(session_id=session_id, user_id=int(user_id), now=now())
    if user is None:
        _forget_sign_in()
    return user


def sign_in(user: User) -> None:
    """A new server-side session and a fresh cookie session for ``user``: nothing from
    before the sign-in carries over (the CSRF token is a new one too)."""
    session_id = sessions.start_session(user_id=user.id, now=now())
    session.clear()
    # Flask-WTF keeps the request's token in ``g``: forget it with the old session, so
    # whatever is rendered from here on carries (and stores) a new one.
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    login_user(user)
    session[SESSION_ID] = session_id
    session.permanent = True  # lasts PERMANENT_SESSION_LIFETIME, like its row


def _forget_sign_in() -> None:
    for key in _LOGIN_KEYS:
        session.pop(key, None)


def sign_out() -> None:
    """Forget who is signed in, in this cookie (the caller ends the server's session)."""
    logout_user()
    _forget_sign_in()


def _typed_address() -> str:
    """The person a form's ``email`` names, as sign-in itself finds them: every spelling of
    one mailbox (case, a fullwidth ``ｅxample.com``, ``+tags``) shares one count of tries."""
    typed = request.form.get("email") or ""
    try:
        return accounts.person_key(accounts.normalize_email(typed))
    except accounts.AccountError:  # no account can match it; keep the key short
        return typed.strip().lower()[:320]


def _sign_in_key() -> str:
    """Failed sign-ins count against the address, except from a browser that signed in to
    it before: that one has a count of its own, so a stranger's guesses can't lock the
    owner out of the browser they use."""
    address = _typed_address()
    device = sessions.trusted_device(request.cookies.get(DEVICE_COOKIE), address, now=now())
    return f"login-device:{device}" if device else f"login-email:{address}"


def _failed(response) -> bool:
    return response.status_code == 422


def _after_login() -> str:
    return safe_next(request.args.get("next")) or url_for("events.index")


def _status(form) -> int:
    return 422 if form.is_submitted() else 200


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("events.index"))
    form = SignupForm()
    if form.is_submitted() and form.validate_signup():
        try:
            user = accounts.register_user(name=form.name.data, email=form.email.data,
                                          password=form.password.data, now=now())
        except accounts.AccountError as error:  # the same person signed up meanwhile
            attach_error(form, error)
        else:
            sign_in(user)
            flash(f"Welcome to Ticket Hub, {user.name}! We've sent a link to {user.email}: "
                  "open it to confirm your address, then you can join waiting lists.", "success")
            return redirect(_after_login(), code=303)
    return render_template("auth/signup.html", form=form), _status(form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], methods=["POST"],
               deduct_when=_failed)
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_EMAIL"], methods=["POST"],
               key_func=_sign_in_key, deduct_when=_failed)
def login():
    if current_user.is_authenticated:
        return redirect(_after_login())
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(email=form.email.data, password=form.password.data)
        if user is not None:
            sign_in(user)
            flash(f"Signed in as {user.name}.", "success")
            response = redirect(_after_login(), code=303)
            _trust_this_device(response)
            return response
        form.form_errors.append("That email and password don't match an account.")
    return render_template("auth/login.html", form=form), _status(form)


def _trust_this_device(response) -> None:
    address, moment = _typed_address(), now()
    if sessions.trusted_device(request.cookies.get(DEVICE_COOKIE), address, now=moment):
        return
    response.set_cookie(
        DEVICE_COOKIE, sessions.trusted_device_cookie(address, now=moment),
        max_age=sessions.TRUSTED_DEVICE_DAYS * 86400, path=url_for("auth.login"),
        httponly=True, samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])


@bp.post("/logout")
@login_required
def logout():
    session_id = session.get(SESSION_ID)
    if isinstance(session_id, str):
        sessions.end_session(session_id=session_id, now=now())
    sign_out()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("events.index"), code=303)


# --------------------------------------------------------------- confirming an address


def link_problem(error: LinkError, *, ask_again: str):
    """A link that can't be used: why, and where to get a new one (``ask_again``:
    ``verify`` or ``reset``)."""
    return render_template("auth/link_problem.html", message=error.message,
                           ask_again=ask_again), 400


@bp.route("/verify/<token>", methods=["GET", "POST"])
def verify_email(token: str):
    """The link in the confirmation email: a page with one button (a GET changes nothing,
    so a mail scanner opening the link spends nothing)."""
    form = SafeForm()
    try:
        if form.validate_on_submit():
            user = accounts.verify_email(token=token, now=now())
            flash(f"Thank you: {user.email} is confirmed. You can join waiting lists now.",
                  "success")
            return redirect(url_for("events.index"), code=303)
        user = accounts.check_verification_link(token=token, now=now())
    except LinkError as error:
        return link_problem(error, ask_again="verify")
    return render_template("auth/confirm_link.html", form=form, address=user.email,
                           heading="Confirm your email address",
                           button="Confirm my email address"), _status(form)


def requester_key(scope: str) -> str:
    """A rate limit's key: the signed-in person, else the client's address."""
    user_id = session.get("_user_id")
    return f"{scope}:{user_id}" if isinstance(user_id, str) else f"{scope}-ip:{request.remote_addr}"


@bp.post("/account/resend-confirmation")
@login_required
@limiter.limit(lambda: current_app.config["ACCOUNT_EMAIL_LIMIT"],
               key_func=lambda: requester_key("verify-resend"))
def resend_verification():
    """Send the confirmation link again; back to the page that asked (an event's page)."""
    form = SafeForm()
    if form.validate_on_submit():
        try:
            accounts.resend_verification(user_id=current_user.id, now=now())
        except accounts.AccountError as error:
            flash(str(error), "info")
        else:
            flash(f"We've sent a new link to {current_user.email}. It works for 24 hours.",
                  "success")
    else:
        flash("Your session expired while the page was open. Please try again.", "error")
    return redirect(safe_next(request.form.get("next")) or url_for("account.index"), code=303)


# --------------------------------------------------------------- forgotten passwords


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["ACCOUNT_EMAIL_LIMIT_PER_IP"], methods=["POST"])
@limiter.limit(lambda: current_app.config["ACCOUNT_EMAIL_LIMIT"], methods=["POST"],
               key_func=lambda: "forgot:" + _typed_address())
def forgot_password():
    """Ask for a reset link: the same answer, after the same work, whether or not an
    account uses the address."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        try:
            email = accounts.request_password_reset(email=form.email.data, now=now())
        except accounts.AccountError as error:
            attach_error(form, error)
        else:
            flash(f"If an account uses {email}, we've sent it a link to choose a new "
                  "password. The link works for an hour.", "info")
            return redirect(url_for("auth.login"), code=303)
    return render_template("auth/forgot.html", form=form), _status(form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """The link in the reset email: choose a new password (every session then ends)."""
    form = ResetPasswordForm()
    try:
        user = accounts.check_reset_link(token=token, now=now())
        if form.validate_on_submit():
            accounts.reset_password(token=token, password=form.password.data, now=now())
            sign_out()  # this browser's session ended with the others
            flash("Your new password is set, and every browser signed in to your account "
                  "was signed out. Sign in with your new password.", "success")
            return redirect(url_for("auth.login"), code=303)
    except LinkError as error:
        return link_problem(error, ask_again="reset")
    except accounts.AccountError as error:
        attach_error(form, error)
    return render_template("auth/reset.html", form=form, address=user.email), _status(form)


# --------------------------------------------------------------- too many tries


def wait_words(seconds: float) -> str:
    """How long to wait, as a person would say it: '40 seconds', '5 minutes', '3 hours'."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 90:
        return f"{seconds} seconds"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3600)} hours"


_TOO_MANY = {
    "auth.login": ("auth/login.html", LoginForm,
                   "Too many failed attempts. Please wait {wait} before trying again, or "
                   "choose a new password if you've forgotten it."),
    "auth.signup": ("auth/signup.html", SignupForm,
                    "Too many sign-ups from your network. Please wait {wait} before trying "
                    "again."),
    "auth.forgot_password": ("auth/forgot.html", ForgotPasswordForm,
                             "You've asked for several links already. Please wait {wait}, "
                             "and look for the ones we sent (in your spam folder too)."),
}


def _wait_seconds() -> float:
    """Until every limit this request broke lets it through again (a growing wait's
    longest step)."""
    ends = [limit.reset_at for limit in limiter.current_limits if limit.breached]
    return max(1.0, max(ends) - time.time()) if ends else 300.0


def too_many_requests(text: str):
    """A 429 page saying ``text`` (``{wait}``: how long, in words) and when to retry."""
    seconds = _wait_seconds()
    response = current_app.make_response(
        (render_template("errors/error.html", title="Too many requests",
                         text=text.format(wait=wait_words(seconds)), code=429), 429))
    response.headers["Retry-After"] = str(math.ceil(seconds))
    return response


@bp.errorhandler(429)
def too_many_attempts(error):
    if request.endpoint not in _TOO_MANY:  # asking for the confirmation link again
        return too_many_requests("You've asked for several links already. Please wait "
                                 "{wait}, and look for the ones we sent (in your spam "
                                 "folder too).")
    seconds = _wait_seconds()
    template, form_class, text = _TOO_MANY[request.endpoint]
    form = form_class()
    form.form_errors.append(text.format(wait=wait_words(seconds)))
    response = current_app.make_response((render_template(template, form=form), 429))
    response.headers["Retry-After"] = str(math.ceil(seconds))
    return response
