"""The actor hook's guard and its second call, the same for the WSGI and ASGI middlewares."""

from __future__ import annotations

from typing import Any

import pytest
from test_asgi import http_scope, run
from test_asgi import status_app as asgi_app
from test_wsgi import call, make_environ
from test_wsgi import status_app as wsgi_app

from otel_audit._web import AuditMiddlewareBase
from otel_audit.asgi import AuditASGIMiddleware
from otel_audit.wsgi import AuditWSGIMiddleware

PROTOCOLS = ("wsgi", "asgi")


def serve(
    protocol: str, status: int, path: str, hook: Any, settings: Any
) -> AuditMiddlewareBase[Any, Any]:
    """One request answered with ``status`` through the middleware; returns the middleware."""
    if protocol == "wsgi":
        wsgi = AuditWSGIMiddleware(wsgi_app(f"{status} X"), actor_hook=hook, settings=settings)
        assert call(wsgi, make_environ(path))[0] == f"{status} X"
        return wsgi
    asgi = AuditASGIMiddleware(asgi_app(status), actor_hook=hook, settings=settings)
    assert run(asgi, http_scope(path))[0]["status"] == status
    return asgi


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_raising_hook_does_not_break_the_request(pipeline, protocol):
    """A hook that raises leaves the actor empty, is counted, and the response goes out."""

    def hook(request: Any) -> Any:
        msg = "hook bug"
        raise KeyError(msg)

    middleware = serve(protocol, 403, "/admin", hook, pipeline.settings)
    assert middleware.stats.snapshot()["hook_errors"] == 2  # at start and again for the event
    (event,) = pipeline.events("authorization.denied")
    assert "user.id" not in event.attributes


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("status", "path"), [(200, "/x"), (500, "/public"), (404, "/admin")])
def test_hook_not_asked_again_without_an_event(pipeline, protocol, status, path):
    """The second call at response start happens only when an event is emitted."""
    calls: list[Any] = []
    serve(protocol, status, path, calls.append, pipeline.settings)
    assert len(calls) == 1
    assert pipeline.events() == []
