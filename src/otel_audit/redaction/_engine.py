"""
The tier-1 redaction engine: one object per process, shared by every logging thread.

Built once from settings (detectors compiled, prefilter assembled, key rules indexed), it
then rewrites log records in place on the application thread. Its contract with the
processor is that ``redact_log_record`` never raises: whatever goes wrong inside it turns
into placeholders and counters, never into an unredacted value or an exception in the
caller's ``logger.info``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from otel_audit import semconv
from otel_audit._records import attribute_dict, direct_dict
from otel_audit.redaction._actions import Action, Renderer, placeholder
from otel_audit.redaction._catalogue import CATALOGUE, IP_DETECTOR
from otel_audit.redaction._detectors import STANDARD, STRICT, Detector, DetectorRegistry
from otel_audit.redaction._keys import EXEMPT, KeyClassifier
from otel_audit.redaction._walk import (
    CLEAN_MAX,
    FAIL_ERROR,
    REMOVE,
    SHORTEST_FINDING,
    SMALLEST_CARD_INT,
    Limits,
    Walk,
    WalkContext,
    is_inert,
    may_be_json,
    remember_clean,
)

if TYPE_CHECKING:
    from opentelemetry._logs import LogRecord

    from otel_audit._settings import AuditSettings

_SUMMARY_SEPARATOR: Final = ":"
_UNSEEN: Final = object()


class RedactionStats:
    """
    Process-wide counters: redactions by rule id, fail-closed replacements by reason.

    Updated once per record that had something to count, under a lock, so the hot path
    for clean records takes no lock at all.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._redactions: dict[str, int] = {}
        self._failures: dict[str, int] = {}

    def add(self, counts: Mapping[str, int], failures: Mapping[str, int]) -> None:
        """Fold one record's counts in."""
        with self._lock:
            for rule, n in counts.items():
                if rule not in failures:
                    self._redactions[rule] = self._redactions.get(rule, 0) + n
            for reason, n in failures.items():
                self._failures[reason] = self._failures.get(reason, 0) + n

    @property
    def redactions(self) -> dict[str, int]:
        """Values replaced, by rule id (a copy)."""
        with self._lock:
            return dict(self._redactions)

    @property
    def failures(self) -> dict[str, int]:
        """Fail-closed replacements, by reason (``limit.depth``, ``error.exception``…)."""
        with self._lock:
            return dict(self._failures)


def merge_summary(existing: object, counts: Mapping[str, int]) -> list[str]:
    """
    Combine an existing ``audit.redaction`` value with new counts.

    Tier 2 runs after tier 1 on the same record; both contribute to one summary.
    """
    total: dict[str, int] = {}
    if isinstance(existing, (list, tuple)):
        for entry in existing:
            if isinstance(entry, str) and _SUMMARY_SEPARATOR in entry:
                rule, _, count = entry.rpartition(_SUMMARY_SEPARATOR)
                if count.isdigit():
                    total[rule] = total.get(rule, 0) + int(count)
    for rule, n in counts.items():
        total[rule] = total.get(rule, 0) + n
    return [f"{rule}{_SUMMARY_SEPARATOR}{n}" for rule, n in sorted(total.items())]


