"""The export package's own logger: rate-limited, never propagated."""

from __future__ import annotations

import logging
import logging.config

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


def test_application_logging_config_cannot_silence_it(capsys):
    """dictConfig disables every registered logger it does not name; ours is not one."""
    manager = logging.getLogger().manager
    before = {
        name: (log.disabled, list(log.handlers), log.level, log.propagate)
        for name, log in manager.loggerDict.items()
        if isinstance(log, logging.Logger)
    }
    root = logging.getLogger()
    root_state = (list(root.handlers), root.level)
    try:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": True})
        assert not internal_logger.disabled
        internal_logger.error("spool unusable in test %s", "x")
        assert "otel-audit export ERROR: spool unusable in test x" in capsys.readouterr().err
    finally:  # give every other test its loggers back
        for name, (disabled, handlers, level, propagate) in before.items():
            log = logging.getLogger(name)
            log.disabled, log.handlers[:], log.level, log.propagate = (
                disabled,
                handlers,
                level,
                propagate,
            )
        root.handlers[:], root.level = root_state
