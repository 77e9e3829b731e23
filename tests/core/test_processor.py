"""The AuditProcessor through a real SDK pipeline: classification, tags, enrichment."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

import otel_audit
from otel_audit import AuditProcessor, AuditSettings, _api, semconv
from otel_audit._api import _set_provider
from otel_audit._handler import AuditLoggingHandler
from otel_audit.redaction import RedactionEngine

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class Pipeline:
    """A LoggerProvider with the AuditProcessor first and an in-memory exporter after it."""

    def __init__(self, processor: AuditProcessor) -> None:
        self.processor = processor
        self.exporter = InMemoryLogRecordExporter()
        self.provider = LoggerProvider(shutdown_on_exit=False)
        self.provider.add_log_record_processor(processor)
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        self.handler = AuditLoggingHandler(logger_provider=self.provider)

    def records(self):
        self.provider.force_flush()
        return [r.log_record for r in self.exporter.get_finished_logs()]


@pytest.fixture(name="pipeline")
def _pipeline() -> Iterator[Pipeline]:
    pipeline = Pipeline(AuditProcessor(AuditSettings()))
    root = logging.getLogger()
    root.addHandler(pipeline.handler)
    security = logging.getLogger("security")
    security.setLevel(logging.INFO)
    _set_provider(pipeline.provider)
    try:
        yield pipeline
    finally:
        root.removeHandler(pipeline.handler)
        security.setLevel(logging.NOTSET)
        _set_provider(None)
        pipeline.provider.shutdown()


class TestClassification:
    def test_security_event_api_is_tagged(self, pipeline):
        """security_event() produces event_name, routing attribute, ECS and OCSF fields."""
        event_id = otel_audit.security_event(
            "authentication.failure", actor="u-1", reason="bad_password", target="acct:7"
        )
        (record,) = pipeline.records()
        attrs = record.attributes
        assert record.event_name == "authentication.failure"
        assert attrs[semconv.AUDIT_EVENT_NAME] == "authentication.failure"
        assert attrs[semconv.EVENT_ID] == event_id
        assert UUID7.match(event_id)
        assert attrs[semconv.AUDIT_CATEGORY] == "authentication"
        assert tuple(attrs[semconv.EVENT_CATEGORY]) == ("authentication",)
        assert attrs[semconv.EVENT_OUTCOME] == "failure"
        assert attrs[semconv.EVENT_ACTION] == "authentication-failure"
        assert attrs[semconv.AUDIT_OCSF_CLASS_UID] == 3002
        assert attrs[semconv.AUDIT_OCSF_CATEGORY_UID] == 3
        assert attrs[semconv.AUDIT_OCSF_ACTIVITY_ID] == 1
        assert attrs[semconv.USER_ID] == "u-1"
        assert attrs[semconv.AUDIT_REASON] == "bad_password"
        assert attrs[semconv.AUDIT_TARGET] == "acct:7"
        assert record.severity_number == SeverityNumber.WARN
        assert record.timestamp

    def test_security_logger_records_are_security_events(self, pipeline):
        """A record from the `security` logger (or a child) is a security event."""
        logging.getLogger("security.auth").warning(
            "login failed", extra={"otel.event.name": "authentication.failure", "user.name": "al"}
        )
        logging.getLogger("security").info("something odd")
        first, second = pipeline.records()
        assert first.event_name == "authentication.failure"
        assert first.attributes[semconv.EVENT_OUTCOME] == "failure"
        assert first.severity_number == SeverityNumber.WARN
        assert semconv.OTEL_EVENT_NAME not in first.attributes
        assert second.event_name == "security.event"
        assert second.attributes[semconv.AUDIT_CATEGORY] == "other"

    def test_event_name_extra_from_any_logger(self, pipeline):
        """Any logger with extra otel.event.name naming a catalogue type is a security event."""
        logging.getLogger("app.billing").warning(
            "role granted", extra={"otel.event.name": "account.role_granted"}
        )
        (record,) = pipeline.records()
        assert record.attributes[semconv.AUDIT_EVENT_NAME] == "account.role_granted"
        assert record.attributes[semconv.AUDIT_OCSF_CLASS_UID] == 3005

    def test_ordinary_records_are_not_tagged(self, pipeline):
        """An ordinary warning stays ordinary."""
        logging.getLogger("app").warning("disk at 91%%")
        (record,) = pipeline.records()
        assert semconv.AUDIT_EVENT_NAME not in record.attributes
        assert not otel_audit.is_security_event(record)

    def test_uncatalogued_name_on_other_logger_is_ordinary(self, pipeline):
        """An uncatalogued event name from a non-security logger is not a security event."""
        logging.getLogger("app").warning("x", extra={"otel.event.name": "browser.click"})
        (record,) = pipeline.records()
        assert record.event_name == "browser.click"
        assert semconv.AUDIT_EVENT_NAME not in record.attributes

    def test_explicit_outcome_and_severity_win(self, pipeline):
        """Caller-supplied outcome and severity override the catalogue defaults."""
        otel_audit.security_event(
            "authorization.granted", outcome="failure", severity=SeverityNumber.ERROR
        )
        (record,) = pipeline.records()
        assert record.attributes[semconv.EVENT_OUTCOME] == "failure"
        assert record.severity_number == SeverityNumber.ERROR

    def test_bogus_outcome_becomes_unknown(self, pipeline):
        """An outcome outside success/failure/unknown is recorded as unknown."""
        otel_audit.security_event("authorization.granted", outcome="kinda")
        (record,) = pipeline.records()
        assert record.attributes[semconv.EVENT_OUTCOME] == "unknown"

    def test_custom_event_type(self, pipeline):
        """A registered custom type is classified with its own fields."""
        otel_audit.register_event_type(
            "user.exported_team_data",
            category="data",
            ocsf_class=6003,
            ocsf_activity_id=2,
            outcome="success",
            replace=True,
        )
        logging.getLogger("app").info("x", extra={"otel.event.name": "user.exported_team_data"})
        logging.getLogger("app").warning("x", extra={"otel.event.name": "user.exported_team_data"})
        (record,) = pipeline.records()
        assert record.attributes[semconv.AUDIT_CATEGORY] == "data"
        assert record.attributes[semconv.EVENT_OUTCOME] == "success"

    def test_event_ids_are_unique_and_sortable(self, pipeline):
        """Event ids never repeat and sort in emission order."""
        ids = [otel_audit.security_event("session.created") for _ in range(2000)]
        assert len(set(ids)) == 2000
        assert ids == sorted(ids)


class TestEnrichment:
    def test_trace_context_from_active_span(self, pipeline):
        """trace_id/span_id come from the active span."""
        tracer = TracerProvider().get_tracer("t")
        with tracer.start_as_current_span("login") as span:
            otel_audit.security_event("authentication.success", actor="u")
            logging.getLogger("security").info("x")
        ctx = span.get_span_context()
        for record in pipeline.records():
            assert record.trace_id == ctx.trace_id
            assert record.span_id == ctx.span_id

    def test_request_context_fills_who_and_where(self, pipeline):
        """Request context attributes land on records but never overwrite explicit ones."""
        with otel_audit.request_context(
            client_address="203.0.113.7",
            user_agent="curl/8",
            request_id="req-1",
            method="POST",
            route="/login",
            actor={"id": "u-9", "name": "alice", "roles": ["admin"]},
        ):
            otel_audit.security_event("authentication.success", **{"user.id": "explicit"})
        (record,) = pipeline.records()
        attrs = record.attributes
        assert attrs[semconv.CLIENT_ADDRESS] == "203.0.113.7"
        assert attrs[semconv.USER_AGENT_ORIGINAL] == "curl/8"
        assert attrs[semconv.AUDIT_REQUEST_ID] == "req-1"
        assert attrs[semconv.HTTP_REQUEST_METHOD] == "POST"
        assert attrs[semconv.HTTP_ROUTE] == "/login"
        assert attrs[semconv.USER_ID] == "explicit"
        assert attrs[semconv.USER_NAME] == "alice"
        assert tuple(attrs[semconv.USER_ROLES]) == ("admin",)

    def test_request_context_setter_and_reset(self, pipeline):
        """The public setter/reset pair scopes the context exactly."""
        token = otel_audit.set_request_context(otel_audit.RequestContext(client_address="::1"))
        try:
            otel_audit.update_request_context(actor="late-login")
            otel_audit.security_event("authentication.success")
        finally:
            otel_audit.reset_request_context(token)
        otel_audit.security_event("authentication.logout")
        first, second = pipeline.records()
        assert first.attributes[semconv.CLIENT_ADDRESS] == "::1"
        assert first.attributes[semconv.USER_ID] == "late-login"
        assert semconv.CLIENT_ADDRESS not in second.attributes

    def test_audit_scope_nests_and_applies_to_security_events_only(self, pipeline):
        """Scopes nest (inner wins) and tag only security events."""
        with otel_audit.audit_scope(actor="admin-1", target="team:42", ticket="CHG-1"):
            with otel_audit.audit_scope(target={"kind": "user", "id": "u-5"}):
                otel_audit.security_event("account.role_granted", role="admin")
            logging.getLogger("app").warning("ordinary")
        inner, ordinary = pipeline.records()
        assert inner.attributes[semconv.USER_ID] == "admin-1"
        assert inner.attributes["ticket"] == "CHG-1"
        assert inner.attributes["audit.target.kind"] == "user"
        assert inner.attributes[semconv.AUDIT_TARGET] == "team:42"
        assert "ticket" not in ordinary.attributes

    def test_audit_scope_follows_await(self, pipeline):
        """A scope set before an await is seen by events emitted after it, per task."""

        async def worker(actor: str) -> None:
            with otel_audit.audit_scope(actor=actor):
                await asyncio.sleep(0)
                otel_audit.security_event("data.accessed")

        async def main() -> None:
            await asyncio.gather(worker("a"), worker("b"))

        asyncio.run(main())
        actors = sorted(r.attributes[semconv.USER_ID] for r in pipeline.records())
        assert actors == ["a", "b"]


class ExplodingRedactor:
    def redact_log_record(self, log_record):
        raise RuntimeError("boom")


class TestFailClosed:
    def test_redactor_failure_wipes_values(self):
        """If redaction raises, the body and attribute values are replaced, not passed raw."""
        pipeline = Pipeline(AuditProcessor(AuditSettings(), redactor=ExplodingRedactor()))
        _set_provider(pipeline.provider)
        try:
            otel_audit.security_event(
                "authentication.failure", message="password=hunter2", note="hunter2"
            )
        finally:
            _set_provider(None)
        (record,) = pipeline.records()
        assert "hunter2" not in repr(record.body)
        assert "hunter2" not in repr(dict(record.attributes))
        assert record.attributes[semconv.AUDIT_EVENT_NAME] == "authentication.failure"
        assert pipeline.processor.stats.snapshot()["redaction_errors"] == 1

    def test_bad_api_argument_is_counted_not_raised(self, pipeline):
        """security_event() with an unusable argument returns None and counts the loss."""
        before = _api.failures().get("AttributeError", 0)
        assert otel_audit.security_event("authentication.failure", severity="loud") is None
        assert _api.failures()["AttributeError"] == before + 1
        assert pipeline.records() == []

    def test_observer_failure_is_counted(self, pipeline):
        """A failing observer does not break the logging call."""

        class Bad:
            def observe(self, log_record):
                raise ValueError("nope")

        pipeline.processor.add_observer(Bad())
        otel_audit.security_event("authentication.failure")
        assert pipeline.processor.stats.snapshot()["observer_errors"] == 1


class TestTrustedKeysCannotCarrySecrets:
    """Redaction trusts otel-audit's own keys, so callers must not be able to fill them."""

    SECRET = "AKIAIOSFODNN7EXAMPLE"

    def test_caller_values_in_our_keys_are_replaced_or_scanned(self):
        """Caller values in event.id, ECS/OCSF, redaction and integrity keys never pass raw."""
        settings = AuditSettings()
        pipeline = Pipeline(
            AuditProcessor(settings, redactor=RedactionEngine.from_settings(settings))
        )
        _set_provider(pipeline.provider)
        try:
            otel_audit.security_event(
                "authentication.failure",
                **{
                    "event.id": f"id {self.SECRET}",
                    "event.action": self.SECRET,
                    "audit.ocsf.class_uid": self.SECRET,
                    "audit.ocsf.note": self.SECRET,
                    "audit.redaction": [self.SECRET],
                    "audit.integrity.hmac": self.SECRET,
                },
            )
        finally:
            _set_provider(None)
        (record,) = pipeline.records()
        attrs = dict(record.attributes)
        assert self.SECRET not in repr(attrs)
        assert UUID7.match(attrs[semconv.EVENT_ID])
        assert attrs[semconv.EVENT_ACTION] == "authentication-failure"
        assert attrs[semconv.AUDIT_OCSF_CLASS_UID] == 3002
        assert semconv.AUDIT_INTEGRITY_HMAC not in attrs

    def test_well_formed_event_id_is_kept(self, pipeline):
        """A caller's own UUID event id survives (at-least-once de-duplication needs it)."""
        given = "01a20848-b532-7000-9755-6e305f2ef5c3"
        logging.getLogger("security").info("replayed", extra={"event.id": given})
        (record,) = pipeline.records()
        assert record.attributes[semconv.EVENT_ID] == given


