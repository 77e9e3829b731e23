"""The security-event vocabulary: one :class:`EventType` per stable dotted name.

A catalogue entry carries everything a SIEM needs to file the event without parsing the
message: our category, ECS ``event.category``/``event.type``/``event.action``, the OCSF
class and activity, and a default severity and outcome. Names are a public contract: once
released they are never renamed, only deprecated.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from opentelemetry._logs import SeverityNumber

from otel_audit import semconv


class Category(str, Enum):
    """otel-audit's own event categories (the first part of a catalogue name)."""

    AUTHENTICATION = "authentication"
    AUTHORIZATION = "authorization"
    ACCOUNT = "account"
    PRIVILEGE = "privilege"
    SESSION = "session"
    DATA = "data"
    CONFIGURATION = "configuration"
    API_KEY = "api_key"
    RATE_LIMIT = "rate_limit"
    ANTI_AUTOMATION = "anti_automation"
    FILE = "file"
    OAUTH = "oauth"
    SERVICE = "service"
    ALERT = "alert"
    AUDIT = "audit"
    OTHER = "other"


class Outcome(str, Enum):
    """ECS ``event.outcome``."""

    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class OCSFClass(int, Enum):
    """OCSF event classes used by the catalogue (schema 1.x ``class_uid``)."""

    FILE_SYSTEM_ACTIVITY = 1001
    DETECTION_FINDING = 2004
    ACCOUNT_CHANGE = 3001
    AUTHENTICATION = 3002
    AUTHORIZE_SESSION = 3003
    ENTITY_MANAGEMENT = 3004
    USER_ACCESS_MANAGEMENT = 3005
    APPLICATION_LIFECYCLE = 6002
    API_ACTIVITY = 6003

    @property
    def category_uid(self) -> int:
        """OCSF ``category_uid``: the thousands digit of the class."""
        return int(self.value) // 1000


NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")

INFO: Final = SeverityNumber.INFO
WARN: Final = SeverityNumber.WARN
ERROR: Final = SeverityNumber.ERROR


@dataclass(frozen=True, slots=True)
class EventType:
    """One kind of security event.

    Args:
        name: Stable dotted name, ``<category>.<action>`` (``authentication.failure``).
        category: otel-audit category.
        description: One line for the documentation table.
        severity: Default OpenTelemetry severity.
        outcome: Default outcome; a call may override it.
        ecs_category: ECS ``event.category`` values.
        ecs_type: ECS ``event.type`` values.
        ocsf_class: OCSF class.
        ocsf_activity_id: OCSF ``activity_id`` within the class (99 = Other).
    """

    name: str
    category: Category
    description: str
    severity: SeverityNumber
    outcome: Outcome
    ecs_category: tuple[str, ...]
    ecs_type: tuple[str, ...]
    ocsf_class: OCSFClass
    ocsf_activity_id: int

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            msg = (
                f"event type name {self.name!r} is not valid; use lower-case dotted "
                "words such as 'user.exported_team_data'"
            )
            raise ValueError(msg)

    @property
    def action(self) -> str:
        """ECS ``event.action``: the name with dots and underscores as dashes."""
        return self.name.replace("_", "-").replace(".", "-")


S, F, U = Outcome.SUCCESS, Outcome.FAILURE, Outcome.UNKNOWN
C = Category
O = OCSFClass  # noqa: E741  # a one-letter alias keeps the table readable

