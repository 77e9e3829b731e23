"""
Actor hooks for common web frameworks.

Each turns the framework's idea of the current user into an :class:`~otel_audit.Actor`.

They read duck-typed attributes and import nothing from a framework at module import
time, so this module costs nothing where Flask, Django or Starlette is absent. They never
raise for an anonymous user; the middlewares guard them anyway.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from otel_audit._context import Actor, to_actor, update_request_context

__all__ = [
    "DjangoActorMiddleware",
    "django_user_actor",
    "flask_login_actor",
    "starlette_state_actor",
    "starlette_user_actor",
]


def _roles(user: Any) -> tuple[str, ...]:
    roles = getattr(user, "roles", None)
    if isinstance(roles, str):
        return (roles,)
    if isinstance(roles, Iterable):
        return tuple(str(getattr(r, "name", r)) for r in roles)
    return ()


def _name(user: Any) -> str | None:
    for attribute in ("username", "name"):
        value = getattr(user, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def flask_login_actor(_environ: Mapping[str, Any] | None = None) -> Actor | None:
    """
    The Flask-Login ``current_user``, or ``None`` outside a Flask request or when anonymous.

    Usable as the WSGI ``actor_hook`` (the environ is ignored: Flask-Login keeps the user
    in Flask's request context). Name comes from ``username``/``name``, roles from
    ``roles`` (strings or objects with ``.name``).
    """
    from flask import has_request_context  # noqa: PLC0415  # optional dependency

    if not has_request_context():
        return None
    from flask_login import current_user  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415

    user: Any = current_user
    if not getattr(user, "is_authenticated", False):
        return None
    ident = user.get_id()
    return Actor(id=None if ident is None else str(ident), name=_name(user), roles=_roles(user))


def django_user_actor(user: Any) -> Actor | None:
    """
    A Django ``request.user`` as an Actor, ``None`` for ``AnonymousUser``.

    Roles are ``superuser``/``staff`` from the flags: reading ``user.groups`` would cost a
    database query on every request.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    roles = []
    if getattr(user, "is_superuser", False):
        roles.append("superuser")
    if getattr(user, "is_staff", False):
        roles.append("staff")
    get_username = getattr(user, "get_username", None)
    name = get_username() if callable(get_username) else _name(user)
    pk = getattr(user, "pk", None)
    return Actor(id=None if pk is None else str(pk), name=name, roles=tuple(roles))


class DjangoActorMiddleware:
    """
    Django middleware that copies ``request.user`` into otel-audit's request context.

    Put it after ``django.contrib.auth.middleware.AuthenticationMiddleware``; the WSGI
    :class:`~otel_audit.wsgi.AuditWSGIMiddleware` must wrap the application so that a
    request context exists.
    """

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        """Record the actor, then hand on; an audit helper must never fail a request."""
        with contextlib.suppress(Exception):
            update_request_context(actor=django_user_actor(getattr(request, "user", None)))
        return self.get_response(request)


def starlette_user_actor(scope: Mapping[str, Any]) -> Actor | None:
    """
    Starlette's ``request.user`` (``scope["user"]``, set by ``AuthenticationMiddleware``).

    Usable as the ASGI ``actor_hook``. The middleware asks again when the response starts,
    by which time an inner ``AuthenticationMiddleware`` has filled the scope.
    """
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        ident = user.identity
    except NotImplementedError:  # starlette.authentication.SimpleUser has no identity
        ident = None
    try:
        name = user.display_name
    except NotImplementedError:
        name = None
    auth = scope.get("auth")
    roles = _roles(user) or tuple(str(s) for s in getattr(auth, "scopes", ()) or ())
    return Actor(
        id=None if ident is None else str(ident),
        name=None if name is None else str(name),
        roles=roles,
    )


def starlette_state_actor(scope: Mapping[str, Any]) -> Actor | None:
    """
    ``request.state.actor`` (``scope["state"]["actor"]``), as FastAPI dependencies set it.

    ``request.state`` is shared by every layer of the request, unlike a ``ContextVar``
    set inside a dependency that runs in a worker thread, so the middleware sees it.
    """
    state = scope.get("state")
    if not isinstance(state, Mapping):
        return None
    value = state.get("actor")
    return to_actor(value) if value is not None else None
