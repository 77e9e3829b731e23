"""Fixtures for the web tests: a real SDK pipeline (AuditProcessor → in-memory) and tracing."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_audit import AuditProcessor, AuditSettings, _api

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@dataclass
class Event:
    """One exported security event, flattened."""

    name: str | None
    attributes: dict[str, Any]
    trace_id: int | None


@dataclass
class Pipeline:
    """The in-memory pipeline the middlewares emit into."""

    exporter: InMemoryLogRecordExporter
    spans: InMemorySpanExporter
    tracer_provider: TracerProvider
    settings: AuditSettings

    def events(self, name: str | None = None) -> list[Event]:
        out = []
        for finished in self.exporter.get_finished_logs():
            record = finished.log_record
            if name is not None and record.event_name != name:
                continue
            out.append(Event(record.event_name, dict(record.attributes or {}), record.trace_id))
        return out


@pytest.fixture(name="settings")
def _settings() -> AuditSettings:
    return AuditSettings(trusted_proxies=TRUSTED)


@pytest.fixture(name="pipeline")
def _pipeline(settings: AuditSettings) -> Iterator[Pipeline]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(AuditProcessor(settings))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    _api._set_provider(provider)
    try:
        yield Pipeline(exporter, spans, tracer_provider, settings)
    finally:
        _api._set_provider(None)
        provider.shutdown()
        tracer_provider.shutdown()