_BUILTIN: tuple[EventType, ...] = (
    # --- authentication ---------------------------------------------------------
    EventType("authentication.success", C.AUTHENTICATION, "A user logged in.", INFO, S,
              ("authentication",), ("start",), O.AUTHENTICATION, 1),
    EventType("authentication.failure", C.AUTHENTICATION, "A login attempt failed.", WARN, F,
              ("authentication",), ("start",), O.AUTHENTICATION, 1),
    EventType("authentication.logout", C.AUTHENTICATION, "A user logged out.", INFO, S,
              ("authentication", "session"), ("end",), O.AUTHENTICATION, 2),
    EventType("authentication.password_changed", C.AUTHENTICATION,
              "A user changed their password.", INFO, S,
              ("iam",), ("user", "change"), O.ACCOUNT_CHANGE, 3),
    EventType("authentication.password_reset_requested", C.AUTHENTICATION,
              "A password reset was requested.", INFO, S,
              ("iam",), ("user", "info"), O.ACCOUNT_CHANGE, 99),
    EventType("authentication.password_reset", C.AUTHENTICATION,
              "A password was reset.", INFO, S,
              ("iam",), ("user", "change"), O.ACCOUNT_CHANGE, 4),
    EventType("authentication.mfa_enrolled", C.AUTHENTICATION,
              "A second factor was enrolled.", INFO, S,
              ("iam",), ("user", "change"), O.ACCOUNT_CHANGE, 10),
    EventType("authentication.mfa_removed", C.AUTHENTICATION,
              "A second factor was removed.", WARN, S,
              ("iam",), ("user", "change"), O.ACCOUNT_CHANGE, 11),
    EventType("authentication.mfa_challenge_success", C.AUTHENTICATION,
              "A second-factor challenge was passed.", INFO, S,
              ("authentication",), ("info",), O.AUTHENTICATION, 99),
    EventType("authentication.mfa_challenge_failure", C.AUTHENTICATION,
              "A second-factor challenge failed.", WARN, F,
              ("authentication",), ("info",), O.AUTHENTICATION, 99),
    EventType("authentication.token_issued", C.AUTHENTICATION,
              "An access or refresh token was issued.", INFO, S,
              ("authentication",), ("creation",), O.AUTHENTICATION, 3),
    EventType("authentication.token_expired", C.AUTHENTICATION,
              "An expired token was presented.", INFO, F,
              ("authentication",), ("denied",), O.AUTHENTICATION, 99),
    EventType("authentication.token_invalid", C.AUTHENTICATION,
              "An invalid or forged token was presented.", WARN, F,
              ("authentication",), ("denied",), O.AUTHENTICATION, 99),
    EventType("authentication.mtls_success", C.AUTHENTICATION,
              "A client certificate was accepted.", INFO, S,
              ("authentication",), ("start",), O.AUTHENTICATION, 1),
    EventType("authentication.mtls_failure", C.AUTHENTICATION,
              "A client certificate was rejected.", WARN, F,
              ("authentication",), ("start",), O.AUTHENTICATION, 1),
    # --- authorization ----------------------------------------------------------
    EventType("authorization.granted", C.AUTHORIZATION, "Access to a resource was allowed.",
              INFO, S, ("iam",), ("allowed",), O.AUTHORIZE_SESSION, 99),
    EventType("authorization.denied", C.AUTHORIZATION, "Access to a resource was denied.",
              WARN, F, ("iam",), ("denied",), O.AUTHORIZE_SESSION, 99),
    # --- account lifecycle -------------------------------------------------------
    EventType("account.created", C.ACCOUNT, "An account was created.", INFO, S,
              ("iam",), ("user", "creation"), O.ACCOUNT_CHANGE, 1),
    EventType("account.deleted", C.ACCOUNT, "An account was deleted.", WARN, S,
              ("iam",), ("user", "deletion"), O.ACCOUNT_CHANGE, 6),
    EventType("account.disabled", C.ACCOUNT, "An account was disabled.", WARN, S,
              ("iam",), ("user", "change"), O.ACCOUNT_CHANGE, 5),
    EventType("account.enabled", C.ACCOUNT, "An account was enabled.", INFO, S,
              ("iam",), ("user", "change"), O.ACCOUNT_CHANGE, 2),
    EventType("account.locked", C.ACCOUNT, "An account was locked.", WARN, S,
              ("iam",), ("user", "change"), O.ACCOUNT_CHANGE, 9),
    EventType("account.unlocked", C.ACCOUNT, "An account was unlocked.", INFO, S,
              ("iam",), ("user", "change"), O.ACCOUNT_CHANGE, 12),
    EventType("account.role_granted", C.ACCOUNT, "A role was granted to an account.", WARN, S,
              ("iam",), ("user", "group", "change"), O.USER_ACCESS_MANAGEMENT, 1),
    EventType("account.role_revoked", C.ACCOUNT, "A role was revoked from an account.", INFO, S,
              ("iam",), ("user", "group", "change"), O.USER_ACCESS_MANAGEMENT, 2),
    EventType("account.permission_granted", C.ACCOUNT,
              "A permission was granted to an account.", WARN, S,
              ("iam",), ("user", "change"), O.USER_ACCESS_MANAGEMENT, 1),
    EventType("account.permission_revoked", C.ACCOUNT,
              "A permission was revoked from an account.", INFO, S,
              ("iam",), ("user", "change"), O.USER_ACCESS_MANAGEMENT, 2),
    # --- privilege use ------------------------------------------------------------
    EventType("privilege.used", C.PRIVILEGE,
              "An elevated privilege was exercised (sudo, impersonation, break-glass).", WARN, S,
              ("iam",), ("admin", "access"), O.AUTHORIZE_SESSION, 1),
    EventType("privilege.impersonation_started", C.PRIVILEGE,
              "A user began acting as another user.", WARN, S,
              ("iam", "session"), ("admin", "start"), O.AUTHORIZE_SESSION, 1),
    # --- sessions -------------------------------------------------------------------
    EventType("session.created", C.SESSION, "A session was created.", INFO, S,
              ("session",), ("start",), O.AUTHENTICATION, 1),
    EventType("session.revoked", C.SESSION, "A session was revoked.", INFO, S,
              ("session",), ("end",), O.AUTHENTICATION, 2),
    EventType("session.expired", C.SESSION, "A session expired.", INFO, S,
              ("session",), ("end",), O.AUTHENTICATION, 2),
    EventType("session.failure", C.SESSION,
              "A session was rejected (invalid, fixated, replayed or bound to another client).",
              WARN, F, ("session",), ("denied",), O.AUTHENTICATION, 99),
    # --- data ---------------------------------------------------------------------
    EventType("data.accessed", C.DATA, "Sensitive data was read.", INFO, S,
              ("database",), ("access",), O.API_ACTIVITY, 2),
    EventType("data.exported", C.DATA, "Data left the system through an export.", WARN, S,
              ("database",), ("access",), O.API_ACTIVITY, 2),
    EventType("data.modified", C.DATA, "Sensitive data was changed.", INFO, S,
              ("database",), ("change",), O.API_ACTIVITY, 3),
    EventType("data.bulk_deleted", C.DATA, "Many records were deleted at once.", WARN, S,
              ("database",), ("deletion",), O.API_ACTIVITY, 4),
    # --- configuration --------------------------------------------------------------
    EventType("configuration.changed", C.CONFIGURATION,
              "A security-relevant setting was changed.", WARN, S,
              ("configuration",), ("change",), O.ENTITY_MANAGEMENT, 3),
    # --- API keys -------------------------------------------------------------------
    EventType("api_key.created", C.API_KEY, "An API key was created.", INFO, S,
              ("iam",), ("creation",), O.ENTITY_MANAGEMENT, 1),
    EventType("api_key.revoked", C.API_KEY, "An API key was revoked.", INFO, S,
              ("iam",), ("deletion",), O.ENTITY_MANAGEMENT, 4),
    # --- abuse ----------------------------------------------------------------------
    EventType("rate_limit.exceeded", C.RATE_LIMIT, "A client exceeded a rate limit.", WARN, F,
              ("web",), ("denied",), O.API_ACTIVITY, 99),
    EventType("anti_automation.detected", C.ANTI_AUTOMATION,
              "Automated use was detected (bot, captcha failure, scripted client).", WARN, F,
              ("intrusion_detection",), ("indicator",), O.DETECTION_FINDING, 1),
    # --- files ----------------------------------------------------------------------
    EventType("file.created", C.FILE, "A file was created.", INFO, S,
              ("file",), ("creation",), O.FILE_SYSTEM_ACTIVITY, 1),
    EventType("file.modified", C.FILE, "A file was modified.", INFO, S,
              ("file",), ("change",), O.FILE_SYSTEM_ACTIVITY, 3),
    EventType("file.deleted", C.FILE, "A file was deleted.", INFO, S,
              ("file",), ("deletion",), O.FILE_SYSTEM_ACTIVITY, 4),
    # --- OAuth ----------------------------------------------------------------------
    EventType("oauth.flow_initiated", C.OAUTH, "An OAuth authorization flow began.", INFO, U,
              ("authentication",), ("start",), O.AUTHENTICATION, 99),
    EventType("oauth.flow_completed", C.OAUTH, "An OAuth authorization flow completed.", INFO, S,
              ("authentication",), ("start",), O.AUTHENTICATION, 1),
    EventType("oauth.flow_failed", C.OAUTH, "An OAuth authorization flow failed.", WARN, F,
              ("authentication",), ("start",), O.AUTHENTICATION, 1),
    EventType("oauth.token_revoked", C.OAUTH, "An OAuth grant or token was revoked.", INFO, S,
              ("authentication",), ("deletion",), O.AUTHENTICATION, 99),
    # --- service lifecycle ------------------------------------------------------------
    EventType("service.started", C.SERVICE, "The service started.", INFO, S,
              ("process",), ("start",), O.APPLICATION_LIFECYCLE, 3),
    EventType("service.stopped", C.SERVICE, "The service stopped.", INFO, S,
              ("process",), ("end",), O.APPLICATION_LIFECYCLE, 4),
    EventType("service.server_error", C.SERVICE,
              "A security-sensitive route answered with a server error (5xx).", ERROR, F,
              ("web",), ("error",), O.API_ACTIVITY, 99),
    # --- alerts raised by the in-process detections -----------------------------------
    EventType("alert.brute_force", C.ALERT,
              "Repeated authentication failures for one account or from one address.", ERROR, U,
              ("intrusion_detection", "authentication"), ("indicator",), O.DETECTION_FINDING, 1),
    EventType("alert.credential_stuffing", C.ALERT,
              "Many accounts failing authentication from one address.", ERROR, U,
              ("intrusion_detection", "authentication"), ("indicator",), O.DETECTION_FINDING, 1),
    EventType("alert.privilege_escalation", C.ALERT,
              "An admin-level role or a self-grant was given.", ERROR, U,
              ("intrusion_detection", "iam"), ("indicator",), O.DETECTION_FINDING, 1),
    EventType("alert.unusual_data_access", C.ALERT,
              "Data exported above the configured volume.", ERROR, U,
              ("intrusion_detection", "database"), ("indicator",), O.DETECTION_FINDING, 1),
    # --- otel-audit's own bookkeeping ---------------------------------------------------
    EventType("audit.checkpoint", C.AUDIT,
              "Signed summary of the integrity chain so far.", INFO, S,
              ("configuration",), ("info",), O.APPLICATION_LIFECYCLE, 99),
    EventType("security.event", C.OTHER,
              "A record from a security logger that named no catalogue event.", INFO, U,
              ("host",), ("info",), O.API_ACTIVITY, 99),
)  # fmt: skip

