"""configure() end to end: real SDK pipeline, real OTLP receivers on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider

import otel_audit
from helpers.otlp_receiver import OTLPGrpcReceiver, OTLPHttpReceiver
from otel_audit import semconv


def _emit_story() -> tuple[int, int]:
    tracer = TracerProvider().get_tracer("test")
    with (
        otel_audit.request_context(client_address="198.51.100.4", request_id="req-77"),
        tracer.start_as_current_span("POST /login") as span,
    ):
        otel_audit.security_event("authentication.failure", actor="alice", reason="bad_password")
        logging.getLogger("security").info(
            "login ok", extra={"otel.event.name": "authentication.success", "user.id": "alice"}
        )
        logging.getLogger("app").warning("cache miss storm")
    ctx = span.get_span_context()
    return ctx.trace_id, ctx.span_id


def _check(received, trace_id: int, span_id: int) -> None:
    # shutdown() flushed before we looked: this is everything, and nothing arrived twice.
    names = sorted(r.event_name for r in received if r.event_name != "audit.checkpoint")
    assert names == ["", "authentication.failure", "authentication.success"]
    by_name = {r.event_name: r for r in received}
    failure = by_name["authentication.failure"]
    success = by_name["authentication.success"]
    ordinary = next(r for r in received if not r.event_name)
    for record in (failure, success):
        assert record.trace_id == f"{trace_id:032x}"
        assert record.span_id == f"{span_id:016x}"
        assert record.resource["service.name"] == "payments-api"
        assert record.resource["deployment.environment.name"] == "test"
        assert record.attributes[semconv.CLIENT_ADDRESS] == "198.51.100.4"
        assert record.attributes[semconv.AUDIT_REQUEST_ID] == "req-77"
        assert record.attributes[semconv.AUDIT_CATEGORY] == "authentication"
        assert record.attributes[semconv.AUDIT_EVENT_NAME] == record.event_name
    assert failure.attributes[semconv.EVENT_OUTCOME] == "failure"
    assert failure.attributes[semconv.AUDIT_REASON] == "bad_password"
    assert failure.severity_text == "WARN"
    assert success.attributes[semconv.EVENT_OUTCOME] == "success"
    assert semconv.AUDIT_EVENT_NAME not in ordinary.attributes
    assert ordinary.body == "cache miss storm"


@pytest.fixture(name="service_env")
def _service_env(monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "payments-api")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
    monkeypatch.setenv("OTEL_PYTHON_AUDIT_DELIVERY", "batch")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "50")


def _point_at(monkeypatch, receiver, protocol: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")


RECEIVERS = {"http/protobuf": OTLPHttpReceiver, "grpc": OTLPGrpcReceiver}


class TestOTLPExport:
    @pytest.mark.parametrize("delivery", ["batch", "durable"])
    @pytest.mark.parametrize("protocol", sorted(RECEIVERS))
    def test_story_reaches_receiver(self, service_env, monkeypatch, tmp_path, protocol, delivery):
        """Events arrive with name, category, outcome, trace, resource and request context."""
        monkeypatch.setenv("OTEL_PYTHON_AUDIT_DELIVERY", delivery)
        monkeypatch.setenv("OTEL_PYTHON_AUDIT_SPOOL_DIR", str(tmp_path / "spool"))
        with RECEIVERS[protocol]() as receiver:
            _point_at(monkeypatch, receiver, protocol)
            otel_audit.configure(set_global=False)
            trace_id, span_id = _emit_story()
            otel_audit.shutdown()
            _check(receiver.wait_for(3), trace_id, span_id)

    def test_console_exporter(self, tmp_path):
        """OTEL_LOGS_EXPORTER=console prints each record once, tagged."""
        code = (
            "import otel_audit; otel_audit.configure();"
            "otel_audit.security_event('authentication.failure', actor='alice');"
            "otel_audit.shutdown()"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={
                "PATH": os.environ["PATH"],
                "HOME": str(tmp_path),
                "OTEL_LOGS_EXPORTER": "console",
            },
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert result.stdout.count('"event_name": "authentication.failure"') == 1
        assert '"audit.event.name": "authentication.failure"' in result.stdout

    def test_configure_is_idempotent(self, service_env, monkeypatch):
        """A second configure() returns the same provider and adds no second handler."""
        with OTLPHttpReceiver() as receiver:
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", receiver.logs_url)
            first = otel_audit.configure(set_global=False)
            second = otel_audit.configure(set_global=False)
            assert first is second
            otel_audit.security_event("session.created")
            otel_audit.shutdown()
            assert len(receiver.wait_for(1)) == 1
            assert len(receiver.wait_for(2, timeout=0.5)) == 1

    @pytest.mark.parametrize(
        ("variable", "value", "accepted"),
        [
            ("OTEL_LOGS_EXPORTER", "zipkin", "otlp, console, none"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "grpc, http/protobuf"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "brotli", "gzip, deflate, none"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "milliseconds"),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "-4", "a positive integer"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", "PEM file"),
        ],
    )
    def test_bad_otel_variables_fail_at_start(self, monkeypatch, variable, value, accepted):
        """configure() rejects standard variables the SDK would silently default."""
        monkeypatch.setenv(variable, value)
        with pytest.raises(otel_audit.ConfigurationError) as info:
            otel_audit.configure(set_global=False)
        assert variable in str(info.value)
        assert accepted in str(info.value)


SECRETS = (
    "hunter2-Correct-Horse",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
    "4111 1111 1111 1111",
)


class TestDefaultPipeline:
    @pytest.mark.parametrize("protocol", sorted(RECEIVERS))
    def test_defaults_redact_and_deliver(self, monkeypatch, tmp_path, protocol):
        """Default settings (durable delivery, tier-1 redaction): no planted secret crosses."""
        monkeypatch.setenv("OTEL_SERVICE_NAME", "payments-api")
        monkeypatch.setenv("OTEL_PYTHON_AUDIT_SPOOL_DIR", str(tmp_path / "spool"))
        monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "50")
        with RECEIVERS[protocol]() as receiver:
            _point_at(monkeypatch, receiver, protocol)
            otel_audit.configure(set_global=False)
            otel_audit.security_event(
                "authentication.failure",
                actor="alice",
                message=f"login failed password={SECRETS[0]}",
                key=SECRETS[1],
            )
            try:
                raise ValueError(f"token {SECRETS[2]} rejected for card {SECRETS[3]}")  # noqa: TRY301
            except ValueError:
                logging.getLogger("security").exception(
                    "token check", extra={"otel.event.name": "authentication.token_invalid"}
                )
            logging.getLogger("app").warning("charging card %s", SECRETS[3])
            otel_audit.shutdown()
            received = receiver.wait_for(4)
            raw = receiver.raw
        names = [r.event_name for r in received]
        # Two security events, one ordinary record, and the signed checkpoint written at shutdown.
        assert sorted(names) == sorted(
            ["authentication.failure", "authentication.token_invalid", "", "audit.checkpoint"]
        )
        for secret in SECRETS:
            assert secret.encode() not in raw
            assert secret.replace(" ", "").encode() not in raw
        failure = next(r for r in received if r.event_name == "authentication.failure")
        assert failure.attributes[semconv.AUDIT_REDACTION]
