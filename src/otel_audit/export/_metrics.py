"""
Delivery counters: a ``Protocol``, a no-op and an OpenTelemetry implementation.

Every record the durable path accepts ends in exactly one of *exported* or *dropped* (by
reason) or *dead-lettered*; *spilled*, *replayed* and *retried* describe the journey. The
counts are always kept in memory (for ``stats``, tests and the CLI) and, when a
``MeterProvider`` is given, also exported as OTel counters so a dashboard can alert on
``dropped`` without anyone reading a log line (STYLE point 6).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

COUNTER_NAMES: Final = (
    "exported",
    "spilled",
    "replayed",
    "retried",
    "dead_lettered",
    "rejected",
    "sanitized",
    "pre_export_failed",
    "integrity_failed",
)
"""Counters without a reason label; ``dropped`` carries a reason."""

DROP_REASONS: Final = (
    "queue_full",
    "spill_full",
    "spool_unavailable",
    "shutdown",
    "spool_corrupt",
    "encode_error",
    "pre_export_error",
    "dead_letter_unavailable",
    "internal_error",
)
"""Every reason the durable path can lose a record for; the CLI lists them all, zeros too."""

_METRIC_PREFIX: Final = "otel_audit.export."


class DeliveryMetrics(Protocol):
    """Where the durable path reports what happened to records."""

    def add(self, name: str, count: int, reason: str | None = None) -> None:
        """Add ``count`` to counter ``name`` (``dropped`` needs a ``reason``)."""


class NoOpDeliveryMetrics:
    """Used when no ``MeterProvider`` is configured."""

    def add(self, name: str, count: int, reason: str | None = None) -> None:
        """Do nothing."""


class OTelDeliveryMetrics:
    """One OTel ``Counter`` per name, ``dropped`` labelled with ``reason``."""

    def __init__(self, meter_provider: Any) -> None:
        meter = meter_provider.get_meter("otel_audit.export")
        self._counters = {
            name: meter.create_counter(
                _METRIC_PREFIX + name, unit="{record}", description=f"Security events {name}."
            )
            for name in (*COUNTER_NAMES, "dropped")
        }

    def add(self, name: str, count: int, reason: str | None = None) -> None:
        """Add to the OTel counter; unknown names are ignored rather than raised."""
        counter = self._counters.get(name)
        if counter is None or count <= 0:
            return
        counter.add(count, {"reason": reason} if reason else None)


@dataclass
class DeliveryStats:
    """
    In-memory counters, always kept, forwarding to an optional :class:`DeliveryMetrics`.

    Thread-safe: the application thread drops, the worker threads export.
    """

    sink: DeliveryMetrics = field(default_factory=NoOpDeliveryMetrics)
    _counts: dict[str, int] = field(default_factory=dict)
    _dropped: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, count: int, reason: str | None = None) -> None:
        """Count ``count`` records under ``name`` (and ``reason`` for ``dropped``)."""
        if count <= 0:
            return
        with self._lock:
            if name == "dropped":
                key = reason or "unknown"
                self._dropped[key] = self._dropped.get(key, 0) + count
            else:
                self._counts[name] = self._counts.get(name, 0) + count
        with contextlib.suppress(Exception):  # a broken meter must not break delivery
            self.sink.add(name, count, reason)

    def __getitem__(self, name: str) -> int:
        with self._lock:
            if name == "dropped":
                return sum(self._dropped.values())
            return self._counts.get(name, 0)

    @property
    def dropped(self) -> Mapping[str, int]:
        """Drops by reason (a copy)."""
        with self._lock:
            return dict(self._dropped)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: every counter, zeros included, and drops by reason."""
        with self._lock:
            out: dict[str, Any] = {name: self._counts.get(name, 0) for name in COUNTER_NAMES}
            out["dropped"] = {reason: self._dropped.get(reason, 0) for reason in DROP_REASONS}
            for reason, count in self._dropped.items():
                out["dropped"][reason] = count
            return out

    def reset_after_fork(self) -> None:
        """The child starts from zero: its parent's records are the parent's to report."""
        self._lock = threading.Lock()
        self._counts = {}
        self._dropped = {}