UNCLASSIFIED: Final = "security.event"
"""Name given to a security-logger record that named no event."""


class Catalogue:
    """Thread-safe registry of event types.

    Reads are lock-free (a dict swap on write) because every log record consults it.
    """

    def __init__(self, types: tuple[EventType, ...] = _BUILTIN) -> None:
        self._lock = threading.Lock()
        self._types: dict[str, EventType] = {t.name: t for t in types}

    def get(self, name: str) -> EventType | None:
        """The event type called ``name``, or ``None``."""
        return self._types.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[EventType]:
        return iter(tuple(self._types.values()))

    def __len__(self) -> int:
        return len(self._types)

    def register(self, event_type: EventType, *, replace: bool = False) -> EventType:
        """Add a user-defined type.

        Raises:
            ValueError: the name exists and ``replace`` is false.
        """
        if not isinstance(event_type, EventType):
            msg = f"expected an EventType, got {type(event_type).__name__}"
            raise TypeError(msg)
        with self._lock:
            if event_type.name in self._types and not replace:
                msg = f"event type {event_type.name!r} is already registered"
                raise ValueError(msg)
            updated = dict(self._types)
            updated[event_type.name] = event_type
            self._types = updated
        return event_type


CATALOGUE: Final = Catalogue()
"""The process-wide catalogue that the processor consults."""


