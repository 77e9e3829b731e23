"""The stdlib ``logging`` bridge.

We reuse the handler from ``opentelemetry-instrumentation-logging`` (it promotes
``extra={"otel.event.name": …}`` to the record's ``event_name``) and add the two things a
security library needs from it: the logging call never raises, and odd ``extra=`` values
(cycles, bytes, deep nesting, huge strings) are bounded before the SDK's own attribute
cleaner, which has no cycle check, sees them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry.instrumentation.log_utils import std_to_otel
from opentelemetry.instrumentation.logging.handler import LoggingHandler

from otel_audit._bounded import bound_mapping, is_plain


def _event_name_of(record: logging.LogRecord) -> str | None:
    name = getattr(record, "otel.event.name", None) or getattr(record, "event.name", None)
    return None if name is None else str(name)


class AuditLoggingHandler(LoggingHandler):
    """Send stdlib records to an OpenTelemetry ``LoggerProvider``; never raise.

    ``configure()`` attaches one to the root logger. Errors are counted in
    ``errors`` instead of going through ``logging.Handler.handleError``, which would print
    the record (and any secret in it) to stderr.
    """

    def __init__(self, level: int = logging.NOTSET, logger_provider: Any = None) -> None:
        super().__init__(level=level, logger_provider=logger_provider)
        self._errors_lock = threading.Lock()
        self.errors = 0

    def _get_attributes(self, record: logging.LogRecord) -> tuple[dict[str, Any], str | None]:
        attributes, event_name = super()._get_attributes(record)
        for value in attributes.values():
            if not is_plain(value):
                attributes = bound_mapping(attributes)
                break
        if event_name is not None and not isinstance(event_name, str):
            event_name = str(event_name)
        return attributes, event_name

    def emit(self, record: logging.LogRecord) -> None:
        """Translate and emit; any failure is counted, never raised."""
        try:
            super().emit(record)
        except Exception as exc:
            with self._errors_lock:
                self.errors += 1
            self._emit_fallback(record, exc)

    def _emit_fallback(self, record: logging.LogRecord, exc: Exception) -> None:
        """Keep the fact that something was logged (a security event must not vanish)."""
        try:
            from opentelemetry._logs import get_logger  # noqa: PLC0415  # rare path

            get_logger(record.name, logger_provider=self._logger_provider).emit(
                body="[otel-audit: the log message could not be formatted]",
                severity_number=std_to_otel(record.levelno),
                severity_text=record.levelname,
                attributes={"otel_audit.handler_error": type(exc).__name__},
                event_name=_event_name_of(record),
            )
        except Exception:  # noqa: S110  # the counter above already records the loss
            pass

    @property
    def logger_provider(self) -> Any:
        """The provider records go to."""
        return self._logger_provider
