"""AuditASGIMiddleware through a real SDK pipeline, alone and with the OpenTelemetry middleware."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

from otel_audit import Actor, get_request_context, security_event
from otel_audit.asgi import AuditASGIMiddleware
from otel_audit.web_adapters import starlette_state_actor

Message = dict[str, Any]


def http_scope(path: str = "/", **extra: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"user-agent", b"pytest-agent")],
        "client": ("203.0.113.5", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    scope.update(extra)
    return scope


def run(app: Any, scope: dict[str, Any], incoming: list[Message] | None = None) -> list[Message]:
    """Drive one ASGI connection; return what the app sent."""
    sent: list[Message] = []
    queue = list(incoming or [{"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def status_app(status: int, seen: list[Any] | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if seen is not None:
            seen.append(get_request_context())
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


class TestRequestContext:
    def test_fields_filled_from_scope(self, pipeline):
        """Client through a trusted proxy, agent, request id, method, path and actor are set."""
        seen: list[Any] = []
        app = AuditASGIMiddleware(
            status_app(200, seen), actor_hook=lambda _scope: "u-1", settings=pipeline.settings
        )
        scope = http_scope(
            "/things",
            method="POST",
            client=("10.0.0.9", 1234),
            headers=[
                (b"user-agent", b"ua"),
                (b"x-forwarded-for", b"6.6.6.6"),
                (b"X-Forwarded-For", b"198.51.100.7"),
                (b"x-request-id", b"req-7"),
            ],
        )
        run(app, scope)
        ctx = seen[0]
        assert ctx.client_address == "198.51.100.7"  # repeated headers joined, rightmost wins
        assert ctx.client_port == 1234
        assert ctx.user_agent == "ua"
        assert ctx.request_id == "req-7"
        assert (ctx.method, ctx.path) == ("POST", "/things")
        assert Actor(id="u-1") == ctx.actor
        assert get_request_context() is None

    def test_spoofed_header_from_untrusted_peer_is_ignored(self, pipeline):
        """A client that is not a trusted proxy cannot choose its own address."""
        seen: list[Any] = []
        app = AuditASGIMiddleware(status_app(200, seen), settings=pipeline.settings)
        run(app, http_scope(headers=[(b"forwarded", b"for=10.0.0.1")]))
        assert seen[0].client_address == "203.0.113.5"

    def test_context_reset_when_app_raises(self, pipeline):
        """An exception resets the context, propagates, and on a sensitive route is an event."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            msg = "boom"
            raise RuntimeError(msg)

        async def main() -> None:
            with pytest.raises(RuntimeError, match="boom"):
                await AuditASGIMiddleware(app, settings=pipeline.settings)(
                    http_scope("/login"), None, None
                )
            assert get_request_context() is None

        asyncio.run(main())
        (event,) = pipeline.events("service.server_error")
        assert event.attributes["audit.reason"] == "exception:RuntimeError"

    def test_streaming_is_passed_through(self, pipeline):
        """Every body chunk is forwarded as is, with the context set throughout."""
        seen: list[Any] = []
        chunks = [
            {"type": "http.response.body", "body": bytes([i]), "more_body": i < 4} for i in range(5)
        ]

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for chunk in chunks:
                seen.append(get_request_context())
                await send(chunk)

        sent = run(AuditASGIMiddleware(app, settings=pipeline.settings), http_scope("/export"))
        assert chunks == sent[1:]
        assert all(s is c for s, c in zip(sent[1:], chunks, strict=True))
        assert all(ctx is not None and ctx.path == "/export" for ctx in seen)

    def test_websocket_is_untouched(self, pipeline):
        """Websocket receive/send are handed on as the very same callables."""
        got: dict[str, Any] = {}

        async def app(scope: Any, receive: Any, send: Any) -> None:
            got.update(receive=receive, send=send, ctx=get_request_context())
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})

        async def receive() -> Message:
            return {"type": "websocket.connect"}

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        scope = http_scope("/ws", type="websocket", scheme="ws")
        asyncio.run(AuditASGIMiddleware(app, settings=pipeline.settings)(scope, receive, send))
        assert got["receive"] is receive
        assert got["send"] is send
        assert got["ctx"].path == "/ws"
        assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
        assert get_request_context() is None

    def test_lifespan_passes_straight_through(self, pipeline):
        """Lifespan scopes reach the app with no context and untouched callables."""
        got: list[Any] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            got.append((scope["type"], get_request_context(), send))

        async def send(message: Message) -> None:
            pass

        middleware = AuditASGIMiddleware(app, settings=pipeline.settings)
        asyncio.run(middleware({"type": "lifespan"}, None, send))
        assert [("lifespan", None, send)] == got

    def test_disabled_is_a_pass_through(self, pipeline):
        """With otel-audit disabled nothing is set or emitted."""
        settings = dataclasses.replace(pipeline.settings, enabled=False)
        seen: list[Any] = []
        run(AuditASGIMiddleware(status_app(403, seen), settings=settings), http_scope())
        assert seen == [None]
        assert pipeline.events() == []


class TestActorHook:
    def test_hook_asked_again_with_inner_state(self, pipeline):
        """An actor put in request.state by an inner layer reaches the denial event."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope["state"]["actor"] = {"id": "carol", "roles": ["viewer"]}
            await send({"type": "http.response.start", "status": 403, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        hooked = AuditASGIMiddleware(
            app, actor_hook=starlette_state_actor, settings=pipeline.settings
        )
        run(hooked, http_scope("/admin"))
        (event,) = pipeline.events("authorization.denied")
        assert event.attributes["user.id"] == "carol"


@pytest.mark.parametrize(
    ("status", "path", "name"),
    [
        (401, "/x", "authorization.denied"),
        (403, "/x", "authorization.denied"),
        (429, "/x", "rate_limit.exceeded"),
        (502, "/auth/callback", "service.server_error"),
        (200, "/admin", None),
        (500, "/public", None),
    ],
)
def test_status_events(pipeline, status, path, name):
    """Security-relevant statuses produce their event; others do not."""
    run(AuditASGIMiddleware(status_app(status), settings=pipeline.settings), http_scope(path))
    assert ([name] if name else []) == [e.name for e in pipeline.events()]


@pytest.mark.parametrize("audit_outside", [False, True])
def test_composes_with_opentelemetry_middleware(pipeline, audit_outside):
    """In either order, events of the request carry the server span's trace id."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        security_event("data.accessed", actor="alice")
        await send({"type": "http.response.start", "status": 403, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})

    tp = pipeline.tracer_provider
    if audit_outside:
        wrapped: Any = AuditASGIMiddleware(
            OpenTelemetryMiddleware(app, tracer_provider=tp), settings=pipeline.settings
        )
    else:
        wrapped = OpenTelemetryMiddleware(
            AuditASGIMiddleware(app, settings=pipeline.settings), tracer_provider=tp
        )
    sent = run(wrapped, http_scope("/admin/x"))
    assert sent[0]["status"] == 403
    server = [s for s in pipeline.spans.get_finished_spans() if s.parent is None]
    assert len(server) == 1
    events = pipeline.events()
    names = sorted(e.name or "" for e in events)
    assert names == ["authorization.denied", "data.accessed"]
    assert {server[0].context.trace_id} == {e.trace_id for e in events}