def register_event_type(
    name: str,
    *,
    category: Category | str = Category.OTHER,
    description: str = "",
    severity: SeverityNumber = SeverityNumber.INFO,
    outcome: Outcome | str = Outcome.UNKNOWN,
    ecs_category: tuple[str, ...] = ("host",),
    ecs_type: tuple[str, ...] = ("info",),
    ocsf_class: OCSFClass | int = OCSFClass.API_ACTIVITY,
    ocsf_activity_id: int = 99,
    replace: bool = False,
) -> EventType:
    """Register an application-specific event type, e.g. ``user.exported_team_data``.

    Events of a registered type are security events wherever they are emitted from.

    Returns:
        The registered type.

    Raises:
        ValueError: the name is malformed or already taken.

    .. versionadded:: 0.1.0
    """
    event_type = EventType(
        name=name,
        category=Category(category),
        description=description,
        severity=severity,
        outcome=Outcome(outcome),
        ecs_category=tuple(ecs_category),
        ecs_type=tuple(ecs_type),
        ocsf_class=OCSFClass(ocsf_class),
        ocsf_activity_id=int(ocsf_activity_id),
    )
    return CATALOGUE.register(event_type, replace=replace)


# Keyed by name, checked by identity: hashing the frozen EventType itself costs a microsecond.
_TAG_CACHE: dict[str, tuple[EventType, Mapping[str, Any]]] = {}


def tag_attributes(event_type: EventType) -> Mapping[str, Any]:
    """
    The classification attributes every event of this type carries (ECS, OCSF, category).

    Cached per type: the processor adds them to every security event on the app thread.
    """
    cached = _TAG_CACHE.get(event_type.name)
    if cached is not None and cached[0] is event_type:
        return cached[1]
    attributes: Mapping[str, Any] = {
        semconv.AUDIT_CATEGORY: event_type.category.value,
        semconv.EVENT_CATEGORY: tuple(event_type.ecs_category),
        semconv.EVENT_TYPE: tuple(event_type.ecs_type),
        semconv.EVENT_ACTION: event_type.action,
        semconv.AUDIT_OCSF_CLASS_UID: int(event_type.ocsf_class),
        semconv.AUDIT_OCSF_CATEGORY_UID: event_type.ocsf_class.category_uid,
        semconv.AUDIT_OCSF_ACTIVITY_ID: event_type.ocsf_activity_id,
    }
    _TAG_CACHE[event_type.name] = (event_type, attributes)
    return attributes


def category_of(name: str) -> Category:
    """Best category for an uncatalogued name: its first dotted part if that is one."""
    head = name.split(".", 1)[0]
    try:
        return Category(head)
    except ValueError:
        return Category.OTHER
