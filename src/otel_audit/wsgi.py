"""
WSGI middleware that puts who and where on every security event of a request.

Every security event emitted while a request is handled knows the client address, user
agent, request id, method, path and actor, and 401/403, 429 and 5xx-on-sensitive-routes
answers become security events by themselves.

Usage
-----

Recommended order: the OpenTelemetry middleware **outside**, otel-audit inside, so that
everything otel-audit emits (including the automatic events) happens inside the server
span and carries its trace id. The other order works too (tested); then the automatic
events are emitted inside the OpenTelemetry middleware's span all the same, because
``start_response`` is called from within it.

Flask::

    from flask import Flask
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from otel_audit import update_request_context
    from otel_audit.wsgi import AuditWSGIMiddleware, flask_login_actor

    app = Flask(__name__)
    app.wsgi_app = OpenTelemetryMiddleware(AuditWSGIMiddleware(app.wsgi_app))

    @app.before_request
    def audit_actor() -> None:
        update_request_context(actor=flask_login_actor())

``flask_login_actor`` reads ``flask_login.current_user``, which exists only inside Flask's
request context, so set it once per request from ``before_request``: every event of the
request, the views' and the automatic ones, then carries the user. Passing it as
``actor_hook=flask_login_actor`` instead works for the automatic events only (the hook
finds nobody when the request starts and is asked again when an event is emitted).

Django (``wsgi.py``)::

    from django.core.wsgi import get_wsgi_application
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from otel_audit.wsgi import AuditWSGIMiddleware

    application = OpenTelemetryMiddleware(AuditWSGIMiddleware(get_wsgi_application()))

and, after ``AuthenticationMiddleware`` in ``MIDDLEWARE``,
``"otel_audit.web_adapters.DjangoActorMiddleware"`` to copy ``request.user`` into the
request context.

Plain WSGI::

    application = AuditWSGIMiddleware(
        application, actor_hook=lambda environ: environ.get("REMOTE_USER")
    )

Settings come from ``OTEL_PYTHON_AUDIT_*`` (the same object ``configure()`` or
``opentelemetry-instrument`` used): ``TRUSTED_PROXIES``, ``REQUEST_ID_HEADER``,
``HTTP_EVENTS``, ``SENSITIVE_ROUTES``; ``OTEL_PYTHON_AUDIT_ENABLED=false`` turns the
middleware into a pass-through.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import Token
from types import TracebackType
from typing import Any, Protocol

from otel_audit._context import (
    Actor,
    RequestContext,
    get_request_context,
    reset_request_context,
    set_request_context,
)
from otel_audit._settings import AuditSettings
from otel_audit._web import AuditMiddlewareBase, WebAudit
from otel_audit.web_adapters import flask_login_actor

__all__ = ["AuditWSGIMiddleware", "WSGIActorHook", "flask_login_actor"]

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
WSGIApplication = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]


class StartResponse(Protocol):
    """PEP 3333 ``start_response``."""

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = ...,
        /,
    ) -> Callable[[bytes], object]: ...


WSGIActorHook = Callable[[Mapping[str, Any]], Any]
"""Given the WSGI environ, return the actor: an Actor, a user id, a mapping, or None."""


class AuditWSGIMiddleware(AuditMiddlewareBase[WSGIApplication, Mapping[str, Any]]):
    """
    Fill otel-audit's request context for each WSGI request and emit the HTTP events.

    Args:
        app: The WSGI application.
        actor_hook: Returns the actor for a request from its environ. Guarded: if it
            raises, the request goes on without an actor and ``stats["hook_errors"]``
            counts it.
        settings: Override the settings (default: those of ``configure()``, else the
            environment).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        actor_hook: WSGIActorHook | None = None,
        settings: AuditSettings | None = None,
    ) -> None:
        super().__init__(app, actor_hook=actor_hook, settings=settings)
        header = self._web.request_id_header
        self._request_id_key = "HTTP_" + header.upper().replace("-", "_")
        self._forwarding = self._web.resolver.trusts_any

    def _context(self, environ: Environ) -> RequestContext:
        port = environ.get("REMOTE_PORT")
        forwarding = self._forwarding
        return self._web.context(
            peer=environ.get("REMOTE_ADDR"),
            port=int(port) if isinstance(port, str) and port.isdigit() else None,
            forwarded=environ.get("HTTP_FORWARDED") if forwarding else None,
            x_forwarded=environ.get("HTTP_X_FORWARDED_FOR") if forwarding else None,
            agent=environ.get("HTTP_USER_AGENT"),
            request_id=environ.get(self._request_id_key),
            method=environ.get("REQUEST_METHOD"),
            path=environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
            actor=self._hook(environ) if self._hook is not None else None,
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request; the context stays set until the server closes the body."""
        if not self._web.enabled:
            return self.app(environ, start_response)
        token = set_request_context(self._context(environ))
        request = _Request(self._web, self._hook, environ, start_response)
        try:
            iterable = self.app(environ, request)
        except BaseException as exc:
            request.failed(exc)
            _reset(token)
            raise
        # The server consumes the body after we return: keep the context until it closes.
        return _ClosingIterable(iterable, token, request)


class _Request:
    """
    One request's ``start_response`` (PEP 3333) and bookkeeping.

    A callable object rather than a ``functools.wraps`` closure: built for every request,
    and the closure plus ``wraps`` cost more than the rest of the wrapper.
    """

    __slots__ = ("_environ", "_hook", "_start_response", "_web", "emitted", "status")

    def __init__(
        self,
        web: WebAudit,
        hook: Callable[[Environ], Actor | None] | None,
        environ: Environ,
        start_response: StartResponse,
    ) -> None:
        self._web = web
        self._hook = hook
        self._environ = environ
        self._start_response = start_response
        self.status: int | None = None
        self.emitted: set[int] = set()

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        """Note the status (and emit its event), then call the server's start_response."""
        self.response_started(status)
        if exc_info is None:
            return self._start_response(status, headers)
        return self._start_response(status, headers, exc_info)

    def _ask_actor(self) -> Actor | None:
        return self._hook(self._environ) if self._hook is not None else None

    def _emit(self, status: int, reason: str | None = None) -> None:
        if status in self.emitted:  # one event per status and request
            return
        self.emitted.add(status)
        ask = self._ask_actor if self._hook is not None else None
        self._web.emit_for_status(status, get_request_context(), ask_actor=ask, reason=reason)

    def response_started(self, status_line: str) -> None:
        try:
            status = int(status_line.split(" ", 1)[0])
        except (ValueError, AttributeError):
            return
        self.status = status
        if self._web.wants(status):
            self._emit(status)

    def failed(self, exc: BaseException) -> None:
        """The app raised: the server answers 500 unless a response already started."""
        if not isinstance(exc, Exception) or (self.status is not None and self.status >= 500):  # noqa: PLR2004
            return
        if self._web.wants(500):  # what the server will answer
            self._emit(500, f"exception:{type(exc).__name__}")


def _reset(token: Token[RequestContext | None]) -> None:
    # Closed from another thread or context (a server that does not follow PEP 3333):
    # that context was never ours to clean, and the next request sets its own.
    with contextlib.suppress(ValueError, RuntimeError):
        reset_request_context(token)


class _ClosingIterable:
    """
    Pass the body through unchanged and restore the request context when it is closed.

    A class rather than a generator so that a body the server never closes does not
    reset a context from whichever thread the garbage collector runs on.
    """

    __slots__ = ("_closed", "_inner", "_iterator", "_request", "_restored", "_token")

    def __init__(
        self, inner: Iterable[bytes], token: Token[RequestContext | None], request: _Request
    ) -> None:
        self._inner = inner
        self._iterator: Iterator[bytes] | None = None
        self._token = token
        self._request = request
        self._closed = False
        self._restored = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._inner)
        try:
            return next(self._iterator)
        except StopIteration:
            # The body is complete. Restore now rather than only in close(): test clients
            # and some servers close late, and the context must not leak into their thread.
            self._restore()
            raise
        except BaseException as exc:
            self._request.failed(exc)
            raise

    def _restore(self) -> None:
        if not self._restored:
            self._restored = True
            _reset(self._token)

    def close(self) -> None:
        """Close the inner body (PEP 3333), then restore the request context."""
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._restore()
