"""AuditWSGIMiddleware through a real SDK pipeline, alone and with the OpenTelemetry middleware."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from otel_audit import Actor, get_request_context, security_event
from otel_audit.wsgi import AuditWSGIMiddleware

Seen = list[Any]


def make_environ(path: str = "/", **extra: str) -> dict[str, Any]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REMOTE_ADDR": "203.0.113.5"}
    environ.update(extra)
    setup_testing_defaults(environ)
    return environ


def call(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> tuple[str, bytes]:
    """Run one request like a PEP 3333 server: iterate the body, then close it."""
    statuses: list[str] = []

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda _data: None

    body = app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return statuses[-1], data


def status_app(status: str, seen: Seen | None = None) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if seen is not None:
            seen.append(get_request_context())
        start_response(status, [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


class TestRequestContext:
    def test_fields_filled_from_environ(self, pipeline):
        """Client, agent, request id, method, path and actor are set for the app."""
        seen: Seen = []
        app = AuditWSGIMiddleware(
            status_app("200 OK", seen), actor_hook=lambda _env: "u-1", settings=pipeline.settings
        )
        environ = make_environ(
            "/things",
            REMOTE_ADDR="10.0.0.7",
            HTTP_X_FORWARDED_FOR="198.51.100.7",
            HTTP_USER_AGENT="pytest-agent",
            HTTP_X_REQUEST_ID="req-42",
            REQUEST_METHOD="POST",
        )
        assert call(app, environ) == ("200 OK", b"ok")
        ctx = seen[0]
        assert ctx.client_address == "198.51.100.7"
        assert ctx.user_agent == "pytest-agent"
        assert ctx.request_id == "req-42"
        assert ctx.method == "POST"
        assert ctx.path == "/things"
        assert Actor(id="u-1") == ctx.actor

    def test_spoofed_header_from_untrusted_peer_is_ignored(self, pipeline):
        """A client that is not a trusted proxy cannot choose its own address."""
        seen: Seen = []
        app = AuditWSGIMiddleware(status_app("200 OK", seen), settings=pipeline.settings)
        call(app, make_environ(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="10.0.0.1"))
        assert seen[0].client_address == "203.0.113.5"

    def test_events_in_the_app_carry_the_context(self, pipeline):
        """security_event() inside a view gets who/where from the middleware."""

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            security_event("authentication.failure", actor="alice", reason="bad_password")
            start_response("200 OK", [])
            return [b""]

        wrapped = AuditWSGIMiddleware(app, settings=pipeline.settings)
        call(wrapped, make_environ("/login", HTTP_USER_AGENT="ua", HTTP_X_REQUEST_ID="r1"))
        (event,) = pipeline.events("authentication.failure")
        assert event.attributes["client.address"] == "203.0.113.5"
        assert event.attributes["audit.request.id"] == "r1"
        assert event.attributes["url.path"] == "/login"
        assert event.attributes["user.id"] == "alice"

    def test_context_reset_after_request(self, pipeline):
        """No context is left behind once the body is closed."""
        app = AuditWSGIMiddleware(status_app("200 OK"), settings=pipeline.settings)
        call(app, make_environ())
        assert get_request_context() is None

    def test_context_reset_when_app_raises(self, pipeline):
        """An exception from the app resets the context and still propagates."""

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            msg = "boom"
            raise RuntimeError(msg)

        wrapped = AuditWSGIMiddleware(app, settings=pipeline.settings)
        with pytest.raises(RuntimeError, match="boom"):
            call(wrapped, make_environ("/admin/users"))
        assert get_request_context() is None
        (event,) = pipeline.events("service.server_error")
        assert event.attributes["audit.reason"] == "exception:RuntimeError"
        assert event.attributes["http.response.status_code"] == 500

    def test_context_set_while_streaming_and_reset_on_error(self, pipeline):
        """A streamed body sees the context on every chunk; an error mid-stream resets it."""
        seen: Seen = []

        def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
            start_response("200 OK", [])
            for chunk in (b"a", b"b"):
                seen.append(get_request_context())
                yield chunk
            msg = "stream broke"
            raise OSError(msg)

        wrapped = AuditWSGIMiddleware(app, settings=pipeline.settings)
        with pytest.raises(OSError, match="stream broke"):
            call(wrapped, make_environ("/export"))
        assert len(seen) == 2
        assert all(ctx is not None and ctx.path == "/export" for ctx in seen)
        assert get_request_context() is None

    def test_streamed_body_is_passed_through_and_closed(self, pipeline):
        """Chunks arrive unchanged and the inner iterable's close() is called once."""
        closed: list[bool] = []

        class Body:
            def __iter__(self) -> Iterator[bytes]:
                yield from (b"1", b"2", b"3")

            def close(self) -> None:
                closed.append(True)

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            start_response("200 OK", [])
            return Body()

        wrapped = AuditWSGIMiddleware(app, settings=pipeline.settings)
        assert call(wrapped, make_environ()) == ("200 OK", b"123")
        assert closed == [True]

    def test_lazy_start_response_inside_iteration(self, pipeline):
        """An app that calls start_response while iterating still gets its 403 event."""

        def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
            start_response("403 Forbidden", [])
            yield b"no"

        wrapped = AuditWSGIMiddleware(app, settings=pipeline.settings)
        call(wrapped, make_environ("/admin/x"))
        (event,) = pipeline.events("authorization.denied")
        assert event.attributes["url.path"] == "/admin/x"

    def test_disabled_is_a_pass_through(self, pipeline):
        """OTEL_PYTHON_AUDIT_ENABLED=false hands the app's iterable back untouched."""
        body = [b"x"]
        settings = dataclasses.replace(pipeline.settings, enabled=False)

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            start_response("403 Forbidden", [])
            return body

        assert AuditWSGIMiddleware(app, settings=settings)(make_environ(), lambda *_: None) is body
        assert pipeline.events() == []


