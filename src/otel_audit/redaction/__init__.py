"""
Redaction of secrets and personal data in log records.

Tier 1 (:class:`RedactionEngine`) runs inline in the processor on the application
thread; tier 2 (:class:`PresidioRedactingExporter`) wraps an exporter and runs Presidio
on the export thread. Presidio is an optional dependency, imported only when tier 2 is
constructed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_audit.redaction._actions import Action
from otel_audit.redaction._detectors import Detector
from otel_audit.redaction._engine import RedactionEngine, RedactionStats
from otel_audit.redaction._walk import Limits

if TYPE_CHECKING:
    from otel_audit.redaction._presidio import PresidioRedactingExporter

__all__ = [
    "Action",
    "Detector",
    "Limits",
    "PresidioRedactingExporter",
    "RedactionEngine",
    "RedactionStats",
]


def __getattr__(name: str) -> Any:
    # The exporter module is light, but keeping it lazy keeps `import otel_audit` from
    # paying for tier 2 in processes that never enable it.
    if name == "PresidioRedactingExporter":
        from otel_audit.redaction._presidio import PresidioRedactingExporter  # noqa: PLC0415

        return PresidioRedactingExporter
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
