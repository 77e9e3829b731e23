"""
The AuditProcessor: classify, tag, enrich and redact on the caller's thread.

Redaction happens here, before any exporting processor sees the record.

It runs inside the application's logging call, so it must be cheap and must never raise.
Every step is guarded; if anything fails the record is made safe (fail closed) rather
than passed on raw.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable, MutableMapping
from time import time_ns
from typing import TYPE_CHECKING, Any, Final, Protocol, cast, runtime_checkable

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.trace import get_current_span

from otel_audit import semconv
from otel_audit._catalogue import (
    CATALOGUE,
    NAME_PATTERN,
    UNCLASSIFIED,
    Catalogue,
    EventType,
    OCSFClass,
    Outcome,
    category_of,
    tag_attributes,
)
from otel_audit._context import _REQUEST, _SCOPE, RequestContext
from otel_audit._ids import new_event_id
from otel_audit._settings import AuditSettings

if TYPE_CHECKING:
    from otel_audit._deferred import DeferredEmitter

FAILED_PLACEHOLDER: Final = "[REDACTED:processing_error]"

# Keys whose values are ours (ids, classification, integrity) and survive a fail-closed wipe.
_KEEP_ON_FAILURE: Final = frozenset(
    {
        semconv.AUDIT_EVENT_NAME,
        semconv.AUDIT_CATEGORY,
        semconv.EVENT_ID,
        semconv.EVENT_CATEGORY,
        semconv.EVENT_TYPE,
        semconv.EVENT_ACTION,
        semconv.EVENT_OUTCOME,
        semconv.AUDIT_OCSF_CLASS_UID,
        semconv.AUDIT_OCSF_CATEGORY_UID,
        semconv.AUDIT_OCSF_ACTIVITY_ID,
        semconv.AUDIT_REDACTION,
        semconv.HTTP_REQUEST_METHOD,
        semconv.HTTP_RESPONSE_STATUS_CODE,
        *semconv.INTEGRITY_KEYS,
    }
)

_SEVERITY_TEXT: Final = {
    SeverityNumber.INFO: "INFO",
    SeverityNumber.WARN: "WARN",
    SeverityNumber.ERROR: "ERROR",
    SeverityNumber.FATAL: "FATAL",
    SeverityNumber.DEBUG: "DEBUG",
}

_OUTCOMES: Final = frozenset({"success", "failure", "unknown"})
_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_WRITTEN_LATER: Final = frozenset({semconv.AUDIT_REDACTION, *semconv.INTEGRITY_KEYS})


@runtime_checkable
class Redactor(Protocol):
    """The redaction seam: rewrite a record's body and attributes in place.

    Implementations must not raise; the processor still guards the call and wipes the
    record if one does.
    """

    def redact_log_record(self, log_record: LogRecord) -> None:
        """Remove secrets and PII from ``log_record`` in place."""


class EventObserver(Protocol):
    """Something that watches tagged security events on the caller's thread (detections)."""

    def observe(self, log_record: LogRecord) -> None:
        """Look at one security event after tagging and redaction; must not raise."""


def is_security_event(record: ReadWriteLogRecord | LogRecord) -> bool:
    """
    True for records the AuditProcessor tagged as security events.

    Asked twice of every record (the durable and the ordinary path each select), so it
    reads the dict behind the SDK's ``BoundedAttributes`` when there is one: its
    ``__len__`` and ``__contains__`` are Python methods.
    """
    log_record = record.log_record if isinstance(record, ReadWriteLogRecord) else record
    attrs = log_record.attributes
    if attrs is None:
        return False
    inner = getattr(attrs, "_dict", None)
    if type(inner) is dict:
        return semconv.AUDIT_EVENT_NAME in inner
    return bool(attrs) and semconv.AUDIT_EVENT_NAME in attrs


class ProcessorStats:
    """Counters of what the processor did; cheap to bump, read by tests and the CLI."""

    def __init__(self) -> None:
        # Re-entrant: a signal handler that records an event may interrupt incr() on the
        # thread that holds it.
        self._lock = threading.RLock()
        self._counts: Counter[str] = Counter()

    def incr(self, name: str, amount: int = 1) -> None:
        """Add to a counter."""
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        """A copy of all counters."""
        with self._lock:
            return dict(self._counts)


