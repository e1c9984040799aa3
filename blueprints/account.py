"""The account page: name, email address, password, signed-in browsers, deleting it."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from blueprints.auth import SESSION_ID, link_problem, requester_key, sign_out, too_many_requests
from blueprints.forms import (
    DeleteAccountForm,
    EmailChangeForm,
    NameForm,
    PasswordChangeForm,
    SafeForm,
    attach_error,
)
from blueprints.helpers import now
from extensions import limiter
from services import accounts, sessions
from services.account_links import LinkError

bp = Blueprint("account", __name__)

# The forms on the page, by the ``action`` each posts.
FORMS = {"name": NameForm, "email": EmailChangeForm, "password": PasswordChangeForm,
         "delete": DeleteAccountForm}
SIGN_OUT_EVERYWHERE = "sign-out-everywhere"


def _change(action: str, form) -> str:
    """Do what ``form`` asks (AccountError if refused); what to tell the person."""
    user_id, moment = current_user.id, now()
    if action == "name":
        accounts.change_name(user_id=user_id, name=form.name.data, now=moment)
        return "Your name is saved."
    if action == "email":
        email = accounts.change_email(user_id=user_id, email=form.email.data,
                                      current_password=form.current_password.data, now=moment)
        return (f"We've sent a link to {email}: your address changes once you open it. Until "
                f"then it stays {current_user.email}.")
    if action == "password":
        accounts.change_password(user_id=user_id, current_password=form.current_password.data,
                                 password=form.password.data, keep_session=session.get(SESSION_ID),
                                 now=moment)
        return ("Your password is changed, and every other browser signed in to your account "
                "was signed out.")
    accounts.delete_account(user_id=user_id, current_password=form.current_password.data,
                            now=moment)
    return "Your account is deleted: your name and email address are erased. Goodbye!"


def _asks_for_another_address() -> bool:
    return request.form.get("action") == "email"


@bp.route("/account", methods=["GET", "POST"])
@login_required
# Each request for a new address emails it and the old one: not a way to send mail to
# anyone (or to try which addresses have accounts) at will.
@limiter.limit(lambda: current_app.config["ACCOUNT_EMAIL_LIMIT"], methods=["POST"],
               key_func=lambda: requester_key("email-change"),
               exempt_when=lambda: not _asks_for_another_address())
def index():
    forms = {action: form_class(formdata=None) for action, form_class in FORMS.items()}
    forms["name"].name.data = current_user.name
    if request.method == "POST":
        action = request.form.get("action")
        if action == SIGN_OUT_EVERYWHERE:
            return _sign_out_everywhere()
        if action not in FORMS:
            abort(400, description="That action isn't available here.")
        form = forms[action] = FORMS[action]()
        if form.validate():
            try:
                message = _change(action, form)
            except accounts.AccountError as error:
                attach_error(form, error)
            else:
                flash(message, "success")
                if action == "delete":
                    sign_out()
                    return redirect(url_for("events.index"), code=303)
                return redirect(url_for("account.index"), code=303)
    moment = now()
    html = render_template(
        "account/index.html", forms=forms, sign_out_form=SafeForm(formdata=None),
        browsers=sessions.live_session_count(user_id=current_user.id, now=moment),
        deletion_problem=accounts.deletion_problem(user_id=current_user.id, now=moment))
    return html, 422 if request.method == "POST" else 200


@bp.errorhandler(429)
def too_many_changes(error):
    return too_many_requests("You've asked to change your email address several times "
                             "already. Please wait {wait} before trying again.")


def _sign_out_everywhere():
    sessions.end_all_sessions(user_id=current_user.id, now=now())
    sign_out()
    flash("You're signed out everywhere, this browser included. Sign in again to carry on.",
          "success")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/account/email/<token>", methods=["GET", "POST"])
def confirm_email(token: str):
    """The link sent to a new address: a page with one button, which moves the account."""
    form = SafeForm()
    try:
        if form.validate_on_submit():
            user = accounts.confirm_email_change(token=token, now=now())
            flash(f"Your email address is now {user.email}.", "success")
            return redirect(url_for("account.index" if current_user.is_authenticated
                                    else "auth.login"), code=303)
        user = accounts.check_email_change_link(token=token, now=now())
    except LinkError as error:
        return link_problem(error, ask_again="change")
    except accounts.AccountError as error:  # taken meanwhile
        return render_template("auth/link_problem.html", message=error.message,
                               ask_again="change"), 409
    return render_template("auth/confirm_link.html", form=form, address=user.pending_email,
                           heading="Confirm your new email address",
                           button="Use this email address"), 422 if form.is_submitted() else 200
