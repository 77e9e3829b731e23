"""Fixtures for the export tests: a real SDK pipeline in front of a durable processor."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.resources import Resource

from otel_audit import semconv
from otel_audit._ids import new_event_id
from otel_audit.export import DurableLogRecordProcessor
from otel_audit.export._internal_log import RateLimitFilter
from otel_audit.export._internal_log import logger as internal_logger

_counter = itertools.count()


class Pipeline:
    """A LoggerProvider with one durable processor; emits numbered security events."""

    def __init__(self, processor: DurableLogRecordProcessor) -> None:
        self.processor = processor
        self.provider = LoggerProvider(
            resource=Resource.create({"service.name": "export-tests"}), shutdown_on_exit=False
        )
        self.provider.add_log_record_processor(processor)
        self.logger = self.provider.get_logger("security.test")
        self.sent_ids: list[str] = []

    def emit(self, n: int = 1, **attrs: Any) -> list[str]:
        """Emit ``n`` security events; returns their event ids."""
        ids = []
        for _ in range(n):
            event_id = new_event_id()
            self.logger.emit(
                body=f"login failed #{next(_counter)}",
                severity_number=SeverityNumber.WARN,
                event_name="authentication.failure",
                attributes={
                    semconv.AUDIT_EVENT_NAME: "authentication.failure",
                    semconv.EVENT_ID: event_id,
                    "user.id": "u-1",
                    **attrs,
                },
            )
            ids.append(event_id)
        self.sent_ids.extend(ids)
        return ids

    def emit_ordinary(self, n: int = 1) -> None:
        """Emit ``n`` ordinary logs, which the durable path must ignore."""
        for i in range(n):
            self.logger.emit(body=f"ordinary {i}", severity_number=SeverityNumber.INFO)


@pytest.fixture(autouse=True)
def _no_rate_limit() -> Iterator[None]:
    """
    Every diagnostic reaches stderr during a test.

    The rate limit is per process and per message template, so a processor left running by
    an earlier test (in any package) that repeats the same complaint would otherwise use up
    this test's one message and leave its stderr empty. The filter is tested on its own.
    """
    originals = [f for f in internal_logger.filters if isinstance(f, RateLimitFilter)]
    for original in originals:
        internal_logger.removeFilter(original)
    unlimited = RateLimitFilter(interval_s=0)
    internal_logger.addFilter(unlimited)
    try:
        yield
    finally:
        internal_logger.removeFilter(unlimited)
        for original in originals:
            internal_logger.addFilter(original)


@pytest.fixture(name="make_pipeline")
def _make_pipeline(tmp_path: Path) -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def make(exporter: Any, **kw: Any) -> Pipeline:
        params: dict[str, Any] = {
            "spool_dir": tmp_path / "spool",
            "spool_max_bytes": 64 * 1024 * 1024,
            "queue_size": 2048,
            "overflow": "block",
            "block_timeout_ms": 1000,
            "last_resort": str(tmp_path / "last-resort.jsonl"),
            "shutdown_timeout_millis": 3000,
        }
        params.update(kw)
        pipeline = Pipeline(DurableLogRecordProcessor(exporter, **params))
        made.append(pipeline)
        return pipeline

    try:
        yield make
    finally:
        for pipeline in made:
            pipeline.provider.shutdown()
