"""The export package's own logger: rate-limited, never propagated."""

from __future__ import annotations

import logging

from otel_audit.export._internal_log import RateLimitFilter
from otel_audit.export._internal_log import logger as internal_logger


def _record(msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("otel_audit.export", level, __file__, 1, msg, (), None)


class TestRateLimitFilter:
    def test_one_message_per_template_and_interval(self):
        """Repeats of a template are held back; the next one through says how many."""
        now = [100.0]
        limit = RateLimitFilter(30, _clock=lambda: now[0])
        assert limit.filter(_record("spool %s failed"))
        assert not limit.filter(_record("spool %s failed"))
        assert not limit.filter(_record("spool %s failed"))
        assert limit.filter(_record("another %s"))
        assert limit.filter(_record("spool %s failed", logging.WARNING))
        now[0] += 30
        passed = _record("spool %s failed")
        assert limit.filter(passed)
        assert passed.msg == "spool %s failed (+2 similar suppressed)"

    def test_logger_does_not_propagate(self):
        """Our complaints never reach the root logger, where an OTel handler may sit."""
        assert internal_logger.propagate is False
        assert internal_logger.handlers
