"""
A small Flask service whose security-relevant actions are audited by otel-audit.

Run it under OpenTelemetry's zero-code launcher; there is no ``configure()`` call here,
the ``opentelemetry_post_instrument`` hook of otel-audit builds the pipeline from the
environment (see README.md)::

    OTEL_SERVICE_NAME=flask-example OTEL_PYTHON_AUDIT_TRUSTED_PROXIES=127.0.0.1/32 \\
    OTEL_PYTHON_AUDIT_DETECTIONS=true \\
    opentelemetry-instrument waitress-serve --listen=127.0.0.1:8000 app:app
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _accounts import Accounts, User, valid_totp  # sibling module of the examples

from otel_audit import security_event, update_request_context
from otel_audit.wsgi import AuditWSGIMiddleware, flask_login_actor

log = logging.getLogger("security")
accounts = Accounts()
app = Flask(__name__)
# Signs the session cookie. Never a literal in code that gets copied: from the environment,
# else a fresh key per process (sessions then end when the server restarts).
app.secret_key = os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)
login_manager = LoginManager(app)


class LoginUser(UserMixin):
    def __init__(self, user: User) -> None:
        self.user = user
        self.id = user.id
        self.username = user.username
        self.roles = sorted(user.roles)


@login_manager.user_loader
def load_user(user_id: str) -> LoginUser | None:
    user = accounts.by_id(user_id)
    return LoginUser(user) if user else None


@login_manager.unauthorized_handler
def unauthorized() -> tuple[Response, int]:
    return jsonify(error="login required"), 401


@app.before_request
def remember_actor() -> None:
    # Give every event of this request, the automatic ones included, the logged-in user
    # without passing actor= each time. (This is why the middleware below needs no
    # actor_hook: the hook would only find what this already put in the context.)
    update_request_context(actor=flask_login_actor())


def admin_only(view: Any) -> Any:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return unauthorized()
        if "admin" not in current_user.roles:
            return jsonify(error="forbidden"), 403  # the middleware records authorization.denied
        return view(*args, **kwargs)

    return wrapper


@app.post("/login")
def login() -> Any:
    body = request.get_json(force=True)
    username = str(body.get("username", ""))
    user = accounts.check_password(username, str(body.get("password", "")))
    if user is None:
        # A careless line that logs the whole request body; tier-1 redaction must strip
        # the password before it leaves the process.
        log.warning("login failed", extra={"otel.event.name": "authentication.failure",
                                           "user.name": username, "request.body": dict(body),
                                           "audit.reason": "bad_credentials"})  # fmt: skip
        return jsonify(error="invalid credentials"), 401
    login_user(LoginUser(user))
    security_event("authentication.success", actor={"id": user.id, "name": user.username})
    return jsonify(ok=True)


@app.post("/logout")
@login_required
def logout() -> Any:
    security_event("authentication.logout")
    logout_user()
    return jsonify(ok=True)


@app.post("/account/password")
@login_required
def change_password() -> Any:
    body = request.get_json(force=True)
    user = current_user.user
    if accounts.check_password(user.username, str(body.get("old_password", ""))) is None:
        security_event(
            "authentication.password_changed", outcome="failure", reason="bad_old_password"
        )
        return jsonify(error="wrong password"), 400
    accounts.set_password(user, str(body["new_password"]))
    security_event("authentication.password_changed", target=user.id)
    return jsonify(ok=True)


@app.post("/account/mfa")
@login_required
def enroll_mfa() -> Any:
    code = str(request.get_json(force=True).get("code", ""))
    if not valid_totp(code):
        security_event("authentication.mfa_challenge_failure", reason="bad_code")
        return jsonify(error="bad code"), 400
    current_user.user.mfa_enrolled = True
    security_event("authentication.mfa_enrolled", target=current_user.id)
    return jsonify(ok=True)


@app.post("/api/keys")
@login_required
def create_api_key() -> Any:
    key_id, key = accounts.new_api_key(current_user.user)
    security_event("api_key.created", target={"key_id": key_id})
    return jsonify(key_id=key_id, key=key)


@app.get("/export")
@login_required
def export() -> Any:
    rows = min(int(request.args.get("rows", "10")), 1_000_000)
    security_event("data.exported", target="customers", **{"audit.data.record_count": rows})
    return jsonify(rows=rows)


@app.get("/admin/users")
@admin_only
def list_users() -> Any:
    return jsonify(users=["alice", "bob", "root"])


@app.post("/admin/roles")
@admin_only
def grant_role() -> Any:
    body = request.get_json(force=True)
    username, role = str(body["user"]), str(body["role"])
    if accounts.grant(username, role) is None:
        return jsonify(error="no such user"), 404
    security_event("account.role_granted", target={"user": username, "role": role})
    return jsonify(ok=True)


@app.get("/healthz")
def healthz() -> Any:
    return jsonify(ok=True)


# OpenTelemetry outside, otel-audit inside: every audit event lands in the server span.
app.wsgi_app = OpenTelemetryMiddleware(AuditWSGIMiddleware(app.wsgi_app))  # type: ignore[method-assign]
