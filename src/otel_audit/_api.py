"""``security_event()``: the one-line way to record who did what, with what outcome.

It emits through the ``LoggerProvider`` set up by :func:`otel_audit.configure` (or the
global one), so the event takes the same path as a stdlib record from the ``security``
logger. It never raises: an audit call must not break the action it records.
"""

from __future__ import annotations

import threading
from collections import Counter
from time import time_ns
from typing import Any, Final, NamedTuple

from opentelemetry._logs import (
    LoggerProvider,
    LogRecord,
    SeverityNumber,
    get_logger,
    get_logger_provider,
)
from opentelemetry.context import get_current
from opentelemetry.sdk._logs import Logger as SdkLogger

from otel_audit import semconv
from otel_audit._bounded import bound_mapping, is_plain
from otel_audit._catalogue import CATALOGUE, Outcome, category_of
from otel_audit._context import _REQUEST, Actor, ActorLike, scope_attributes
from otel_audit._deferred import DeferredEmitter
from otel_audit._ids import new_event_id
from otel_audit._records import writable

_LOGGER_NAME = "otel_audit"

_provider_lock = threading.Lock()
_provider: LoggerProvider | None = None
_emitter: DeferredEmitter | None = None
_errors: Counter[str] = Counter()
# The SDK logger of the provider last used: looked up through the provider's locked cache
# only when the provider changes (every security event pays for this on the app thread).
_logger_of: tuple[object, Any] | None = None


def _logger(provider: LoggerProvider) -> Any:
    global _logger_of  # noqa: PLW0603  # a one-entry cache, replaced whole
    cached = _logger_of
    if cached is not None and cached[0] is provider:
        return cached[1]
    logger = get_logger(_LOGGER_NAME, logger_provider=provider)
    if isinstance(logger, SdkLogger):  # a proxy or no-op logger may change: not cached
        _logger_of = (provider, logger)
    return logger


def _set_provider(provider: LoggerProvider | None, emitter: DeferredEmitter | None = None) -> None:
    global _provider, _logger_of, _emitter  # noqa: PLW0603  # set by configure(), cleared by shutdown()
    with _provider_lock:
        _provider = provider
        _emitter = emitter
        _logger_of = None  # do not keep a shut-down provider alive


def failures() -> dict[str, int]:
    """
    ``security_event`` calls that failed internally and were swallowed, by exception type.

    A failure here means an event was lost, so it must be visible somewhere.
    """
    return dict(_errors)


def security_event(
    name: str,
    *,
    outcome: Outcome | str | None = None,
    actor: ActorLike | None = None,
    target: Any = None,
    reason: str | None = None,
    message: str | None = None,
    severity: SeverityNumber | None = None,
    **details: Any,
) -> str | None:
    """Record a security event.

    Args:
        name: Catalogue name such as ``"authentication.failure"`` or a registered custom
            type. An unknown name is still recorded, under its first dotted part's category.
        outcome: ``success``, ``failure`` or ``unknown``; defaults to the type's outcome.
        actor: Who acted: a user id, an :class:`~otel_audit.Actor`, or a mapping with
            ``id``/``name``/``roles``. Defaults to the request context's actor.
        target: What was acted on: a string, or a mapping (``audit.target.<key>``).
        reason: Why the outcome happened (``"bad_password"``).
        message: Human-readable body; defaults to the type's description.
        severity: Overrides the type's default severity.
        **details: More attributes, keys used as given (``**{"http.route": "/x"}``
            works for dotted keys). Secrets in them are redacted like everywhere else.

    Returns:
        The event id, or ``None`` if the event could not be emitted (counted).

    Under :func:`otel_audit.configure` (``OTEL_PYTHON_AUDIT_DEFER_EVENTS``, on by default)
    the call captures the event, its timestamp and the current context (span, request
    context, ``audit_scope``) and returns; a background thread builds and processes the
    record a few milliseconds later. ``LoggerProvider.force_flush()`` runs what is
    pending. A failure there is counted in :func:`failures`.

    .. versionadded:: 0.1.0
    """
    try:
        call = _Call(name, outcome, reason, message, severity, new_event_id(), time_ns())
        emitter = _emitter
        if emitter is None:
            emitted = _emit(call, _attributes(actor, target, details))
            return call.event_id if emitted else None
        _note_category(name)
        if _immutable(actor, target, details):
            emitter.submit(_emit_later, call, actor, target, details)
        else:  # snapshot what the caller could still change
            emitter.submit(_emit, call, _attributes(actor, target, details))
    except Exception as exc:
        _errors[type(exc).__name__] += 1
        return None
    return call.event_id


