"""
The SDK's batching for ordinary logs, with every loss counted.

Ordinary (non-security) logs may keep the SDK's behaviour, dropping under pressure, but
not silently: the SDK's ``BatchLogRecordProcessor`` discards the oldest record when its
queue is full and ignores a failed export's result. This wrapper counts

* ``dropped{reason="queue_full"}``: detected on ``on_emit`` when the SDK queue is at
  capacity (read from the SDK's queue; if a future SDK hides it, the count falls back to
  ``accepted - exported - failed`` after each successful ``force_flush``);
* ``dropped{reason="export_failed"}``: records in batches whose export returned
  ``FAILURE`` or raised (the exporter is wrapped);
* ``dropped{reason="shutdown"}``: records emitted after shutdown;
* ``exported``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)

from otel_audit._processor import is_security_event
from otel_audit.export._metrics import DeliveryStats, NoOpDeliveryMetrics, OTelDeliveryMetrics


class _CountingExporter(LogRecordExporter):
    def __init__(self, inner: LogRecordExporter, stats: DeliveryStats) -> None:
        self._inner = inner
        self._stats = stats
        self.seen = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.seen += len(batch)
        try:
            result = self._inner.export(batch)
        except Exception:
            self._stats.add("dropped", len(batch), "export_failed")
            raise
        if result is LogRecordExportResult.SUCCESS:
            self._stats.add("exported", len(batch))
        else:
            self._stats.add("dropped", len(batch), "export_failed")
        return result

    def shutdown(self) -> None:
        inner: Any = self._inner
        inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        flush: Any = getattr(self._inner, "force_flush", None)
        return bool(flush(timeout_millis)) if flush is not None else True


class CountingBatchLogRecordProcessor(LogRecordProcessor):
    """
    ``BatchLogRecordProcessor`` for ordinary logs whose every drop shows in :attr:`stats`.

    Args:
        exporter: any SDK exporter.
        select: which records this processor takes (default: those that are *not*
            security events, so the two paths never deliver a record twice).
        meter_provider: also export the counters as OTel metrics.
        **batch_options: passed to ``BatchLogRecordProcessor``.
    """

    def __init__(
        self,
        exporter: LogRecordExporter,
        *,
        select: Callable[[ReadWriteLogRecord], bool] | None = None,
        meter_provider: Any = None,
        **batch_options: Any,
    ) -> None:
        sink = (
            OTelDeliveryMetrics(meter_provider)
            if meter_provider is not None
            else NoOpDeliveryMetrics()
        )
        self.stats = DeliveryStats(sink=sink)
        self._exporter = _CountingExporter(exporter, self.stats)
        self._inner = BatchLogRecordProcessor(self._exporter, **batch_options)
        self._select = select if select is not None else (lambda r: not is_security_event(r))
        self._accepted = 0
        self._reconciled = 0
        self._shutdown = False

    def _sdk_queue(self) -> Any:
        inner = getattr(self._inner, "_batch_processor", None)
        return getattr(inner, "_queue", None)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Delegate, counting a drop when the SDK queue is already full."""
        try:
            if not self._select(log_record):
                return
            if self._shutdown:
                self.stats.add("dropped", 1, "shutdown")
                return
            queue = self._sdk_queue()
            if queue is not None and queue.maxlen is not None and len(queue) >= queue.maxlen:
                self.stats.add("dropped", 1, "queue_full")
                self._reconciled += 1
            self._accepted += 1
            self._inner.on_emit(log_record)
        except Exception:
            self.stats.add("dropped", 1, "internal_error")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the SDK processor; reconcile counts if the queue could not be observed."""
        done = self._inner.force_flush(timeout_millis)
        if done and self._sdk_queue() is None:
            missing = self._accepted - self._exporter.seen - self._reconciled
            if missing > 0:
                self.stats.add("dropped", missing, "queue_full")
                self._reconciled += missing
        return done

    def shutdown(self) -> None:
        """Shut the SDK processor down; later records count as ``dropped{shutdown}``."""
        self._shutdown = True
        inner: Any = self._inner
        inner.shutdown()
