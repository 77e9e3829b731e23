"""
Detectors: a declared pattern plus a validator, behind one shared keyword prefilter.

A detector in the style of Presidio's ``PatternRecognizer``: it names a rule id, a regular
expression, the group that holds the secret, the keywords whose presence makes a match
possible, and an optional ``validate(match)`` that rejects look-alikes (Luhn for cards,
mod 97 for IBANs, base64 structure for JWTs). A detector may instead bring its own
``finder`` when one regular expression cannot express it (SQL ``VALUES`` lists, entropy
near a keyword).

Running 40 regular expressions over every log line costs far more than the SDK itself,
so the registry compiles every keyword into one multi-pattern prefilter: ``re2.Set`` when
``google-re2`` is installed (one DFA pass over the lower-cased text, about 1 µs for a
typical line), otherwise one trie-shaped ``re`` alternation. Only detectors whose keyword
occurred run at all; clean text costs one prefilter pass.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Final

from otel_audit.redaction._actions import Action

if TYPE_CHECKING:
    import otel_audit_re2hold

Finder = Callable[[str], Iterable[tuple[int, int]]]
Validator = Callable[["re.Match[str]"], bool]

STANDARD: Final = "standard"
STRICT: Final = "strict"


@dataclass(frozen=True, slots=True)
class Detector:
    """
    One content rule.

    Attributes:
        rule_id: written into placeholders and the per-record summary.
        keywords: lower-case literals; the detector runs only if one occurs in the text.
            A keyword starting with ``re:`` is a regular expression instead (kept for
            shapes such as digit runs, which have no literal).
        pattern: regular expression (ignored when ``finder`` is given).
        groups: names or numbers of the groups holding the secret; the first that took
            part in the match is replaced. Empty means the whole match.
        validate: rejects look-alikes; ``True`` keeps the match.
        finder: yields ``(start, end)`` spans itself, for rules a regex cannot express.
        action: what to do with a match.
        level: ``standard`` (always) or ``strict`` (only at the strict level).
        priority: on overlapping matches, the higher one names the merged span.
        flags: ``re`` flags for ``pattern``.
        re2_triggers: sharper triggers (regular expressions over the lower-cased text)
            used instead of ``keywords`` when the prefilter runs on ``re2``, where a
            shaped trigger costs no more than a literal (``password`` followed by ``=``
            rather than ``password`` anywhere).
        joinable: no match can contain a newline, and a newline next to a candidate
            counts as the start or end of the text. Then the detector finds in strings
            joined by newlines exactly what it finds in each string, and the
            clean-record fast path may run it once over the joined strings instead of
            handing the record to the full walk (a test checks every joinable rule).
    """

    rule_id: str
    keywords: tuple[str, ...]
    pattern: str = ""
    groups: tuple[int | str, ...] = ()
    validate: Validator | None = None
    finder: Finder | None = None
    action: Action = Action.PLACEHOLDER
    level: str = STANDARD
    priority: int = 50
    flags: int = 0
    re2_triggers: tuple[str, ...] = ()
    joinable: bool = False


@dataclass(frozen=True, slots=True)
class Span:
    """A region of text that a rule wants replaced."""

    start: int
    end: int
    rule_id: str
    action: Action
    priority: int


@dataclass(slots=True)
class CompiledDetector:
    """A detector with its pattern compiled once, at start-up."""

    detector: Detector
    regex: re.Pattern[str] | None = field(default=None)
    gate: re.Pattern[str] | None = field(default=None)
    """On the ``re`` backend, the sharp triggers checked after a keyword fired."""

    def spans(self, text: str, action: Action) -> Iterable[Span]:
        """Every validated match of this detector in ``text``."""
        det = self.detector
        if det.finder is not None:
            for start, end in det.finder(text):
                yield Span(start, end, det.rule_id, action, det.priority)
            return
        if self.regex is None:  # pragma: no cover - enforced by the registry
            return
        for match in self.regex.finditer(text):
            if det.validate is not None and not det.validate(match):
                continue
            start, end = match.span()
            for group in det.groups:
                if match.start(group) >= 0:
                    start, end = match.span(group)
                    break
            if end > start:
                yield Span(start, end, det.rule_id, action, det.priority)


class _Re2Prefilter:
    """
    All triggers in one RE2 set: one linear pass reports every trigger present.

    With the optional ``otel_audit_re2hold`` accelerator (native/re2hold) the set is
    matched without releasing the GIL. ``google-re2``'s ``Set.Match`` releases it on every
    call: once per log record, on the application's thread, for a scan of about a
    microsecond. Any thread waiting for the GIL then runs first, and the logging thread
    waits for it, up to the interpreter's switch interval (bench_redaction.py measures
    both).

    Args:
        triggers: RE2 patterns, in trigger order.
        hold_gil: use the accelerator when it is installed.
    """

    backend = "re2"

    def __init__(self, triggers: Sequence[str], *, hold_gil: bool = True) -> None:
        holding = _re2hold() if hold_gil else None
        self.holds_gil = holding is not None
        """Whether matching keeps the GIL (the accelerator is in use)."""
        self._match: Callable[[str], list[int] | None]
        if holding is not None:
            accelerated: otel_audit_re2hold.Set = holding.Set(triggers)
            self._match = accelerated.match
            return
        import re2  # noqa: PLC0415 - optional dependency, imported only when chosen

        google_set = re2.Set.SearchSet(re2.Options())
        for trigger in triggers:
            google_set.Add(trigger)
        google_set.Compile()
        self._match = google_set.Match

    def triggered(self, lowered: str) -> Iterable[int]:
        return self._match(lowered) or ()


def _re2hold() -> ModuleType | None:
    """The accelerator module, or None when it is not installed."""
    try:
        import otel_audit_re2hold  # noqa: PLC0415 - optional native module
    except ModuleNotFoundError:
        return None
    except ImportError as exc:  # installed but broken (its RE2 library gone): say so
        logging.getLogger(__name__).warning(
            "otel_audit_re2hold is installed but does not load (%s); tier 1 uses "
            "google-re2's Set, which gives up the GIL on every scan",
            exc,
        )
        return None
    return otel_audit_re2hold


class _SrePrefilter:
    """
    Pure ``re`` fallback: literal keywords as one trie-shaped alternation.

    A flat alternation of 70 literals costs sre about 10 µs per line because every branch
    is tried at every position; the trie shape tries one branch per first character. The
    look-ahead makes matches overlap, so a keyword inside another is still seen; keywords
    that are prefixes of a longer matched keyword are added back from a table.
    """

    backend = "re"

    def __init__(self, triggers: Sequence[str]) -> None:
        literals: dict[str, int] = {}
        self._patterns: list[tuple[re.Pattern[str], int]] = []
        for index, trigger in enumerate(triggers):
            if trigger.startswith("re:"):
                self._patterns.append((re.compile(trigger[3:]), index))
            else:
                literals[_unescape(trigger)] = index
        self._by_literal: dict[str, tuple[int, ...]] = {
            word: tuple(i for other, i in literals.items() if word.startswith(other))
            for word in literals
        }
        self._trie = re.compile(f"(?=({_trie_regex(sorted(literals))}))") if literals else None

    def triggered(self, lowered: str) -> Iterable[int]:
        found: set[int] = set()
        if self._trie is not None:
            for match in self._trie.finditer(lowered):
                found.update(self._by_literal[match.group(1)])
        for pattern, index in self._patterns:
            if pattern.search(lowered):
                found.add(index)
        return found


def _unescape(trigger: str) -> str:
    return re.sub(r"\\(.)", r"\1", trigger)


_Trie = dict[str, "_Trie"]


def _trie_regex(words: Sequence[str]) -> str:
    trie: _Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: _Trie) -> str:
        branches = [re.escape(char) + build(sub) for char, sub in sorted(node.items()) if char]
        if not branches:
            return ""
        optional = "" in node
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if optional:
            return f"(?:{body})?"
        return body

    return build(trie)


def _compile(det: Detector, *, use_re2: bool) -> CompiledDetector:
    if det.finder is None and not det.pattern:
        msg = f"detector {det.rule_id} has neither a pattern nor a finder"
        raise ValueError(msg)
    if not det.keywords:
        msg = f"detector {det.rule_id} has no keywords; it would run on every string"
        raise ValueError(msg)
    regex = None if det.finder is not None else re.compile(det.pattern, det.flags)
    gate = None
    if det.re2_triggers and not use_re2:
        gate = re.compile("|".join(f"(?:{t})" for t in det.re2_triggers))
    return CompiledDetector(det, regex, gate)


def _re2_available() -> bool:
    try:
        import re2  # noqa: F401, PLC0415 - probing the optional dependency
    except ImportError:
        return False
    return True


class DetectorRegistry:
    """
    The detectors of one engine, compiled at start-up behind one prefilter.

    Args:
        detectors: the catalogue.
        level: ``standard`` or ``strict``; strict-only detectors are left out otherwise.
        actions: per-rule action overrides.
        prefer_re2: use ``google-re2`` for the prefilter when it is installed.
        hold_gil: match the re2 prefilter with the ``otel_audit_re2hold`` accelerator when
            it is installed (benchmarks turn it off to compare).
    """

    def __init__(
        self,
        detectors: Iterable[Detector],
        *,
        level: str = STANDARD,
        actions: dict[str, Action] | None = None,
        prefer_re2: bool = True,
        hold_gil: bool = True,
    ) -> None:
        self._compiled: list[CompiledDetector] = []
        self._actions = dict(actions or {})
        triggers: list[str] = []
        trigger_index: dict[str, int] = {}
        self._by_trigger: list[list[int]] = []
        use_re2 = prefer_re2 and _re2_available()
        for det in detectors:
            if not isinstance(det, Detector):
                msg = f"not a Detector: {det!r}"
                raise TypeError(msg)
            if det.level == STRICT and level != STRICT:
                continue
            position = len(self._compiled)
            self._compiled.append(_compile(det, use_re2=use_re2))
            keywords = det.keywords
            if use_re2 and det.re2_triggers:
                keywords = tuple(f"re:{t}" for t in det.re2_triggers)
            for keyword in keywords:
                trigger = keyword if keyword.startswith("re:") else re.escape(keyword)
                if trigger not in trigger_index:
                    trigger_index[trigger] = len(triggers)
                    triggers.append(trigger)
                    self._by_trigger.append([])
                self._by_trigger[trigger_index[trigger]].append(position)
        re2_triggers = [t.removeprefix("re:") for t in triggers]
        self.prefilter: _Re2Prefilter | _SrePrefilter
        if use_re2:
            self.prefilter = _Re2Prefilter(re2_triggers, hold_gil=hold_gil)
        else:
            self.prefilter = _SrePrefilter(triggers)

    @property
    def backend(self) -> str:
        """``re2`` or ``re``: which engine runs the prefilter."""
        return self.prefilter.backend

    @property
    def prefilter_holds_gil(self) -> bool:
        """False only for ``google-re2`` without the accelerator."""
        return not isinstance(self.prefilter, _Re2Prefilter) or self.prefilter.holds_gil

    def action_for(self, rule_id: str, default: Action) -> Action:
        """The configured action of ``rule_id``."""
        return self._actions.get(rule_id, default)

    def _triggered(self, text: str) -> list[int]:
        lowered = text.lower()
        hits = self.prefilter.triggered(lowered)
        if not hits:
            return []
        positions: set[int] = set()
        for hit in hits:
            positions.update(self._by_trigger[hit])
        # Keywords are coarse (``token`` in ``token_expires_at``); on the re backend a
        # detector with sharp triggers runs only if one of them matches as well.
        compiled = self._compiled
        return [
            p for p in sorted(positions) if (g := compiled[p].gate) is None or g.search(lowered)
        ]

    def find_if_joinable(self, text: str) -> list[Span] | None:
        """
        ``find(text)`` when every triggered detector is joinable, else None.

        For the clean-record fast path: over strings joined by newlines, a joinable
        detector's verdict is the verdict on each string (see ``Detector.joinable``).
        Digit runs in ids (``job 0b709858-8392-4540-…``) wake the card and IBAN triggers
        on benign lines; running those two rules once here costs a fraction of a walk.
        """
        positions = self._triggered(text)
        if not all(self._compiled[p].detector.joinable for p in positions):
            return None
        return self._spans(positions, text)

    def triggered_rules(self, text: str) -> set[str]:
        """Rule ids of the detectors the prefilter would run on ``text`` (for tests)."""
        return {self._compiled[p].detector.rule_id for p in self._triggered(text)}

    def find(self, text: str) -> list[Span]:
        """
        Every span any triggered detector wants replaced, unmerged.

        Returns:
            Spans in no particular order; empty when the prefilter saw no keyword.
        """
        return self._spans(self._triggered(text), text)

    def _spans(self, positions: list[int], text: str) -> list[Span]:
        spans: list[Span] = []
        for position in positions:
            compiled = self._compiled[position]
            action = self._actions.get(compiled.detector.rule_id, compiled.detector.action)
            spans.extend(compiled.spans(text, action))
        return spans


def merge_spans(spans: list[Span]) -> list[Span]:
    """
    Union of overlapping spans, named after the highest-priority rule in each union.

    Overlaps are merged rather than resolved by picking one, so that a secret matched by
    two rules with different extents is removed over the larger extent. A union of rules
    with different actions falls back to the placeholder.
    """
    if len(spans) <= 1:
        return spans
    spans.sort(key=lambda s: (s.start, -s.end))
    merged: list[Span] = [spans[0]]
    for span in spans[1:]:
        last = merged[-1]
        if span.start < last.end:
            best = last if last.priority >= span.priority else span
            action = last.action if last.action is span.action else Action.PLACEHOLDER
            merged[-1] = Span(
                last.start, max(last.end, span.end), best.rule_id, action, best.priority
            )
        else:
            merged.append(span)
    return merged
