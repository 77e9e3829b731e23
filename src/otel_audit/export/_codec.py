"""
Encoding records for the spool, and decoding them again for exporters that need objects.

The spool holds serialized ``ExportLogsServiceRequest`` bytes. OTLP senders put those on
the wire unchanged; any other ``LogRecordExporter`` (console, in-memory, a vendor's)
gets ``ReadableLogRecord`` objects rebuilt by :func:`decode_request`.

The SDK's encoder raises on bodies it cannot represent (sets, arbitrary objects, cycles,
deep nesting, lone surrogates, integers beyond 64 bits) and silently drops such attribute
values after logging a traceback. :func:`sanitized_record` makes every value encodable
first, with the same walker the application side uses (:mod:`otel_audit._bounded`) under
its export bounds: bytes stay ``bytesValue`` (redaction has already run, nothing scans
them any more) and unknown objects become ``"<TypeName>"``, never their ``str``/``repr``,
which could carry data tier-1 redaction never saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbLogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from otel_audit._bounded import EXPORT, bound_value, needs_bounding


def sanitized_record(record: ReadableLogRecord) -> ReadableLogRecord | None:
    """A copy with encodable body and attributes, or None if nothing needed changing."""
    lr = record.log_record
    attrs = lr.attributes or {}
    body_bad = needs_bounding(lr.body, EXPORT)
    bad_keys = [k for k, v in attrs.items() if needs_bounding(v, EXPORT)]
    if not body_bad and not bad_keys:
        return None
    new_attrs = dict(attrs)
    for key in bad_keys:
        new_attrs[key] = bound_value(attrs[key], EXPORT)
    copy = LogRecord(
        timestamp=lr.timestamp,
        observed_timestamp=lr.observed_timestamp,
        context=lr.context,
        severity_text=lr.severity_text,
        severity_number=lr.severity_number,
        body=bound_value(lr.body, EXPORT) if body_bad else lr.body,
        attributes=new_attrs,
        event_name=lr.event_name,
    )
    copy.trace_id, copy.span_id, copy.trace_flags = lr.trace_id, lr.span_id, lr.trace_flags
    return ReadableLogRecord(copy, record.resource, record.instrumentation_scope, record.limits)


# --- decoding ------------------------------------------------------------------------


def any_value_to_python(value: AnyValue) -> Any:
    """The Python value the SDK would have encoded to ``value``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value_to_python(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value_to_python(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _attributes(kvs: Sequence[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value_to_python(kv.value) for kv in kvs}


def decode_request(payload: bytes) -> list[ReadableLogRecord]:
    """Rebuild SDK records from a serialized ``ExportLogsServiceRequest``."""
    request = ExportLogsServiceRequest.FromString(payload)
    out: list[ReadableLogRecord] = []
    for rl in request.resource_logs:
        resource = Resource(_attributes(rl.resource.attributes), rl.schema_url or None)
        for sl in rl.scope_logs:
            scope = None
            if sl.HasField("scope"):
                scope = InstrumentationScope(
                    sl.scope.name,
                    sl.scope.version or None,
                    sl.schema_url or None,
                    _attributes(sl.scope.attributes) or None,
                )
            out.extend(decode_log_record(lr, resource, scope) for lr in sl.log_records)
    return out


def decode_log_record(
    lr: PbLogRecord, resource: Resource, scope: InstrumentationScope | None
) -> ReadableLogRecord:
    """Rebuild one SDK record from its ``LogRecord`` message."""
    context = None
    if len(lr.trace_id) == 16 and len(lr.span_id) == 8:  # noqa: PLR2004  # OTLP id sizes
        span_context = SpanContext(
            int.from_bytes(lr.trace_id, "big"),
            int.from_bytes(lr.span_id, "big"),
            is_remote=False,
            trace_flags=TraceFlags(lr.flags & 0xFF),
        )
        context = set_span_in_context(NonRecordingSpan(span_context))
    record = LogRecord(
        timestamp=lr.time_unix_nano or None,
        observed_timestamp=lr.observed_time_unix_nano or None,
        context=context,
        severity_text=lr.severity_text or None,
        severity_number=SeverityNumber(lr.severity_number) if lr.severity_number else None,
        body=any_value_to_python(lr.body) if lr.HasField("body") else None,
        attributes=_attributes(lr.attributes),
        event_name=lr.event_name or None,
    )
    return ReadableLogRecord(record, resource, scope)


def count_records(request: ExportLogsServiceRequest) -> int:
    """Log records in a request."""
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
