"""The stdlib ``logging`` bridge.

It does what the handler from ``opentelemetry-instrumentation-logging`` does (the same
attributes, ``extra={"otel.event.name": …}`` promoted to the record's ``event_name``,
exception attributes, severity mapping) and adds the two things a security library needs:
the logging call never raises, and odd ``extra=`` values (cycles, bytes, deep nesting,
huge strings) are bounded before the SDK's own attribute cleaner, which has no cycle
check, sees them.

It is also cheaper per call than that handler, because every security event pays for the
bridge on the application's thread: the SDK ``Logger`` is looked up once per stdlib logger
name instead of through the provider's locked cache on every call, and the record's
extra attributes are found with one set difference instead of a filter over every field
of the ``logging.LogRecord``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from contextlib import suppress
from time import time_ns
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from opentelemetry._logs import LogRecord, NoOpLogger
from opentelemetry.context import get_current
from opentelemetry.instrumentation.log_utils import std_to_otel
from opentelemetry.instrumentation.logging.handler import _RESERVED_ATTRS, LoggingHandler

from otel_audit._bounded import bound_mapping, is_plain
from otel_audit._records import writable

if TYPE_CHECKING:
    from otel_audit._deferred import DeferredEmitter

_OTEL_EVENT_NAME: Final = "otel.event.name"
_DEPRECATED_EVENT_NAME: Final = "event.name"
_SEVERITY_TEXT: Final = {"WARNING": "WARN", "CRITICAL": "FATAL"}
# Loggers are cached per stdlib logger name; names come from code, but stay bounded anyway.
_MAX_CACHED_LOGGERS: Final = 4096


class _Origin(NamedTuple):
    """
    What the fallback record needs of a stdlib record.

    Not the record itself: its args and traceback would stay alive while a deferred
    record waits.
    """

    logger: str
    levelno: int
    levelname: str
    event_name: str | None


def _event_name_of(record: logging.LogRecord) -> str | None:
    name = getattr(record, _OTEL_EVENT_NAME, None) or getattr(record, _DEPRECATED_EVENT_NAME, None)
    return None if name is None else str(name)


class AuditLoggingHandler(LoggingHandler):
    """Send stdlib records to an OpenTelemetry ``LoggerProvider``; never raise.

    ``configure()`` attaches one to the root logger. Errors are counted in
    ``errors`` instead of going through ``logging.Handler.handleError``, which would print
    the record (and any secret in it) to stderr.
    """

    def __init__(
        self,
        level: int = logging.NOTSET,
        logger_provider: Any = None,
        *,
        emitter: DeferredEmitter | None = None,
        note: Callable[[LogRecord, str | None], None] | None = None,
    ) -> None:
        super().__init__(level=level, logger_provider=logger_provider)
        self._errors_lock = threading.Lock()
        self._loggers: dict[str, Any] = {}
        self._emitter = emitter
        self._note = note  # AuditProcessor.note_request_event, for deferred records
        self.errors = 0

    def _attributes(self, record: logging.LogRecord) -> tuple[dict[str, Any], str | None]:
        """
        Attributes and event name, in a shape the SDK's cleaner keeps as it is.

        Plain values are left alone; if any key or value is not plain, the mapping is
        bounded, which leaves values in the cleaner's shape
        (:data:`otel_audit._bounded.INGRESS`). ``writable`` still checks the limits and
        the empty key before skipping the SDK's pass.
        """
        fields = vars(record)
        extra = fields.keys() - _RESERVED_ATTRS
        event_name: Any = None
        if extra:
            attributes = {key: fields[key] for key in _in_record_order(fields, extra)}
            event_name = attributes.pop(_OTEL_EVENT_NAME, None)
            deprecated = attributes.pop(_DEPRECATED_EVENT_NAME, None)
            if event_name is None:
                event_name = deprecated
        else:
            attributes = {}
        if self._log_code_attributes:
            attributes["code.file.path"] = record.pathname
            attributes["code.function.name"] = record.funcName
            attributes["code.line.number"] = record.lineno
        if record.exc_info:
            _add_exception(attributes, record.exc_info)
        for key, value in attributes.items():
            if type(key) is not str or not is_plain(value):
                # Cycles, bytes, deep nesting, huge strings (an exception's message or
                # stack trace too) and non-string keys, before the SDK's cleaner.
                attributes = bound_mapping(attributes)
                break
        if event_name is not None and not isinstance(event_name, str):
            event_name = str(event_name)
        return attributes, event_name

    def _to_otel(self, record: logging.LogRecord) -> LogRecord:
        """The API record for ``record``."""
        body = self.format(record) if self.formatter else record.getMessage()
        attributes, event_name = self._attributes(record)
        level_name = record.levelname
        return LogRecord(
            timestamp=int(record.created * 1e9),
            observed_timestamp=time_ns(),
            context=get_current() or None,
            severity_text=_SEVERITY_TEXT.get(level_name, level_name),
            severity_number=std_to_otel(record.levelno),
            body=body,
            attributes=attributes,
            event_name=event_name,
        )

    def emit(self, record: logging.LogRecord) -> None:
        """
        Translate and emit; any failure is counted, never raised.

        With an emitter (``OTEL_PYTHON_AUDIT_DEFER_EVENTS``), the record is translated
        here, which fixes its message, attributes (plain values, or bounded copies) and
        timestamps, and the processors run on the emitter's thread, in the same queue as
        ``security_event()`` calls: the two kinds of events leave in the order they were
        made, and the logging call does not pay for tagging, redaction and encoding.
        """
        emitting = self._is_emitting
        if emitting.get():
            return  # a record logged while translating one (e.g. by the SDK's cleaner)
        token = emitting.set(True)
        try:
            logger = self._loggers.get(record.name)
            if logger is None:
                logger = self._logger_for(record.name)
            if logger is not None:
                translated = self._to_otel(record)
                emitter = self._emitter
                if emitter is None:
                    logger.emit(writable(logger, translated, plain=True))
                else:
                    if self._note is not None:
                        self._note(translated, record.name)
                    # the event name as translated already, not read off the record again
                    origin = _Origin(
                        record.name, record.levelno, record.levelname, translated.event_name
                    )
                    emitter.submit(self._emit_later, logger, translated, origin)
        except Exception as exc:
            with self._errors_lock:
                self.errors += 1
            origin = _Origin(record.name, record.levelno, record.levelname, _event_name_of(record))
            self._emit_fallback(origin, exc)
        finally:
            emitting.reset(token)

    def _emit_later(self, logger: Any, translated: LogRecord, origin: _Origin) -> None:
        """The processors' part of :meth:`emit`, on the emitter's thread; never raises."""
        emitting = self._is_emitting
        token = emitting.set(True)  # records the processors log are not bridged back
        try:
            logger.emit(writable(logger, translated, plain=True))
        except Exception as exc:
            with self._errors_lock:
                self.errors += 1
            self._emit_fallback(origin, exc)
        finally:
            emitting.reset(token)

    def _logger_for(self, name: str) -> Any:
        """The SDK logger for a stdlib logger name, or None when the provider is disabled."""
        logger = self._logger_provider.get_logger(name)
        if isinstance(logger, NoOpLogger):
            return None
        if len(self._loggers) < _MAX_CACHED_LOGGERS and _cacheable(logger):
            self._loggers[name] = logger
        return logger

    def _emit_fallback(self, origin: _Origin, exc: Exception) -> None:
        """Keep the fact that something was logged (a security event must not vanish)."""
        with suppress(Exception):  # the error counter already records the loss
            self._logger_provider.get_logger(origin.logger).emit(
                body="[otel-audit: the log message could not be formatted]",
                severity_number=std_to_otel(origin.levelno),
                severity_text=origin.levelname,
                attributes={"otel_audit.handler_error": type(exc).__name__},
                event_name=origin.event_name,
            )

    @property
    def logger_provider(self) -> Any:
        """The provider records go to."""
        return self._logger_provider


def _in_record_order(fields: dict[str, Any], extra: set[str]) -> list[str]:
    """The extra keys in the order the record holds them (``extra=`` comes last)."""
    if len(extra) == 1:
        return list(extra)
    found: list[str] = []
    remaining = len(extra)
    for key in reversed(fields):
        if key in extra:
            found.append(key)
            remaining -= 1
            if not remaining:
                break
    found.reverse()
    return found


def _cacheable(logger: Any) -> bool:
    """Only the SDK's loggers are known to stay valid (their provider updates them in place)."""
    from opentelemetry.sdk._logs import Logger  # noqa: PLC0415  # keep the API-only import light

    return isinstance(logger, Logger)


def _add_exception(attributes: dict[str, Any], exc_info: Any) -> None:
    exctype, value, tb = exc_info
    if exctype is not None:
        attributes["exception.type"] = exctype.__name__
    if value is not None and value.args:
        attributes["exception.message"] = str(value.args[0])
    if tb is not None:
        attributes["exception.stacktrace"] = "".join(traceback.format_exception(*exc_info))