def _attributes(actor: ActorLike | None, target: Any, details: dict[str, Any]) -> dict[str, Any]:
    """The event's own attributes, bounded into the SDK cleaner's shape (a copy)."""
    attributes: dict[str, Any] = scope_attributes(actor=actor, target=target, attributes=details)
    if not all(map(is_plain, attributes.values())):  # keys are strings: keywords
        attributes = bound_mapping(attributes)
    return attributes


def _immutable(actor: ActorLike | None, target: Any, details: dict[str, Any]) -> bool:
    """
    True if nothing the caller holds can change what the event records.

    Then even the attributes are built on the emitter thread. ``details`` is the call's
    own keyword dict; a mutable actor, target or detail value is copied on the
    caller's thread first.
    """
    return (
        (actor is None or type(actor) in _IMMUTABLE_ACTORS)
        and (target is None or type(target) is str)
        and all(map(is_plain, details.values()))
    )


_IMMUTABLE_ACTORS: Final = frozenset({str, Actor})


def _note_category(name: str) -> None:
    """
    Record in the request context that this request emitted an event of this category.

    The web middleware reads it when the response starts (a 401 after the app's own
    ``authentication.failure`` is the same fact); with deferral the processor, which
    notes it too, runs too late for that.
    """
    request = _REQUEST.get()
    if request is not None:
        event_type = CATALOGUE.get(name)
        category = event_type.category if event_type is not None else category_of(name)
        request.emitted.categories.add(category.value)


class _Call(NamedTuple):
    """What a ``security_event()`` call fixed on the caller's thread."""

    name: str
    outcome: Outcome | str | None
    reason: str | None
    message: str | None
    severity: SeverityNumber | None
    event_id: str
    timestamp: int


def _emit_later(call: _Call, actor: ActorLike | None, target: Any, details: dict[str, Any]) -> None:
    try:
        attributes = _attributes(actor, target, details)
    except Exception as exc:
        _errors[type(exc).__name__] += 1
        return
    _emit(call, attributes)


def _emit(call: _Call, attributes: dict[str, Any]) -> bool:
    """Build the record and hand it to the SDK logger: on the caller's or the emitter's thread."""
    try:
        name, outcome, reason, message, severity, event_id, timestamp = call
        event_type = CATALOGUE.get(name)
        if outcome is not None:
            text = outcome.value if isinstance(outcome, Outcome) else str(outcome).lower()
            attributes[semconv.EVENT_OUTCOME] = (
                text if text in Outcome._value2member_map_ else "unknown"
            )
        if reason is not None:
            attributes[semconv.AUDIT_REASON] = str(reason)
        attributes[semconv.EVENT_ID] = event_id
        attributes[semconv.AUDIT_EVENT_NAME] = name
        if severity is None and event_type is not None:
            severity = event_type.severity
        body = message if message is not None else (event_type.description if event_type else name)
        provider = _provider or get_logger_provider()
        logger = _logger(provider)
        record = LogRecord(
            timestamp=timestamp,
            observed_timestamp=timestamp,
            context=get_current(),
            severity_number=severity,
            severity_text=severity.name if severity is not None else None,
            body=body,
            attributes=attributes,
            event_name=name,
        )
        logger.emit(writable(logger, record, plain=True))
    except Exception as exc:
        _errors[type(exc).__name__] += 1
        return False
    return True