class TestActorHook:
    def test_hook_asked_again_when_response_starts(self, pipeline):
        """A user known only inside the app (Flask-Login) still reaches the denial event."""
        inside: list[bool] = []

        def hook(environ: Any) -> Any:
            return Actor(id="bob", roles=("viewer",)) if inside else None

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            inside.append(True)
            start_response("403 Forbidden", [])
            return [b""]

        call(AuditWSGIMiddleware(app, actor_hook=hook, settings=pipeline.settings), make_environ())
        (event,) = pipeline.events("authorization.denied")
        assert event.attributes["user.id"] == "bob"
        assert tuple(event.attributes["user.roles"]) == ("viewer",)


class TestAutomaticEvents:
    @pytest.mark.parametrize(
        ("status", "path", "name", "reason"),
        [
            ("401 Unauthorized", "/x", "authorization.denied", "unauthenticated"),
            ("403 Forbidden", "/x", "authorization.denied", "forbidden"),
            ("429 Too Many Requests", "/x", "rate_limit.exceeded", "http_429"),
            ("500 Internal Server Error", "/login", "service.server_error", "http_500"),
            ("503 Service Unavailable", "/admin/users", "service.server_error", "http_503"),
        ],
    )
    def test_status_events(self, pipeline, status, path, name, reason):
        """Each security-relevant status produces its event with status, outcome and reason."""
        app = AuditWSGIMiddleware(status_app(status), settings=pipeline.settings)
        call(app, make_environ(path))
        (event,) = pipeline.events()
        assert name == event.name
        assert int(status.split()[0]) == event.attributes["http.response.status_code"]
        assert event.attributes["event.outcome"] == "failure"
        assert reason == event.attributes["audit.reason"]
        assert path == event.attributes["audit.target"]

    @pytest.mark.parametrize(
        ("status", "path"),
        [("200 OK", "/admin"), ("404 Not Found", "/admin/x"), ("500 Oops", "/public/page")],
    )
    def test_no_event(self, pipeline, status, path):
        """Success, 404 and 5xx outside sensitive routes are not security events."""
        app = AuditWSGIMiddleware(status_app(status), settings=pipeline.settings)
        call(app, make_environ(path))
        assert pipeline.events() == []

    @pytest.mark.parametrize(
        ("app_event", "status", "expected"),
        [
            ("authentication.failure", "401 Unauthorized", ["authentication.failure"]),
            ("authorization.denied", "403 Forbidden", ["authorization.denied"]),
            ("rate_limit.exceeded", "429 Too Many Requests", ["rate_limit.exceeded"]),
            ("data.accessed", "403 Forbidden", ["authorization.denied", "data.accessed"]),
            ("authentication.failure", "429 Too Many Requests",
             ["authentication.failure", "rate_limit.exceeded"]),
        ],
    )  # fmt: skip
    def test_no_second_event_for_the_same_fact(self, pipeline, app_event, status, expected):
        """An app that already recorded the failure gets no duplicate automatic event."""

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            security_event(app_event, actor="alice")
            start_response(status, [])
            return [b""]

        middleware = AuditWSGIMiddleware(app, settings=pipeline.settings)
        call(middleware, make_environ("/login"))
        assert expected == sorted(e.name or "" for e in pipeline.events())
        suppressed = {k: v for k, v in middleware.stats.snapshot().items() if "suppressed" in k}
        assert bool(suppressed) == (len(expected) == 1)

    @pytest.mark.parametrize(
        ("events", "status", "expected"),
        [
            (frozenset({"rate_limited"}), "403 Forbidden", 0),
            (frozenset({"denied"}), "429 Too Many Requests", 0),
            (frozenset({"denied"}), "500 Oops", 0),
            (frozenset({"denied"}), "403 Forbidden", 1),
            (frozenset(), "403 Forbidden", 0),
        ],
    )
    def test_switchable(self, pipeline, events, status, expected):
        """OTEL_PYTHON_AUDIT_HTTP_EVENTS turns each automatic event on or off."""
        settings = dataclasses.replace(pipeline.settings, http_events=events)
        call(AuditWSGIMiddleware(status_app(status), settings=settings), make_environ("/login"))
        assert expected == len(pipeline.events())


@pytest.mark.parametrize("audit_outside", [False, True])
def test_composes_with_opentelemetry_middleware(pipeline, audit_outside):
    """In either order, events of the request carry the server span's trace id."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        security_event("data.accessed", actor="alice")
        start_response("403 Forbidden", [])
        return [b"no"]

    tp = pipeline.tracer_provider
    if audit_outside:
        wrapped: Any = AuditWSGIMiddleware(
            OpenTelemetryMiddleware(app, tracer_provider=tp), settings=pipeline.settings
        )
    else:
        wrapped = OpenTelemetryMiddleware(
            AuditWSGIMiddleware(app, settings=pipeline.settings), tracer_provider=tp
        )
    call(wrapped, make_environ("/admin/x"))
    (span,) = pipeline.spans.get_finished_spans()
    names = sorted(e.name or "" for e in pipeline.events())
    assert names == ["authorization.denied", "data.accessed"]
    assert {span.context.trace_id} == {e.trace_id for e in pipeline.events()}
    assert get_request_context() is None
