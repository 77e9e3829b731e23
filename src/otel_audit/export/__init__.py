"""
Durable, tamper-evident delivery of security events.

``DurableLogRecordProcessor`` takes the security events off the SDK pipeline onto their
own bounded, spooled, at-least-once path; ``CountingBatchLogRecordProcessor`` keeps the
SDK's batching for ordinary logs but counts every drop; ``IntegrityChain`` chains and
signs records so that ``otel-audit verify`` can prove what a SIEM stored is what the
process sent.
"""

from otel_audit._processor import is_security_event
from otel_audit.export._counting import CountingBatchLogRecordProcessor
from otel_audit.export._durable import DurableLogRecordProcessor, LastResort
from otel_audit.export._integrity import IntegrityChain
from otel_audit.export._metrics import (
    DeliveryMetrics,
    DeliveryStats,
    NoOpDeliveryMetrics,
    OTelDeliveryMetrics,
)
from otel_audit.export._otlp import (
    Disposition,
    EncodedLogExporter,
    ExportOutcome,
    OTLPGrpcLogExporter,
    OTLPHttpLogExporter,
    exporter_from_env,
)
from otel_audit.export._verify import Finding, VerifyReport, verify_files

__all__ = [
    "CountingBatchLogRecordProcessor",
    "DeliveryMetrics",
    "DeliveryStats",
    "Disposition",
    "DurableLogRecordProcessor",
    "EncodedLogExporter",
    "ExportOutcome",
    "Finding",
    "IntegrityChain",
    "LastResort",
    "NoOpDeliveryMetrics",
    "OTLPGrpcLogExporter",
    "OTLPHttpLogExporter",
    "OTelDeliveryMetrics",
    "VerifyReport",
    "exporter_from_env",
    "is_security_event",
    "verify_files",
]