def _security_record() -> logging.LogRecord:
    return logging.LogRecord("security", logging.INFO, __file__, 1, "m", None, None)


class TestRequestIds:
    """Ids otel-audit generated are added after redaction; anyone else's are scanned."""

    class Seen:
        def __init__(self) -> None:
            self.keys: list[set[str]] = []

        def redact_log_record(self, log_record) -> None:
            self.keys.append(set(log_record.attributes))

    def test_generated_id_is_added_after_redaction(self):
        seen = self.Seen()
        pipeline = Pipeline(AuditProcessor(AuditSettings(), redactor=seen))
        ctx = otel_audit.RequestContext(request_id="0" * 32, request_id_generated=True)
        with otel_audit.request_context(ctx):
            pipeline.handler.emit(_security_record())
        (record,) = pipeline.records()
        assert record.attributes[semconv.AUDIT_REQUEST_ID] == "0" * 32
        assert semconv.AUDIT_REQUEST_ID not in seen.keys[0]

    def test_caller_ids_are_scanned(self):
        settings = AuditSettings()
        pipeline = Pipeline(
            AuditProcessor(settings, redactor=RedactionEngine.from_settings(settings))
        )
        secret = "AKIAIOSFODNN7EXAMPLE"
        ctx = otel_audit.RequestContext(request_id="0" * 32, request_id_generated=True)
        with otel_audit.request_context(ctx):
            otel_audit.update_request_context(request_id=f"id-{secret}")
            pipeline.handler.emit(_security_record())
        with otel_audit.request_context(request_id=secret):
            pipeline.handler.emit(_security_record())
        records = pipeline.records()
        assert len(records) == 2
        for record in records:
            assert secret not in str(record.attributes[semconv.AUDIT_REQUEST_ID])

    def test_an_unchanged_update_keeps_the_context(self):
        with otel_audit.request_context(client_address="192.0.2.1") as ctx:
            otel_audit.update_request_context(actor=None, client_address="192.0.2.1")
            assert otel_audit.get_request_context() is ctx
            otel_audit.update_request_context(actor="alice")
            assert otel_audit.get_request_context().actor.id == "alice"