class RedactionEngine:
    """
    Tier-1 inline redaction of log records.

    Args:
        level: ``standard``, ``strict`` or ``off`` (``off`` makes every call a no-op).
        mask_client_ip: pseudonymise ``client.address`` and IPv4 addresses in text.
        hmac_key: key for pseudonyms; without it they degrade to placeholders.
        hmac_key_id: written beside every pseudonym so keys can rotate.
        actions: per-rule-id action overrides (content and key rules alike).
        detectors: replace the built-in catalogue (tests, custom deployments).
        extra_detectors: added to the catalogue.
        limits: walk bounds.
        prefer_re2: use ``google-re2`` for the prefilter when installed.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        level: str = STANDARD,
        mask_client_ip: bool = False,
        hmac_key: bytes | None = None,
        hmac_key_id: str = "k1",
        actions: Mapping[str, Action] | None = None,
        detectors: Iterable[Detector] | None = None,
        extra_detectors: Iterable[Detector] = (),
        limits: Limits | None = None,
        prefer_re2: bool = True,
        _clock: Callable[[], float] = time.perf_counter,
        _hold_gil: bool = True,
    ) -> None:
        if level not in (STANDARD, STRICT, "off"):
            msg = f"redaction level must be off, standard or strict, not {level!r}"
            raise ValueError(msg)
        self._enabled = level != "off"
        self._level = level
        catalogue = list(CATALOGUE if detectors is None else detectors)
        catalogue.extend(extra_detectors)
        if mask_client_ip:
            catalogue.append(IP_DETECTOR)
        overrides = dict(actions or {})
        self._registry = DetectorRegistry(
            catalogue, level=level, actions=overrides, prefer_re2=prefer_re2, hold_gil=_hold_gil
        )
        self._keys = KeyClassifier(strict=level == STRICT, mask_client_ip=mask_client_ip)
        self._renderer = Renderer(hmac_key, hmac_key_id)
        # Short strings known to need nothing (see _remember_clean), shared with the walk.
        self._clean_strings: set[str] = set()
        self._ctx = WalkContext(
            registry=self._registry,
            keys=self._keys,
            renderer=self._renderer,
            limits=limits or Limits(),
            clock=_clock,
            key_actions=overrides,
            clean=self._clean_strings,
        )
        self._stats = RedactionStats()

    @classmethod
    def from_settings(cls, settings: AuditSettings, **options: Any) -> RedactionEngine:
        """
        Build the engine the settings describe.

        Args:
            settings: parsed ``OTEL_PYTHON_AUDIT_*`` settings.
            **options: further constructor arguments (``actions``, ``limits``…).

        Returns:
            A ready engine; ``settings.redaction == 'off'`` gives a no-op engine.
        """
        return cls(
            level=settings.redaction,
            mask_client_ip=settings.mask_client_ip,
            hmac_key=settings.hmac_key,
            hmac_key_id=settings.hmac_key_id,
            **options,
        )

    # --- introspection ------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """False when the level is ``off``."""
        return self._enabled

    @property
    def level(self) -> str:
        """``standard``, ``strict`` or ``off``."""
        return self._level

    @property
    def backend(self) -> str:
        """``re2`` or ``re``: the prefilter engine in use."""
        return self._registry.backend

    @property
    def prefilter_holds_gil(self) -> bool:
        """
        Whether the prefilter keeps the GIL while it scans.

        True with ``re`` (the interpreter holds it) and with the ``otel_audit_re2hold``
        accelerator; False with plain ``google-re2``, which lets other threads run on
        every scan (see native/re2hold/README.md).
        """
        return self._registry.prefilter_holds_gil

    @property
    def stats(self) -> RedactionStats:
        """Process-wide counters of this engine."""
        return self._stats

    # --- redaction ------------------------------------------------------------------------------

    def _finish(self, walk: Walk) -> None:
        if walk.counts:
            self._stats.add(walk.counts, walk.failures)

    def redact_value(self, value: object, key: str | None = None) -> object:
        """
        Redact one value as if it sat under ``key`` in a record.

        Args:
            value: any log value (string, bytes, number, mapping, sequence).
            key: the attribute key, if any; sensitive and exempt keys apply.

        Returns:
            The redacted value (the same object when nothing changed); ``None`` when the
            key's action is ``REMOVE``. Never raises: on an internal error the value is
            replaced by a placeholder.
        """
        if not self._enabled:
            return value
        walk = Walk(self._ctx)
        try:
            result = walk.value(value, 0) if key is None else walk.keyed(key, value, 0)
        except Exception:
            result = walk.fail(FAIL_ERROR)
        self._finish(walk)
        return None if result is REMOVE else result

    def redact_text(self, text: str) -> str:
        """Redact a free-text string (convenience for the CLI and tests)."""
        result = self.redact_value(text)
        return result if isinstance(result, str) else placeholder(FAIL_ERROR)

    def redact_parts(
        self, body: object, attributes: Mapping[str, object] | None
    ) -> tuple[object, dict[str, object], dict[str, int]]:
        """
        Redact a body and an attribute mapping as one record, without an SDK record.

        Returns:
            ``(body, attributes, counts)``; the attributes carry the ``audit.redaction``
            summary when anything was replaced.
        """
        attrs = dict(attributes or {})
        if not self._enabled:
            return body, attrs, {}
        walk = Walk(self._ctx)
        try:
            new_body = walk.value(body, 0) if body is not None else None
            out: dict[str, object] = {}
            for key, value in attrs.items():
                new = walk.keyed(str(key), value, 0)
                if new is not REMOVE:
                    out[str(key)] = new
        except Exception:
            walk.fail(FAIL_ERROR)
            new_body = placeholder(FAIL_ERROR) if body is not None else None
            out = {k: v for k, v in attrs.items() if self._keys.exempt(str(k))}
        if walk.counts:
            out[semconv.AUDIT_REDACTION] = merge_summary(
                out.get(semconv.AUDIT_REDACTION), walk.counts
            )
        self._finish(walk)
        return new_body, out, dict(walk.counts)

    def redact_log_record(self, log_record: LogRecord) -> None:
        """
        Rewrite ``log_record.body`` and ``log_record.attributes`` in place.

        Adds ``audit.redaction`` (``['<rule id>:<count>', …]``) when anything was
        replaced. Never raises: on an internal error the body and every non-exempt
        attribute are replaced by placeholders and ``error.exception`` is counted.

        Args:
            log_record: the API/SDK record; its attributes may be an SDK
                ``BoundedAttributes`` (mutable), a dict or ``None``.
        """
        if not self._enabled:
            return
        try:
            clean = self._clean_fast(log_record)
        except Exception:
            clean = False  # the full walk decides, and fails closed if it must
        if clean:
            return
        walk = Walk(self._ctx)
        try:
            self._redact_record(log_record, walk)
        except Exception:
            walk.fail(FAIL_ERROR)
            self._fail_record(log_record, walk)
        self._finish(walk)

    def _clean_fast(self, log_record: LogRecord) -> bool:  # noqa: C901, PLR0911, PLR0912 - one flat scan
        """
        Whether the record certainly needs nothing: flat, no sensitive key, no trigger.

        Most records are a short message plus a few flat attributes. Their strings are
        joined and given to the prefilter in one call instead of one call each, which
        halves the cost of a clean record. When only joinable rules wake (digit runs in
        ids waking the card rule), those run once over the joined strings; a finding, or
        anything unusual, takes the full walk.
        """
        strings: list[str] = []
        known = self._clean_strings
        body = log_record.body
        if isinstance(body, str):
            if len(body) > CLEAN_MAX or body not in known:
                strings.append(body)
        elif body is not None:
            return False
        attrs = log_record.attributes
        if attrs:
            verdicts, plan = self._keys.verdicts, self._keys.plan
            for key, value in attribute_dict(attrs).items():
                verdict = verdicts.get(key, _UNSEEN)  # one lookup: the cache may be cleared
                if verdict is _UNSEEN:
                    verdict = plan(key)
                if verdict is EXEMPT:
                    continue
                if verdict is not None:
                    return False
                if isinstance(value, str):
                    if len(value) > CLEAN_MAX or value not in known:
                        strings.append(value)
                elif not (  # is_inert(value), inlined: once per attribute of every record
                    value is None
                    or isinstance(value, (bool, float))
                    or (isinstance(value, int) and abs(value) < SMALLEST_CARD_INT)
                ):
                    return False
        if not strings:
            return True
        joined = "\n".join(strings)
        if ("{" in joined or "[" in joined) and any(map(may_be_json, strings)):
            return False  # JSON in a string is walked with the key rules
        if len(joined) > self._ctx.limits.max_string:
            return False
        findings = self._registry.find_if_joinable(joined)
        if findings is None or findings:
            return False  # the walk replaces what was found, per string
        self._remember_clean(strings)
        return True

    def _remember_clean(self, strings: list[str]) -> None:
        r"""
        Keep short strings found clean (no trigger, or only joinable rules that found nothing).

        Most values repeat from record to record (messages, routes, outcomes, user
        agents, user names), and every prefilter call costs a GIL release in google-re2:
        on a threaded server that is a wait behind the other threads each time. Sound
        because the verdict of a joined text covers each part: no trigger is anchored
        other than as ``(?:^|[^…])``, which the ``\n`` joiner satisfies (a test checks).
        Only strings without a JSON opening are here, so the walk's JSON rule is kept.
        The walk adds strings in which the detectors found nothing, and skips known ones.
        """
        remember_clean(self._clean_strings, strings)

    def _redact_record(self, log_record: LogRecord, walk: Walk) -> None:
        body = log_record.body
        if body is not None:
            new_body = walk.value(body, 0)
            if new_body is not body:
                log_record.body = new_body
        attrs = log_record.attributes
        if attrs:
            self._redact_attributes(attrs, walk)
        if walk.counts:
            self._write_summary(log_record, walk.counts)

    def _redact_attributes(self, attrs: Any, walk: Walk) -> None:
        direct = direct_dict(attrs)
        verdicts, plan, known = self._keys.verdicts, self._keys.plan, self._clean_strings
        for key, value in list(attribute_dict(attrs).items()):  # a snapshot: keys may go
            # The verdicts the walk would reach, decided here without a call per
            # attribute: a tagged event carries a dozen of otel-audit's own (exempt) keys
            # and repeated values beside the one that needs the walk.
            verdict = verdicts.get(key, _UNSEEN)  # one lookup: the cache may be cleared
            if verdict is _UNSEEN:
                verdict = plan(key)
            if verdict is EXEMPT:
                continue
            if verdict is None and (
                (isinstance(value, str) and (len(value) < SHORTEST_FINDING or value in known))
                or is_inert(value)
            ):
                continue
            new = walk.keyed(key, value, 0)
            if new is REMOVE:
                del attrs[key]
            elif new is not value:
                if direct is not None:
                    direct[key] = new
                else:
                    attrs[key] = new

    def _write_summary(self, log_record: LogRecord, counts: Mapping[str, int]) -> None:
        attrs = log_record.attributes
        if attrs is None:
            log_record.attributes = {semconv.AUDIT_REDACTION: merge_summary(None, counts)}
            return
        summary = merge_summary(attrs.get(semconv.AUDIT_REDACTION), counts)
        direct = direct_dict(attrs)
        if direct is not None:
            direct[semconv.AUDIT_REDACTION] = tuple(summary)  # what the SDK would store
        else:
            attrs[semconv.AUDIT_REDACTION] = summary  # type: ignore[index]

    def _fail_record(self, log_record: LogRecord, walk: Walk) -> None:
        """Last resort: nothing in the record that could hold a secret survives."""
        failed = placeholder(FAIL_ERROR)
        try:
            if log_record.body is not None:
                log_record.body = failed
            attrs = log_record.attributes
            if attrs:
                for key in list(attrs):
                    if not self._keys.exempt(key):
                        attrs[key] = failed  # type: ignore[index]
            self._write_summary(log_record, walk.counts)
        except Exception:
            log_record.body = failed
            log_record.attributes = {semconv.AUDIT_REDACTION: merge_summary(None, walk.counts)}
