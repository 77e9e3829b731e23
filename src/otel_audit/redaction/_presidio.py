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

Presidio's fixed cost per ``analyze`` call (registry lookups, ten recognizers, result
bookkeeping) is larger than the matching itself on log-sized strings, so the strings of a
whole batch are joined, up to 16 KiB at a time, and analysed in one call; findings are
mapped back to their strings. Every string is capped by size and the batch by time (250
ms per record in it); a string over a cap, or in a call that raises, is replaced (fail
closed) rather than exported unanalysed.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from otel_audit import environment_variables as ev
from otel_audit import semconv
from otel_audit.exceptions import ConfigurationError
from otel_audit.redaction._actions import is_redaction_output, placeholder
from otel_audit.redaction._engine import merge_summary
from otel_audit.redaction._keys import KeyClassifier

if TYPE_CHECKING:
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import ReadableLogRecord

    from otel_audit._settings import AuditSettings

_MAX_CHARS: Final = 16 * 1024
_MAX_SECONDS: Final = 0.25
_THRESHOLD: Final = 0.5
_FAIL_TIME: Final = "tier2.limit.timeout"
_FAIL_SIZE: Final = "tier2.limit.size"
_FAIL_ERROR: Final = "tier2.error.exception"
_NER_ENTITIES: Final = ("PERSON", "LOCATION", "NRP")
# A name or a place is words. Small NER models tag log tokens (`=db`, `900ms`, a URL, a
# short hex id) as people and places; a finding with a digit or markup in it is dropped.
_NER_NOT_A_NAME: Final = re.compile(r"[\d=/:_@#<>{}()\[\]|\\]|^[^A-Za-z\u00C0-\uFFFF]*$")
# Joins the strings of one analyze call: no kept recognizer matches across a blank line,
# and a finding that did would be clipped to each string it touches.
_SEPARATOR: Final = "\n\n"
# Every kept pattern recognizer needs four consecutive digits that are not part of a date
# or time, a 26+ character token (crypto addresses) or an Italian fiscal code prefix.
_TRIGGER: Final = re.compile(r"(?<![\d\-:.])\d{4,}(?![\d\-:])|\b[A-Za-z0-9]{26,}\b|[A-Za-z]{6}\d\d")

# Hex digests (16+ hex digits, at least one a-f) and UUIDs: investigators' join keys, and
# no entity tier 2 looks for has that shape, but patterns without word boundaries (the
# DEA number of MedicalLicenseRecognizer) match inside them. Findings within are dropped.
_IDENTIFIER: Final = re.compile(
    r"(?<![0-9A-Za-z])(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}|(?=[0-9]*[a-fA-F])[0-9a-fA-F]{16,})(?![0-9A-Za-z])"
)

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
            # The Spanish, Italian and Polish recognizers default to their own language
            # and would be skipped (with a warning per call) on English log lines.
            registry.add_recognizer(recognizer_class(supported_language="en"))
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
    # Only the entity recognizer (and what feeds it) is needed: the dependency parser is
    # the slowest stage of the small English pipelines and tier 2 never reads a parse.
    # The lemmatizer stays: Presidio's context words are matched on lemmas.
    pipelines: dict[str, Any] = engine.nlp or {}
    for nlp in pipelines.values():
        for name in ("parser", "senter"):
            if name in nlp.pipe_names:
                nlp.disable_pipe(name)
    return engine