class AuditProcessor(LogRecordProcessor):
    """Classify, tag and enrich log records; redact them before export.

    Add it to a ``LoggerProvider`` *before* any exporting processor (``configure()``
    does). For each record it:

    * decides whether it is a security event: its event name is in the catalogue, or it
      came from one of the security loggers (``security``, ``security.*``);
    * tags security events: ``event_name`` and ``audit.event.name``, a UUIDv7
      ``event.id``, ECS ``event.*`` and OCSF fields, default severity and outcome, and the
      attributes of the enclosing :func:`~otel_audit.audit_scope`;
    * fills trace/span ids from the active span when the record lacks them, and the
      who/where of the current request context;
    * runs the redactor (all records, or security events only, by settings).

    It never raises: a failure replaces the record's body and attribute values with a
    placeholder and bumps ``stats``.

    Args:
        settings: Parsed settings; defaults to :class:`AuditSettings` defaults.
        redactor: The tier-1 redaction engine (``None`` only for tests and benchmarks).
        observers: Watchers of tagged security events (the anomaly detections).
        catalogue: Event catalogue (the process-wide one by default).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        settings: AuditSettings | None = None,
        *,
        redactor: Redactor | None = None,
        observers: Iterable[EventObserver] = (),
        catalogue: Catalogue = CATALOGUE,
        deferred: DeferredEmitter | None = None,
    ) -> None:
        self._settings = settings or AuditSettings()
        self._deferred = deferred
        self._catalogue = catalogue
        self._redactor = redactor
        self._observers = tuple(observers)
        self._redact_all = self._settings.redaction_scope == "all"
        loggers = tuple(self._settings.security_loggers)
        self._security_loggers = frozenset(loggers)
        self._security_prefixes = tuple(f"{name}." for name in loggers)
        self.stats = ProcessorStats()

    @property
    def settings(self) -> AuditSettings:
        """The settings this processor was built with."""
        return self._settings

    def add_observer(self, observer: EventObserver) -> None:
        """Start passing tagged security events to ``observer``."""
        self._observers = (*self._observers, observer)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Process one record; never raises."""
        try:
            security = self._process(log_record)
        except Exception:
            self.stats.incr("processing_errors")
            wipe_record(log_record.log_record)
            return
        if security and self._observers:
            for observer in self._observers:
                try:
                    observer.observe(log_record.log_record)
                except Exception:
                    self.stats.incr("observer_errors")

    def shutdown(self) -> None:
        """Emit the deferred events; exporting processors own the other resources."""
        if self._deferred is not None:
            try:
                self._deferred.close()
            except Exception:  # never into the provider's shutdown of the processors after us
                self.stats.incr("deferred_errors")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """
        Emit the deferred security events queued so far (they then reach the exporters).

        This processor is first in the chain, so with the SDK's synchronous multi
        processor the exporting processors are flushed after the deferred events have
        entered them. False if that took longer than ``timeout_millis``.
        """
        if self._deferred is None:
            return True
        try:
            return self._deferred.flush(timeout_millis / 1000)
        except Exception:
            self.stats.incr("deferred_errors")
            return False

    def note_request_event(self, record: LogRecord, scope_name: str | None) -> None:
        """
        Note in the request context that ``record`` is a security event of its category.

        For a record whose processing is deferred, called on the caller's thread: the
        web middleware reads the categories when the response starts (a 401 after the
        application's own ``authentication.failure`` is the same fact), before the
        emitter has processed the record. Never raises.
        """
        try:
            request = _REQUEST.get()
            if request is None:
                return
            attrs = record.attributes if record.attributes is not None else {}
            name = self._event_name(record, attrs, scope_name)  # type: ignore[arg-type]  # read only
            if name is not None:
                event_type = self._catalogue.get(name) or _uncatalogued(name)
                request.emitted.categories.add(event_type.category.value)
        except Exception:
            self.stats.incr("processing_errors")

    # --- the steps ---------------------------------------------------------------

    def _process(self, rw: ReadWriteLogRecord) -> bool:
        record = rw.log_record
        attrs = record.attributes
        if attrs is None:  # the SDK always sets a BoundedAttributes; be defensive anyway
            record.attributes = attrs = {}
        view = _fast_view(attrs)
        if not view.keys().isdisjoint(_WRITTEN_LATER):
            # Only otel-audit writes these (redaction, the integrity chain); a caller's
            # value would be trusted downstream without being scanned.
            for key in _WRITTEN_LATER:
                view.pop(key, None)
        scope_name = rw.instrumentation_scope.name if rw.instrumentation_scope else None
        request = _REQUEST.get()
        name = self._event_name(record, view, scope_name)
        if name is not None:
            self._tag(record, view, name, request)
        self._enrich(record, view, request)
        if self._redactor is not None and (self._redact_all or name is not None):
            try:
                self._redactor.redact_log_record(record)
            except Exception:
                self.stats.incr("redaction_errors")
                wipe_record(record)
        generated_id = request.generated_request_id if request is not None else None
        if generated_id is not None:  # ours, so added after redaction, not scanned
            view = _fast_view(record.attributes)
            if semconv.AUDIT_REQUEST_ID not in view:
                view[semconv.AUDIT_REQUEST_ID] = generated_id
        return name is not None

    def _event_name(
        self, record: LogRecord, attrs: MutableMapping[str, Any], scope_name: str | None
    ) -> str | None:
        name = record.event_name
        if not name:
            name = attrs.get(semconv.OTEL_EVENT_NAME) or attrs.get(semconv.AUDIT_EVENT_NAME)
            if name is not None and not isinstance(name, str):
                name = str(name)
        if name and name in self._catalogue:
            return name
        if scope_name is not None and (
            scope_name in self._security_loggers or scope_name.startswith(self._security_prefixes)
        ):
            return name or UNCLASSIFIED
        if name and semconv.AUDIT_EVENT_NAME in attrs:
            return name  # already tagged upstream (e.g. replayed or an uncatalogued custom name)
        return None

    def _tag(
        self,
        record: LogRecord,
        attrs: MutableMapping[str, Any],
        name: str,
        request: RequestContext | None,
    ) -> None:
        event_type = self._catalogue.get(name) or _uncatalogued(name)
        record.event_name = name
        attrs.pop(semconv.OTEL_EVENT_NAME, None)
        scope = _SCOPE.get()
        if scope:
            for key, value in scope.items():
                if key not in attrs:
                    attrs[key] = value
        if attrs.get(semconv.EVENT_OUTCOME) not in _OUTCOMES:
            attrs[semconv.EVENT_OUTCOME] = event_type.outcome.value
        attrs[semconv.AUDIT_EVENT_NAME] = name
        event_id = attrs.get(semconv.EVENT_ID)
        if not (isinstance(event_id, str) and _UUID.fullmatch(event_id)):
            # Only a well-formed id is kept: redaction trusts this key's value.
            attrs[semconv.EVENT_ID] = new_event_id()
        # Always ours, never the caller's: redaction trusts these keys' values, so a
        # caller-supplied value would pass unscanned.
        attrs.update(tag_attributes(event_type))
        severity = record.severity_number
        if not severity or severity is SeverityNumber.UNSPECIFIED:
            record.severity_number = event_type.severity
            record.severity_text = _SEVERITY_TEXT.get(event_type.severity, "INFO")
        if not record.timestamp:
            record.timestamp = record.observed_timestamp or time_ns()
        if request is not None:
            request.emitted.categories.add(event_type.category.value)

    def _enrich(
        self, record: LogRecord, attrs: MutableMapping[str, Any], request: RequestContext | None
    ) -> None:
        if not record.trace_id:
            ctx = get_current_span(record.context).get_span_context()
            if ctx.is_valid:
                record.trace_id = ctx.trace_id
                record.span_id = ctx.span_id
                record.trace_flags = ctx.trace_flags
        if request is not None:
            extra = request.attributes()
            if attrs.keys().isdisjoint(extra):
                attrs.update(extra)
            else:
                for key, value in extra.items():
                    if key not in attrs:
                        attrs[key] = value


