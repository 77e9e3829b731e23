"""
What the middlewares put into events, through the real tier-1 redacting pipeline: no secret
from a client-controlled value (path, user agent, request id) or a hook's error may reach
the exporter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otel_audit import AuditProcessor, AuditSettings, _api
from otel_audit._configure import build_redactor
from otel_audit.wsgi import AuditWSGIMiddleware

# Built from parts so that this file holds no token-shaped literal.
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLQ"
HOOK_SECRET = "hook-secret-" + "Zq8wX1"


@pytest.fixture(name="exported")
def _exported() -> Iterator[InMemoryLogRecordExporter]:
    settings = AuditSettings()
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(AuditProcessor(settings, redactor=build_redactor(settings)))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    _api._set_provider(provider)
    try:
        yield exporter
    finally:
        _api._set_provider(None)
        provider.shutdown()


def denied(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("403 Forbidden", [])
    return [b""]


def request(app: Any, path: str = "/admin", **headers: str) -> None:
    environ: dict[str, Any] = {"PATH_INFO": path, "REMOTE_ADDR": "203.0.113.5", **headers}
    setup_testing_defaults(environ)
    body = app(environ, lambda *_: None)
    list(body)
    body.close()


def exported_text(exporter: InMemoryLogRecordExporter) -> str:
    records = [f.log_record for f in exporter.get_finished_logs()]
    assert records, "the request emitted no event"
    return repr([(r.body, dict(r.attributes or {})) for r in records])


@pytest.mark.parametrize(
    ("path", "headers", "secret"),
    [
        pytest.param(f"/reset/{GITHUB_TOKEN}", {}, GITHUB_TOKEN, id="path"),
        pytest.param(
            "/admin",
            {"HTTP_USER_AGENT": f"sync-bot token={GITHUB_TOKEN}"},
            GITHUB_TOKEN,
            id="user_agent",
        ),
        pytest.param(
            "/admin",
            {"HTTP_X_REQUEST_ID": AWS_KEY_ID},
            AWS_KEY_ID,
            id="request_id",
        ),
    ],
)
def test_client_values_are_redacted(exported, path, headers, secret):
    """A token in the path, user agent or request id does not reach the exporter."""
    request(AuditWSGIMiddleware(denied, settings=AuditSettings()), path, **headers)
    assert secret not in exported_text(exported)


def test_hook_error_text_is_not_recorded(exported):
    """A hook's exception message (which may quote a session or token) goes nowhere."""

    def hook(environ: Any) -> Any:
        msg = f"cannot decode session {HOOK_SECRET}"
        raise ValueError(msg)

    app = AuditWSGIMiddleware(denied, actor_hook=hook, settings=AuditSettings())
    request(app)
    assert HOOK_SECRET not in exported_text(exported)
    assert app.stats.snapshot()["hook_errors"] == 2