class TestOddInput:
    @pytest.mark.parametrize(
        "value",
        [
            b"\xff\xfe raw bytes",
            "\udcff lone surrogate",
            [[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]],
            "x" * 2_000_000,
            object(),
            {"set": {1, 2}},
        ],
    )
    def test_logging_call_never_raises(self, pipeline, value):
        """Odd extra values never raise into the caller and still produce a record."""
        logging.getLogger("security").warning("odd", extra={"payload": value})
        otel_audit.security_event("data.accessed", payload=value)
        assert len(pipeline.records()) == 2

    def test_odd_values_in_scope_and_request_context(self, pipeline):
        """Scope and request-context values are bounded like extra= values."""
        cyclic: dict[str, object] = {}
        cyclic["self"] = cyclic
        with (
            otel_audit.audit_scope(payload=cyclic, blob=b"\xff\xfe"),
            otel_audit.request_context(extra={"thing": object()}),
        ):
            otel_audit.security_event("data.accessed")
        (record,) = pipeline.records()
        attrs = dict(record.attributes)
        assert attrs["blob"] == "\ufffd\ufffd"
        assert "<cycle>" in repr(attrs["payload"])
        assert attrs["thing"].startswith("<object object")

    def test_cycles(self, pipeline):
        """A self-referencing dict is cut, not recursed into."""
        cyclic: dict[str, object] = {"a": 1}
        cyclic["self"] = cyclic
        logging.getLogger("security").warning("odd", extra={"payload": cyclic})
        otel_audit.security_event("data.accessed", payload=cyclic)
        records = pipeline.records()
        assert len(records) == 2
        assert "<cycle>" in repr(dict(records[0].attributes))

    def test_unformattable_message(self, pipeline):
        """A bad %-format still leaves a record that something was logged."""
        logger = logging.getLogger("security")
        bad = logger.makeRecord(
            "security",
            logging.WARNING,
            __file__,
            1,
            "%d failures",
            ("not-a-number",),
            None,
            extra={"otel.event.name": "authentication.failure"},
        )
        pipeline.handler.handle(bad)  # directly: pytest's own capture handler would raise
        (record,) = pipeline.records()
        assert record.event_name == "authentication.failure"
        assert record.attributes["otel_audit.handler_error"] == "TypeError"