# Room kept for the attributes the processor adds, so the fast path never passes the limit.
_HEADROOM: Final = 48


def _fast_view(attrs: Any) -> MutableMapping[str, Any]:
    """
    The dict behind the SDK's ``BoundedAttributes`` when writing to it directly is safe.

    Going through ``BoundedAttributes.__setitem__`` costs a lock and a value clean per key
    (about a microsecond each, a third of our budget); the values we add are already
    clean primitives and tuples, and the record belongs to this thread during ``on_emit``.
    Near the attribute limit we take the slow, limit-enforcing path.

    Unlike :func:`otel_audit._records.direct_dict` (redaction's writes) this does not
    check for a value-length limit or an immutable mapping: the SDK hands processors a
    mutable mapping, the values are otel-audit's own short ones (and request-context
    values already bounded at ingress), and the two extra checks cost a measurable part
    of the issue-2 budget on every security event (bench_processor (b) 1.22-1.26 ->
    1.25-1.29 with them).
    """
    inner = getattr(attrs, "_dict", None)
    if isinstance(inner, dict):
        maxlen = getattr(attrs, "maxlen", None)
        if maxlen is None or len(inner) + _HEADROOM <= maxlen:
            return inner
    return cast("MutableMapping[str, Any]", attrs)


def _uncatalogued(name: str) -> EventType:
    """A stand-in type for a name from a security logger that is not in the catalogue."""
    safe = name if NAME_PATTERN.fullmatch(name) else UNCLASSIFIED
    return EventType(
        name=safe,
        category=category_of(name),
        description="",
        severity=SeverityNumber.INFO,
        outcome=Outcome.UNKNOWN,
        ecs_category=("host",),
        ecs_type=("info",),
        ocsf_class=OCSFClass.API_ACTIVITY,
        ocsf_activity_id=99,
    )


def wipe_record(record: LogRecord) -> None:
    """Fail closed: keep our own metadata, replace everything that could hold a secret."""
    try:
        record.body = FAILED_PLACEHOLDER
        attrs = record.attributes
        if attrs:
            for key in list(attrs.keys()):
                if key not in _KEEP_ON_FAILURE:
                    attrs[key] = FAILED_PLACEHOLDER  # type: ignore[index]
    except Exception:
        try:
            record.body = FAILED_PLACEHOLDER
            record.attributes = {"otel_audit.processing_error": True}
        except Exception:  # noqa: S110  # nothing more can be done without raising
            pass
