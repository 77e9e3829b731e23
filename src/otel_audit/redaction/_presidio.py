"""
Tier 2: Presidio on the export thread, configured deliberately.

Presidio's defaults are wrong for logs: ``AnalyzerEngine()`` downloads a large spaCy
model at start-up and its date, URL, UUID and driver-licence recognizers flag most benign
log lines. Here the analyzer gets an explicit registry of checksum-backed or low-noise
pattern recognizers for entities tier 1 does not cover, a no-op NLP engine (no model,
works offline) unless NER was asked for, and NER only from a pipeline that is already
installed (a missing one fails start-up instead of downloading). Presidio's e-mail
recognizer is left out: tier 1 pseudonymises e-mails, and it would make ``tldextract``
fetch a suffix list on first use.

Every record is capped by size and time; a record over a cap, or one whose analysis
raises, has its strings replaced (fail closed) rather than exported unanalysed.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from otel_audit import environment_variables as ev
from otel_audit import semconv
from otel_audit.exceptions import ConfigurationError
from otel_audit.redaction._actions import is_redaction_output, placeholder
from otel_audit.redaction._engine import merge_summary
from otel_audit.redaction._keys import KeyClassifier

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import ReadableLogRecord

    from otel_audit._settings import AuditSettings

_MAX_CHARS: Final = 16 * 1024
_MAX_SECONDS: Final = 0.25
_THRESHOLD: Final = 0.5
_FAIL_TIME: Final = "tier2.limit.timeout"
_FAIL_SIZE: Final = "tier2.limit.size"
_FAIL_ERROR: Final = "tier2.error.exception"
_NER_ENTITIES: Final = ("PERSON", "LOCATION", "NRP")
# Every kept pattern recognizer needs four consecutive digits that are not part of a date
# or time, a 26+ character token (crypto addresses) or an Italian fiscal code prefix.
_TRIGGER: Final = re.compile(r"(?<![\d\-:.])\d{4,}(?![\d\-:])|\b[A-Za-z0-9]{26,}\b|[A-Za-z]{6}\d\d")

# Recognizers kept: checksum-validated or distinctive. Left out as noisy on log lines:
# date, URL, UUID, IP, phone, driver licences, passports, bank numbers, Aadhaar (matched
# the tail of UUIDs) and Australian TFN (nine digits, one in eleven passes the checksum).
_PATTERN_RECOGNIZERS: Final = (
    "CryptoRecognizer",
    "UsItinRecognizer",
    "NhsRecognizer",
    "UkNinoRecognizer",
    "MedicalLicenseRecognizer",
    "EsNifRecognizer",
    "ItFiscalCodeRecognizer",
    "PlPeselRecognizer",
    "SgFinRecognizer",
    "InPanRecognizer",
    "UsSsnRecognizer",
    "IbanRecognizer",
    "CreditCardRecognizer",
)


def build_analyzer(mode: str, spacy_model: str) -> tuple[Any, list[str]]:
    """
    An ``AnalyzerEngine`` with an explicit registry; no download, ever.

    Args:
        mode: ``presidio`` (patterns only) or ``presidio-ner`` (adds spaCy NER).
        spacy_model: installed spaCy pipeline name for NER.

    Returns:
        ``(analyzer, entities)``.

    Raises:
        ConfigurationError: presidio-analyzer is missing, or the NER pipeline is not
            installed (it would otherwise be downloaded).
    """
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry  # noqa: PLC0415
        from presidio_analyzer import predefined_recognizers as pr  # noqa: PLC0415
    except ImportError as exc:
        accepted = "off (install otel-audit[presidio])"
        raise ConfigurationError(ev.OTEL_PYTHON_AUDIT_REDACTION_TIER2, mode, accepted) from exc
    registry = RecognizerRegistry(supported_languages=["en"])
    for name in _PATTERN_RECOGNIZERS:
        recognizer_class = getattr(pr, name, None)
        if recognizer_class is not None:
            registry.add_recognizer(recognizer_class())
    if mode == "presidio-ner":
        nlp_engine = _spacy_engine(spacy_model)
        registry.add_recognizer(pr.SpacyRecognizer(supported_entities=list(_NER_ENTITIES)))
    else:
        from presidio_analyzer.nlp_engine import NoOpNlpEngine  # noqa: PLC0415

        nlp_engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        nlp_engine.load()
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    entities = sorted({e for r in registry.recognizers for e in r.supported_entities})
    return analyzer, entities


def _spacy_engine(model: str) -> Any:
    import spacy.util  # noqa: PLC0415 - optional, only for NER
    from presidio_analyzer.nlp_engine import SpacyNlpEngine  # noqa: PLC0415

    if not spacy.util.is_package(model):
        # SpacyNlpEngine.load() would call spacy.cli.download(): refuse instead.
        accepted = "the name of an installed spaCy pipeline"
        raise ConfigurationError(ev.OTEL_PYTHON_AUDIT_SPACY_MODEL, model, accepted)
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    engine.load()
    return engine


class PresidioRedactingExporter(LogRecordExporter):
    """
    Wraps an exporter: Presidio redacts each record's strings, then ``inner`` exports.

    Runs on the export thread (the batch processor's worker), once per batch; each
    record's analysis is capped at 16 KiB of text and 250 ms, and a record over a cap or
    whose analysis fails has its body and non-exempt string attributes replaced.

    Args:
        inner: the exporter that receives the redacted batch.
        settings: ``redaction_tier2`` (``presidio`` / ``presidio-ner``) and ``spacy_model``.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        inner: LogRecordExporter,
        settings: AuditSettings,
        *,
        _clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._inner = inner
        mode = settings.redaction_tier2 if settings.redaction_tier2 != "off" else "presidio"
        self._analyzer, self._entities = build_analyzer(mode, settings.spacy_model)
        self._ner = mode == "presidio-ner"
        self._keys = KeyClassifier(strict=False, mask_client_ip=settings.mask_client_ip)
        self._clock = _clock
        self._lock = threading.Lock()
        self.redactions: dict[str, int] = {}
        self.failures: dict[str, int] = {}

    @property
    def entities(self) -> list[str]:
        """Entities this exporter looks for."""
        return list(self._entities)

    def redact_text(self, text: str, deadline: float | None = None) -> tuple[str, dict[str, int]]:
        """
        Analyse one string and replace what Presidio found.

        Returns:
            ``(text, counts by rule id)``; rule ids are ``presidio.<ENTITY>``.
        """
        if deadline is not None and self._clock() > deadline:
            return placeholder(_FAIL_TIME), {_FAIL_TIME: 1}
        if len(text) > _MAX_CHARS:
            return placeholder(_FAIL_SIZE), {_FAIL_SIZE: 1}
        if not self._ner and _TRIGGER.search(text) is None:
            return text, {}
        results = self._analyzer.analyze(
            text=text, language="en", entities=self._entities, score_threshold=_THRESHOLD
        )
        if not results:
            return text, {}
        spans = sorted((r.start, r.end, r.entity_type) for r in results)
        counts: dict[str, int] = {}
        parts: list[str] = []
        position = 0
        for start, end, entity in spans:
            if end <= position:
                continue
            start = max(start, position)  # noqa: PLW2901 - clipping overlaps in place
            if is_redaction_output(text[start:end]):
                continue
            rule = f"presidio.{entity}"
            parts.append(text[position:start])
            parts.append(placeholder(rule))
            counts[rule] = counts.get(rule, 0) + 1
            position = end
        parts.append(text[position:])
        return "".join(parts), counts

    def _redact_record(self, readable: ReadableLogRecord) -> dict[str, int]:  # noqa: C901 - fail-closed branch mirrors the normal one
        record = readable.log_record
        deadline = self._clock() + _MAX_SECONDS
        counts: dict[str, int] = {}
        try:
            if isinstance(record.body, str):
                record.body, found = self.redact_text(record.body, deadline)
                _add(counts, found)
            attrs = record.attributes
            if attrs:
                for key, value in list(attrs.items()):
                    if isinstance(value, str) and not self._keys.exempt(key):
                        new, found = self.redact_text(value, deadline)
                        if found:
                            attrs[key] = new  # type: ignore[index]
                            _add(counts, found)
        except Exception:
            counts[_FAIL_ERROR] = counts.get(_FAIL_ERROR, 0) + 1
            record.body = placeholder(_FAIL_ERROR) if record.body is not None else None
            attrs = record.attributes
            if attrs:
                for key, value in list(attrs.items()):
                    if isinstance(value, str) and not self._keys.exempt(key):
                        attrs[key] = placeholder(_FAIL_ERROR)  # type: ignore[index]
        if counts and record.attributes is not None:
            summary = merge_summary(record.attributes.get(semconv.AUDIT_REDACTION), counts)
            record.attributes[semconv.AUDIT_REDACTION] = summary  # type: ignore[index]
        return counts

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Redact every record of the batch, then hand the batch to the inner exporter."""
        for readable in batch:
            counts = self._redact_record(readable)
            if counts:
                with self._lock:
                    for rule, n in counts.items():
                        target = (
                            self.failures
                            if ".limit." in rule or ".error." in rule
                            else (self.redactions)
                        )
                        target[rule] = target.get(rule, 0) + n
        return self._inner.export(batch)

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self._inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the inner exporter."""
        return self._inner.force_flush(timeout_millis)


def _add(total: dict[str, int], found: dict[str, int]) -> None:
    for rule, n in found.items():
        total[rule] = total.get(rule, 0) + n
