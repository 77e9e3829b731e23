"""
The export package's own logger: rate-limited and never fed back into the pipeline.

A dead collector makes every export fail; without a limit that is one warning per batch,
forever, on stderr. The filter lets one message per (template, level) through every
``interval`` seconds and counts what it held back. The logger does not propagate to the
root logger, where an OpenTelemetry ``LoggingHandler`` would turn our complaint about the
pipeline into a record inside that same pipeline.

Nor is it registered with the ``logging`` module's manager: an application's
``logging.config.dictConfig(...)`` (``disable_existing_loggers`` defaults to true) or
``fileConfig`` disables every registered logger it does not name, which silenced these
messages, the only local sign that security events are not leaving the process. Its level
is ours (WARNING) for the same reason; the counters and ``otel-audit spool stats`` are
the interface for tooling.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Final

_INTERVAL_S: Final = 30.0


class RateLimitFilter(logging.Filter):
    """Let each message template through at most once per interval."""

    def __init__(
        self, interval_s: float = _INTERVAL_S, *, _clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval = interval_s
        self._clock = _clock
        self._last: dict[tuple[str, int], float] = {}
        self._held: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass the first occurrence in each interval, annotated with how many were held."""
        key = (str(record.msg), record.levelno)
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} (+{held} similar suppressed)"
        return True


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time, not at import."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _build() -> logging.Logger:
    # Built directly, not through logging.getLogger: see the module docstring.
    log = logging.Logger("otel_audit.export", logging.WARNING)  # noqa: LOG001  # see above
    log.propagate = False
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("otel-audit export %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.addFilter(RateLimitFilter())
    return log


logger: Final = _build()


def log_failure(message: str) -> None:
    """
    Log the exception being handled by its type and place, never by its text.

    Exception messages on the export path can quote the value that failed (the SDK's
    encoder raises ``Invalid type … of value …``; a tier-2 analyser or an exporter may
    echo the text it was given), i.e. security-event content that redaction may not have
    seen. ``message`` is a constant per call site, so the rate limit keeps them apart.
    """
    exc = sys.exc_info()[1]
    where = ""
    if exc is not None and exc.__traceback__ is not None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"
    template = f"{message} (%s%s)"  # one template per call site, for the rate limit
    logger.error(template, type(exc).__name__ if exc is not None else "?", where)