class PresidioRedactingExporter(LogRecordExporter):
    """
    Wraps an exporter: Presidio redacts each record's strings, then ``inner`` exports.

    Runs on the export thread (the batch processor's worker), once per batch: the strings
    of every record's body and non-exempt attributes, nested ones included, are analysed
    together, in as few ``analyze`` calls as the 16 KiB cap allows. A string over 16 KiB,
    in a call that fails, or not reached within 250 ms per record of the batch is
    replaced; so is a whole value too deep (32), large (1000 strings) or cyclic to walk.

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
        return self.redact_texts([text], deadline)[0]

    def redact_texts(
        self, texts: Sequence[str], deadline: float | None = None
    ) -> list[tuple[str, dict[str, int]]]:
        """
        Analyse many strings in as few ``analyze`` calls as the size cap allows.

        Args:
            texts: the strings, in any order.
            deadline: ``clock()`` value after which no further call starts; strings not yet
                analysed by then are replaced.

        Returns:
            ``(text, counts)`` for each input, in order.
        """
        results: list[tuple[str, dict[str, int]]] = [(text, {}) for text in texts]
        pending: list[int] = []
        for index, text in enumerate(texts):
            if len(text) > _MAX_CHARS:
                results[index] = placeholder(_FAIL_SIZE), {_FAIL_SIZE: 1}
            elif self._ner or _TRIGGER.search(text) is not None:
                pending.append(index)
        for chunk in _chunks(pending, texts):
            if deadline is not None and self._clock() > deadline:
                failed = (placeholder(_FAIL_TIME), {_FAIL_TIME: 1})
            else:
                try:
                    for index, found in zip(chunk, self._analyze(chunk, texts), strict=True):
                        results[index] = _replace(texts[index], found)
                    continue
                except Exception:
                    failed = (placeholder(_FAIL_ERROR), {_FAIL_ERROR: 1})
            for index in chunk:
                results[index] = failed[0], dict(failed[1])
        return results

    def _analyze(self, chunk: list[int], texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """One ``analyze`` call over the joined strings; findings per string, local offsets."""
        starts: list[int] = []
        position = 0
        for index in chunk:
            starts.append(position)
            position += len(texts[index]) + len(_SEPARATOR)
        joined = _SEPARATOR.join(texts[index] for index in chunk)
        found: list[list[tuple[int, int, str]]] = [[] for _ in chunk]
        for result in self._analyzer.analyze(
            text=joined, language="en", entities=self._entities, score_threshold=_THRESHOLD
        ):
            if result.entity_type in _NER_ENTITIES and _NER_NOT_A_NAME.search(
                joined[result.start : result.end]
            ):
                continue
            slot = max(0, bisect.bisect_right(starts, result.start) - 1)
            while slot < len(chunk) and starts[slot] < result.end:
                base, length = starts[slot], len(texts[chunk[slot]])
                start, end = max(result.start - base, 0), min(result.end - base, length)
                if end > start:
                    found[slot].append((start, end, result.entity_type))
                slot += 1
        return found

    def _places(self, record: LogRecord) -> Iterator[tuple[str | None, Any]]:
        """Values tier 2 looks at, each with its place: ``None`` (body) or a key."""
        if record.body is not None:
            yield None, record.body
        for key, value in (record.attributes or {}).items():
            if not self._keys.exempt(key):
                yield key, value

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Redact every record of the batch, then hand the batch to the inner exporter."""
        records = [readable.log_record for readable in batch]
        leaves: list[tuple[LogRecord, str | None, _Path, str]] = []
        oversized: list[tuple[LogRecord, str | None]] = []
        for record in records:
            for where, value in self._places(record):
                found = _leaves(value)
                if found is None:
                    oversized.append((record, where))
                else:
                    leaves.extend((record, where, path, text) for path, text in found)
        deadline = self._clock() + _MAX_SECONDS * max(1, len(records))
        try:
            redacted = self.redact_texts([text for *_, text in leaves], deadline)
        except Exception:  # fail closed: nothing unanalysed leaves
            redacted = [(placeholder(_FAIL_ERROR), {_FAIL_ERROR: 1}) for _ in leaves]
        changes = [
            (record, where, path, new, counts)
            for (record, where, path, _), (new, counts) in zip(leaves, redacted, strict=True)
            if counts
        ]
        changes.extend(
            (record, where, (), placeholder(_FAIL_SIZE), {_FAIL_SIZE: 1})
            for record, where in oversized
        )
        found_in: dict[int, dict[str, int]] = {}
        for record, where, path, new, counts in changes:
            if where is None:
                record.body = _put(record.body, path, new)
            else:
                attrs = record.attributes
                attrs[where] = _put(attrs[where], path, new)  # type: ignore[index]
            _add(found_in.setdefault(id(record), {}), counts)
        for record in records:
            counts = found_in.get(id(record), {})
            if counts:
                self._count(counts)
                if record.attributes is not None:
                    summary = merge_summary(record.attributes.get(semconv.AUDIT_REDACTION), counts)
                    record.attributes[semconv.AUDIT_REDACTION] = summary  # type: ignore[index]
        return self._inner.export(batch)

    def _count(self, counts: dict[str, int]) -> None:
        with self._lock:
            for rule, n in counts.items():
                failed = ".limit." in rule or ".error." in rule
                target = self.failures if failed else self.redactions
                target[rule] = target.get(rule, 0) + n

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self._inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the inner exporter."""
        return self._inner.force_flush(timeout_millis)


def _add(total: dict[str, int], found: dict[str, int]) -> None:
    for rule, n in found.items():
        total[rule] = total.get(rule, 0) + n


_Path = tuple[Any, ...]
_MAX_LEAVES: Final = 1000
_MAX_DEPTH: Final = 32


def _leaves(value: Any) -> list[tuple[_Path, str]] | None:
    """
    The strings inside ``value`` (itself, or nested in mappings and sequences) with paths.

    Returns:
        ``None`` when the value is too deep, too large or cyclic to walk: it is then
        replaced whole rather than exported partly unanalysed.
    """
    found: list[tuple[_Path, str]] = []
    active: set[int] = set()

    def walk(item: Any, path: _Path) -> bool:
        if isinstance(item, str):
            found.append((path, item))
            return len(found) <= _MAX_LEAVES
        if isinstance(item, Mapping):
            children: Iterable[tuple[Any, Any]] = item.items()
        elif isinstance(item, (list, tuple)):
            children = enumerate(item)
        else:
            return True  # numbers, booleans, bytes: nothing for Presidio
        if len(path) >= _MAX_DEPTH or id(item) in active:
            return False
        active.add(id(item))
        ok = all(walk(child, (*path, step)) for step, child in children)
        active.discard(id(item))
        return ok

    return found if walk(value, ()) else None


def _put(value: Any, path: _Path, new: str) -> Any:
    """A copy of ``value`` with the string at ``path`` replaced (copy on write)."""
    if not path:
        return new
    step, rest = path[0], path[1:]
    if isinstance(value, Mapping):
        return {**value, step: _put(value[step], rest, new)}
    items = list(value)
    items[step] = _put(items[step], rest, new)
    return tuple(items) if isinstance(value, tuple) else items


def _chunks(pending: list[int], texts: Sequence[str]) -> Iterator[list[int]]:
    """Indices of ``pending`` grouped so that each group's joined text fits the size cap."""
    chunk: list[int] = []
    size = 0
    for index in pending:
        length = len(texts[index]) + len(_SEPARATOR)
        if chunk and size + length > _MAX_CHARS:
            yield chunk
            chunk, size = [], 0
        chunk.append(index)
        size += length
    if chunk:
        yield chunk


def _replace(text: str, found: list[tuple[int, int, str]]) -> tuple[str, dict[str, int]]:
    """``text`` with each finding replaced by its placeholder; overlaps merged left to right."""
    if not found:
        return text, {}
    ids = [m.span() for m in _IDENTIFIER.finditer(text)]
    if ids:
        found = [f for f in found if not any(a <= f[0] and f[1] <= b for a, b in ids)]
    counts: dict[str, int] = {}
    parts: list[str] = []
    position = 0
    for start, end, entity in sorted(found):
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
