"""
ASGI middleware that puts who and where on every security event of a request.

Every security event emitted while a request is handled knows the client address, user
agent, request id, method, path and actor, and 401/403, 429 and 5xx-on-sensitive-routes
answers become security events by themselves.

Usage
-----

Recommended order: the OpenTelemetry middleware **outside**, otel-audit inside, so that
everything otel-audit emits happens inside the server span and carries its trace id. The
other order works too (tested): the automatic events are then emitted inside the
OpenTelemetry ``send`` span, a child of the server span, with the same trace id.

FastAPI (``FastAPIInstrumentor``, or ``opentelemetry-instrument`` with
``opentelemetry-instrumentation-fastapi``, puts the OpenTelemetry middleware outermost)::

    from fastapi import FastAPI
    from otel_audit.asgi import AuditASGIMiddleware
    from otel_audit.web_adapters import starlette_state_actor

    app = FastAPI()
    app.add_middleware(AuditASGIMiddleware, actor_hook=starlette_state_actor)

    # in an (async) auth dependency:  request.state.actor = Actor(id=user.id, ...)

Starlette with ``AuthenticationMiddleware``::

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from otel_audit.asgi import AuditASGIMiddleware
    from otel_audit.web_adapters import starlette_user_actor

    app = Starlette(middleware=[
        Middleware(AuditASGIMiddleware, actor_hook=starlette_user_actor),
        Middleware(AuthenticationMiddleware, backend=MyBackend()),
    ])

Plain ASGI::

    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    app = OpenTelemetryMiddleware(AuditASGIMiddleware(app))

The actor hook is called with the scope when the request starts and, if it found
nobody, again when the response starts, when inner authentication layers have filled
``scope["user"]`` / ``scope["state"]``. Lifespan messages pass straight through;
websocket connections get a request context but their ``receive``/``send`` are handed on
untouched, and so are streamed HTTP bodies (only ``http.response.start`` is looked at).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from otel_audit._context import (
    RequestContext,
    get_request_context,
    reset_request_context,
    set_request_context,
)
from otel_audit._settings import AuditSettings
from otel_audit._web import AuditMiddlewareBase

__all__ = ["ASGIActorHook", "AuditASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ASGIActorHook = Callable[[Scope], Any]
"""Given the ASGI scope, return the actor: an Actor, a user id, a mapping, or None."""


class AuditASGIMiddleware(AuditMiddlewareBase[ASGIApp, Scope]):
    """
    Fill otel-audit's request context for each ASGI request and emit the HTTP events.

    Args:
        app: The ASGI application.
        actor_hook: Returns the actor from the scope. Guarded: if it raises, the request
            goes on without an actor and ``stats["hook_errors"]`` counts it.
        settings: Override the settings (default: those of ``configure()``, else the
            environment).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        actor_hook: ASGIActorHook | None = None,
        settings: AuditSettings | None = None,
    ) -> None:
        super().__init__(app, actor_hook=actor_hook, settings=settings)
        self._request_id = self._web.request_id_header.encode("latin-1")
        # Without a trusted proxy the forwarding headers are never believed: skip them.
        wanted = {b"user-agent", self._request_id}
        if self._web.resolver.trusts_any:
            wanted |= {b"forwarded", b"x-forwarded-for"}
        self._wanted = frozenset(wanted)

    def _context(self, scope: Scope) -> RequestContext:
        wanted = self._wanted
        found: dict[bytes, str] = {}
        for raw_name, raw_value in scope.get("headers") or ():
            name = raw_name.lower()
            if name in wanted:
                value = raw_value.decode("latin-1")
                # Repeated forwarding headers form one list, in order (RFC 9110 §5.3).
                found[name] = f"{found[name]}, {value}" if name in found else value
        client = scope.get("client")
        peer, port = (client[0], client[1]) if client else (None, None)
        return self._web.context(
            peer=peer,
            port=port if isinstance(port, int) else None,
            forwarded=found.get(b"forwarded"),
            x_forwarded=found.get(b"x-forwarded-for"),
            agent=found.get(b"user-agent"),
            request_id=found.get(self._request_id),
            method=scope.get("method"),
            path=scope.get("root_path", "") + scope.get("path", ""),
            actor=self._hook(scope) if self._hook is not None else None,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection; lifespan and disabled audit pass straight through."""
        kind = scope["type"]
        if kind not in ("http", "websocket") or not self._web.enabled:
            await self.app(scope, receive, send)
            return
        token = set_request_context(self._context(scope))
        try:
            if kind == "websocket":
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send)
        finally:
            reset_request_context(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        web = self._web
        started = False

        async def audit_send(message: Message) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True
                status = int(message.get("status", 0))
                if web.wants(status):
                    self._emit(scope, status, None)
            await send(message)

        try:
            await self.app(scope, receive, audit_send)
        except Exception as exc:
            if not started:  # the server will answer 500
                self._emit(scope, 500, f"exception:{type(exc).__name__}")
            raise

    def _emit(self, scope: Scope, status: int, reason: str | None) -> None:
        hook = self._hook
        route = getattr(scope.get("route"), "path", None)
        self._web.emit_for_status(
            status,
            get_request_context(),
            ask_actor=None if hook is None else lambda: hook(scope),
            route=route if isinstance(route, str) else None,
            reason=reason,
        )
