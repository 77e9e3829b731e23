"""Framework adapters: Flask-Login, Starlette request.user, Django request.user."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import flask
import flask_login
import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from test_asgi import http_scope, run

from otel_audit import Actor, get_request_context, request_context
from otel_audit.asgi import AuditASGIMiddleware
from otel_audit.web_adapters import (
    DjangoActorMiddleware,
    django_user_actor,
    starlette_user_actor,
)
from otel_audit.wsgi import AuditWSGIMiddleware, flask_login_actor


def test_flask_login_actor_reaches_denial_event(pipeline):
    """With Flask-Login, a logged-in user's 403 is attributed to that user."""
    app = flask.Flask(__name__)
    app.secret_key = "test-only"
    manager = flask_login.LoginManager(app)

    class User(flask_login.UserMixin):
        def __init__(self, ident: str) -> None:
            self.id = ident
            self.username = f"name-{ident}"
            self.roles = ["viewer"]

    manager.user_loader(User)

    @app.post("/login/<ident>")
    def login(ident: str) -> str:
        flask_login.login_user(User(ident))
        return "ok"

    @app.get("/admin/panel")
    def admin() -> tuple[str, int]:
        return "no", 403

    app.wsgi_app = AuditWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, actor_hook=flask_login_actor, settings=pipeline.settings
    )
    client = app.test_client()
    for method, path, status in (("post", "/login/u7", 200), ("get", "/admin/panel", 403)):
        with getattr(client, method)(path) as response:  # closing the body ends the request
            assert status == response.status_code
    (event,) = pipeline.events("authorization.denied")
    assert event.attributes["user.id"] == "u7"
    assert event.attributes["user.name"] == "name-u7"
    assert tuple(event.attributes["user.roles"]) == ("viewer",)
    assert flask_login_actor() is None  # outside a request


def test_starlette_user_actor_with_authentication_middleware(pipeline):
    """Starlette's AuthenticationMiddleware fills scope['user']; the denial event names it."""

    class Backend(AuthenticationBackend):
        async def authenticate(self, conn: Any) -> Any:
            user = conn.headers.get("x-user")
            return (AuthCredentials(["authenticated"]), SimpleUser(user)) if user else None

    async def admin(request: Any) -> PlainTextResponse:
        return PlainTextResponse("no", status_code=403)

    app = Starlette(
        routes=[Route("/admin/{item}", admin)],
        middleware=[
            Middleware(
                AuditASGIMiddleware, actor_hook=starlette_user_actor, settings=pipeline.settings
            ),
            Middleware(AuthenticationMiddleware, backend=Backend()),
        ],
    )
    sent = run(app, http_scope("/admin/1", headers=[(b"x-user", b"dave")]))
    assert sent[0]["status"] == 403
    (event,) = pipeline.events("authorization.denied")
    assert event.attributes["user.name"] == "dave"
    assert tuple(event.attributes["user.roles"]) == ("authenticated",)
    assert event.attributes["http.route"] == "/admin/{item}"


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, None),
        (SimpleNamespace(is_authenticated=False), None),
        (
            SimpleNamespace(
                is_authenticated=True,
                pk=3,
                is_superuser=True,
                is_staff=True,
                get_username=lambda: "root",
            ),
            Actor(id="3", name="root", roles=("superuser", "staff")),
        ),
        (
            SimpleNamespace(is_authenticated=True, pk=4, username="eve"),
            Actor(id="4", name="eve"),
        ),
    ],
)
def test_django_user_actor(user, expected):
    """Django users become actors; anonymous users do not."""
    assert expected == django_user_actor(user)


def test_django_middleware_updates_context():
    """The Django middleware copies request.user into the current request context."""
    user = SimpleNamespace(is_authenticated=True, pk=9, get_username=lambda: "frank")
    seen: list[Any] = []
    middleware = DjangoActorMiddleware(lambda _request: seen.append(get_request_context()) or "r")
    with request_context(path="/x"):
        assert middleware(SimpleNamespace(user=user)) == "r"
    assert Actor(id="9", name="frank") == seen[0].actor


def test_starlette_user_actor_anonymous():
    """No user, or an unauthenticated one, gives no actor."""
    assert starlette_user_actor({}) is None
    assert starlette_user_actor({"user": SimpleNamespace(is_authenticated=False)}) is None
