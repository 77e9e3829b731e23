"""Helpers for users' own tests: capture the security events an action emitted.

Like ``structlog.testing.capture_logs``: the events go through the real AuditProcessor
(classification, enrichment, redaction) into memory, so a test can assert "this login
emitted an authentication event with no password in it".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otel_audit import semconv
from otel_audit._configure import configure, shutdown
from otel_audit._processor import is_security_event

__all__ = ["CapturedEvent", "capture_security_events"]


@dataclass(frozen=True)
class CapturedEvent:
    """One exported record, flattened for assertions."""

    name: str | None
    body: Any
    attributes: Mapping[str, Any]
    severity_text: str | None
    trace_id: int | None
    span_id: int | None

    @property
    def outcome(self) -> str | None:
        """``event.outcome``."""
        value = self.attributes.get(semconv.EVENT_OUTCOME)
        return None if value is None else str(value)

    @property
    def category(self) -> str | None:
        """otel-audit category."""
        value = self.attributes.get(semconv.AUDIT_CATEGORY)
        return None if value is None else str(value)


class CapturedEvents(list[CapturedEvent]):
    """The captured security events, with helpers for the common assertions."""

    def named(self, name: str) -> list[CapturedEvent]:
        """Events whose name is ``name``."""
        return [e for e in self if e.name == name]

    def contains_text(self, text: str) -> bool:
        """True if ``text`` appears anywhere in any captured body or attribute value."""
        return any(text in repr(e.body) or text in repr(dict(e.attributes)) for e in self)


@contextmanager
def capture_security_events(
    *, include_ordinary: bool = False, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Iterator[CapturedEvents]:
    """Configure otel-audit with an in-memory exporter for the duration of the block.

    Yields a list that is filled when the block exits, in the order the records were
    emitted (by timestamp). Must not be nested with a real :func:`otel_audit.configure`
    in the same process (it shuts that down first).

    .. versionadded:: 0.1.0
    """
    shutdown()
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]  # SDK lacks annotations
    provider = LoggerProvider(shutdown_on_exit=False)
    captured = CapturedEvents()
    configure(
        environ=environ if environ is not None else {},
        logger_provider=provider,
        exporters=[],
        set_global=False,
        delivery="batch",
        **overrides,
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    try:
        yield captured
    finally:
        provider.force_flush()
        # In the order things happened: security events are built on a background thread
        # (OTEL_PYTHON_AUDIT_DEFER_EVENTS), so they reach the exporter after records the
        # application logged later. sorted() is stable for equal timestamps.
        finished_logs = sorted(
            exporter.get_finished_logs(), key=lambda f: f.log_record.timestamp or 0
        )
        for finished in finished_logs:
            record = finished.log_record
            if not include_ordinary and not is_security_event(record):
                continue
            captured.append(
                CapturedEvent(
                    name=record.event_name,
                    body=record.body,
                    attributes=dict(record.attributes or {}),
                    severity_text=record.severity_text,
                    trace_id=record.trace_id,
                    span_id=record.span_id,
                )
            )
        shutdown()
        provider.shutdown()
