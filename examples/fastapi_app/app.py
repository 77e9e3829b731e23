"""
The FastAPI twin of the Flask example: the same story, audited by otel-audit over ASGI.

Run it under OpenTelemetry's zero-code launcher (with
``opentelemetry-instrumentation-fastapi`` installed the OpenTelemetry middleware is added
outermost automatically; there is no ``configure()`` call here)::

    OTEL_SERVICE_NAME=fastapi-example OTEL_PYTHON_AUDIT_TRUSTED_PROXIES=127.0.0.1/32 \\
    OTEL_PYTHON_AUDIT_DETECTIONS=true \\
    opentelemetry-instrument uvicorn --host 127.0.0.1 --port 8000 app:app
"""

from __future__ import annotations

import logging
import secrets
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _accounts import Accounts, User, valid_totp  # sibling module of the examples

from otel_audit import Actor, security_event, update_request_context
from otel_audit.asgi import AuditASGIMiddleware
from otel_audit.web_adapters import starlette_state_actor

log = logging.getLogger("security")
accounts = Accounts()
app = FastAPI(title="otel-audit FastAPI example")
app.add_middleware(AuditASGIMiddleware, actor_hook=starlette_state_actor)

_sessions: dict[str, str] = {}  # bearer token -> user id
_sessions_lock = threading.Lock()


def _actor(user: User) -> Actor:
    return Actor(id=user.id, name=user.username, roles=tuple(sorted(user.roles)))


async def current_user(request: Request) -> User:
    """
    Resolve the bearer session (async, so it runs in the request's own context).

    The actor goes to ``request.state`` for the middleware's automatic events and to the
    request context for the endpoint's own events.
    """
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip()
    with _sessions_lock:
        user_id = _sessions.get(token) if token else None
    user = accounts.by_id(user_id) if user_id else None
    if user is None:
        raise HTTPException(status_code=401, detail="login required")
    request.state.actor = _actor(user)
    update_request_context(actor=request.state.actor)
    return user


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if "admin" not in user.roles:
        raise HTTPException(status_code=403, detail="forbidden")  # → authorization.denied
    return user


CurrentUser = Annotated[User, Depends(current_user)]


@app.post("/login")
async def login(request: Request) -> Any:
    body = await request.json()
    username = str(body.get("username", ""))
    user = accounts.check_password(username, str(body.get("password", "")))
    if user is None:
        # A careless line that logs the whole request body; tier-1 redaction must strip
        # the password before it leaves the process.
        log.warning("login failed", extra={"otel.event.name": "authentication.failure",
                                           "user.name": username, "request.body": dict(body),
                                           "audit.reason": "bad_credentials"})  # fmt: skip
        return JSONResponse({"error": "invalid credentials"}, status_code=401)
    token = secrets.token_urlsafe(24)
    with _sessions_lock:
        _sessions[token] = user.id
    security_event("authentication.success", actor=_actor(user))
    return {"ok": True, "token": token}


@app.post("/logout", dependencies=[Depends(current_user)])
async def logout(request: Request) -> Any:
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    with _sessions_lock:
        _sessions.pop(token, None)
    security_event("authentication.logout")
    return {"ok": True}


@app.post("/account/password")
async def change_password(request: Request, user: CurrentUser) -> Any:
    body = await request.json()
    if accounts.check_password(user.username, str(body.get("old_password", ""))) is None:
        security_event(
            "authentication.password_changed", outcome="failure", reason="bad_old_password"
        )
        return JSONResponse({"error": "wrong password"}, status_code=400)
    accounts.set_password(user, str(body["new_password"]))
    security_event("authentication.password_changed", target=user.id)
    return {"ok": True}


@app.post("/account/mfa")
async def enroll_mfa(request: Request, user: CurrentUser) -> Any:
    code = str((await request.json()).get("code", ""))
    if not valid_totp(code):
        security_event("authentication.mfa_challenge_failure", reason="bad_code")
        return JSONResponse({"error": "bad code"}, status_code=400)
    user.mfa_enrolled = True
    security_event("authentication.mfa_enrolled", target=user.id)
    return {"ok": True}


@app.post("/api/keys")
async def create_api_key(user: CurrentUser) -> Any:
    key_id, key = accounts.new_api_key(user)
    security_event("api_key.created", target={"key_id": key_id})
    return {"key_id": key_id, "key": key}


@app.get("/export", dependencies=[Depends(current_user)])
async def export(rows: int = 10) -> Any:
    rows = min(rows, 1_000_000)
    security_event("data.exported", target="customers", **{"audit.data.record_count": rows})
    return {"rows": rows}


@app.get("/admin/users", dependencies=[Depends(admin_user)])
async def list_users() -> Any:
    return {"users": ["alice", "bob", "root"]}


@app.post("/admin/roles", dependencies=[Depends(admin_user)])
async def grant_role(request: Request) -> Any:
    body = await request.json()
    username, role = str(body["user"]), str(body["role"])
    if accounts.grant(username, role) is None:
        return JSONResponse({"error": "no such user"}, status_code=404)
    security_event("account.role_granted", target={"user": username, "role": role})
    return {"ok": True}


@app.get("/healthz")
async def healthz() -> Any:
    return {"ok": True}
