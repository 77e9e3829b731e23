"""Attribute keys that otel-audit reads and writes.

One place names every key so that the processor, the collector configuration, the
SIEM mappings and users' queries agree. Keys follow OpenTelemetry semantic
conventions where one exists (``user.*``, ``client.*``, ``http.*``, ``url.*``,
``session.id``, ``exception.*``), ECS-style ``event.*`` for classification, and the
``audit.*`` namespace for everything that is ours.
"""

from __future__ import annotations

from typing import Final

# --- routing and identity of a security event -------------------------------------
AUDIT_EVENT_NAME: Final = "audit.event.name"
"""The catalogue name (``authentication.failure``). Also written to the record's
``event_name``; this attribute exists because some exporters drop ``event_name``.
Its presence marks a record as a security event: the collector routes on it."""

AUDIT_CATEGORY: Final = "audit.category"
"""otel-audit's own category (``authentication``, ``authorization``, ``account``…)."""

EVENT_ID: Final = "event.id"
"""Unique, time-sortable id (UUIDv7 text) used for de-duplication downstream."""

EVENT_CATEGORY: Final = "event.category"
"""ECS ``event.category`` (a list of strings)."""

EVENT_TYPE: Final = "event.type"
"""ECS ``event.type`` (a list of strings)."""

EVENT_ACTION: Final = "event.action"
"""ECS ``event.action``: the catalogue name's action part, e.g. ``user-login``."""

EVENT_OUTCOME: Final = "event.outcome"
"""ECS ``event.outcome``: ``success``, ``failure`` or ``unknown``."""

AUDIT_OCSF_CLASS_UID: Final = "audit.ocsf.class_uid"
AUDIT_OCSF_CATEGORY_UID: Final = "audit.ocsf.category_uid"
AUDIT_OCSF_ACTIVITY_ID: Final = "audit.ocsf.activity_id"

AUDIT_REASON: Final = "audit.reason"
"""Why the outcome happened (``bad_password``, ``mfa_required``…)."""

AUDIT_TARGET: Final = "audit.target"
"""What the action was done to. A mapping target becomes ``audit.target.<key>``."""

AUDIT_SCOPE_PREFIX: Final = "audit."
"""Our namespace; keys under it that are not listed here are application data."""

# --- who and where (OpenTelemetry semantic conventions) ---------------------------
USER_ID: Final = "user.id"
USER_NAME: Final = "user.name"
USER_ROLES: Final = "user.roles"
CLIENT_ADDRESS: Final = "client.address"
CLIENT_PORT: Final = "client.port"
USER_AGENT_ORIGINAL: Final = "user_agent.original"
SESSION_ID: Final = "session.id"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
URL_PATH: Final = "url.path"
AUDIT_REQUEST_ID: Final = "audit.request.id"
"""The request id (incoming ``X-Request-ID`` or generated); no semantic convention exists."""

# --- data volume (used by the unusual-access detection) ---------------------------
AUDIT_RECORD_COUNT: Final = "audit.data.record_count"
"""How many records a data access or export touched."""

# --- redaction ---------------------------------------------------------------------
AUDIT_REDACTION: Final = "audit.redaction"
"""Per-record summary of what redaction did: a list of ``<rule id>:<count>`` strings.
Never carries any part of a removed value."""

# --- integrity chain (set on the export path, after redaction) ----------------------
AUDIT_INTEGRITY_STREAM: Final = "audit.integrity.stream"
AUDIT_INTEGRITY_SEQ: Final = "audit.integrity.seq"
AUDIT_INTEGRITY_PREV: Final = "audit.integrity.prev"
AUDIT_INTEGRITY_HMAC: Final = "audit.integrity.hmac"
AUDIT_INTEGRITY_KEY_ID: Final = "audit.integrity.key_id"
AUDIT_INTEGRITY_ALG: Final = "audit.integrity.alg"
"""``hmac-sha256`` (signed) or ``sha256`` (no key configured: chained, not signed)."""

# --- stdlib logging bridge --------------------------------------------------------
OTEL_EVENT_NAME: Final = "otel.event.name"
"""The ``extra=`` key that stdlib users set to name an event; the logging bridge promotes
it to the record's ``event_name``."""

INTEGRITY_KEYS: Final = frozenset(
    {
        AUDIT_INTEGRITY_STREAM,
        AUDIT_INTEGRITY_SEQ,
        AUDIT_INTEGRITY_PREV,
        AUDIT_INTEGRITY_HMAC,
        AUDIT_INTEGRITY_KEY_ID,
        AUDIT_INTEGRITY_ALG,
    }
)
"""Keys that downstream transforms must leave untouched."""
