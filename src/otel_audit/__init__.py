"""otel-audit: security and audit logging for OpenTelemetry, correct by default.

Security events are classified and tagged, enriched with trace and request context,
stripped of secrets and PII before any exporter sees them, and delivered over OTLP on a
path that does not drop them silently.
"""

from __future__ import annotations

from otel_audit._api import security_event
from otel_audit._catalogue import (
    CATALOGUE,
    Category,
    EventType,
    OCSFClass,
    Outcome,
    register_event_type,
)
from otel_audit._configure import configure, get_audit_processor, shutdown
from otel_audit._context import (
    Actor,
    RequestContext,
    audit_scope,
    get_request_context,
    request_context,
    reset_request_context,
    set_request_context,
    update_request_context,
)
from otel_audit._handler import AuditLoggingHandler
from otel_audit._processor import AuditProcessor, EventObserver, Redactor, is_security_event
from otel_audit._settings import AuditSettings, load_settings
from otel_audit.exceptions import ConfigurationError

__all__ = [
    "CATALOGUE",
    "Actor",
    "AuditLoggingHandler",
    "AuditProcessor",
    "AuditSettings",
    "Category",
    "ConfigurationError",
    "EventObserver",
    "EventType",
    "OCSFClass",
    "Outcome",
    "Redactor",
    "RequestContext",
    "audit_scope",
    "configure",
    "get_audit_processor",
    "get_request_context",
    "is_security_event",
    "load_settings",
    "register_event_type",
    "request_context",
    "reset_request_context",
    "security_event",
    "set_request_context",
    "shutdown",
    "update_request_context",
]
