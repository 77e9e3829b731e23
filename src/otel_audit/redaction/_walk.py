"""
Bounded traversal of one record's values: depth, size, items, cycles, time, odd types.

One ``Walk`` lives for one record (or one CLI value). Every limit it hits replaces the
value it was looking at instead of passing it through, and is counted, so that hostile or
merely unusual input (a 10 MB body, a self-referencing dict, invalid UTF-8 bytes, an
object that is not a log value) can neither slow the application down without bound nor
slip past the detectors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from otel_audit._bounded import CYCLE as CYCLE_MARKER
from otel_audit._bounded import TOO_DEEP as DEPTH_MARKER
from otel_audit.redaction import _validators
from otel_audit.redaction._actions import Action, Renderer, placeholder
from otel_audit.redaction._detectors import DetectorRegistry, Span, merge_spans
from otel_audit.redaction._keys import EXEMPT, KeyRule

if TYPE_CHECKING:
    from otel_audit.redaction._keys import KeyClassifier

# Depth and cycle markers come from otel_audit._bounded (the bounding done before the SDK
# sees a value), so a record reads alike whichever of the two cut it.
ITEMS_MARKER: Final = "<truncated:items>"
NODES_MARKER: Final = "<truncated:nodes>"

# Rule ids of the fail-closed outcomes, as they appear in stats and the record summary.
FAIL_DEPTH: Final = "limit.depth"
FAIL_CYCLE: Final = "limit.cycle"
FAIL_ITEMS: Final = "limit.items"
FAIL_SIZE: Final = "limit.size"
FAIL_TIMEOUT: Final = "limit.timeout"
FAIL_TYPE: Final = "error.type"
FAIL_ERROR: Final = "error.exception"

SMALLEST_CARD_INT: Final = 10**12
"""Integers below this are too short to be card numbers and are never inspected."""
_TAIL_BACKOFF: Final = 256
CLEAN_MAX: Final = 256  # longest string whose clean verdict is remembered
CLEAN_STRINGS: Final = 4096  # remembered at most (the set is cleared when full)
SHORTEST_FINDING: Final = 5  # "pin=1": nothing shorter can hold a finding


def remember_clean(clean: set[str], texts: Iterable[str]) -> None:
    """Add the short ones of ``texts``, found to need nothing, to ``clean`` (bounded)."""
    for text in texts:
        if len(text) <= CLEAN_MAX:
            if len(clean) >= CLEAN_STRINGS:
                clean.clear()
            clean.add(text)


def is_inert(value: object) -> bool:
    """A value no rule can act on: None, a bool, a float, or an int too short to be a card."""
    return (
        value is None
        or isinstance(value, (bool, float))
        or (isinstance(value, int) and abs(value) < SMALLEST_CARD_INT)
    )


def may_be_json(text: str) -> bool:
    """Whether ``text`` opens like a JSON object or array (the walk then parses it)."""
    first = text[:1]
    return first in ("{", "[") or (first.isspace() and text.lstrip()[:1] in ("{", "["))


class _Remove:
    """Sentinel: the key rule's action is to drop the entry."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Final = _Remove()


@dataclass(frozen=True, slots=True)
class Limits:
    """
    Bounds of one walk.

    Attributes:
        max_depth: nesting below this becomes ``<truncated:depth>``.
        max_items: entries kept per mapping or sequence.
        max_nodes: values visited per record.
        max_string: characters scanned (and kept) per string; the tail is dropped, never
            passed through unscanned.
        time_budget_s: wall time per record; values reached after it are replaced.
    """

    max_depth: int = 32
    max_items: int = 1000
    max_nodes: int = 20_000
    max_string: int = 64 * 1024
    time_budget_s: float = 0.05


@dataclass(frozen=True, slots=True)
class WalkContext:
    """What a walk needs from its engine, bundled so walks are cheap to create."""

    registry: DetectorRegistry
    keys: KeyClassifier
    renderer: Renderer
    limits: Limits
    clock: Callable[[], float]
    key_actions: Mapping[str, Action]
    # Short strings known to need nothing (shared with the engine's fast path; see
    # RedactionEngine._remember_clean): skipped here too, and added when a scan finds none.
    clean: set[str] = field(default_factory=set)


class Walk:
    """
    One bounded pass over one record.

    ``counts`` maps rule ids (including the fail-closed ``limit.*``/``error.*`` ids) to
    how often they fired; it feeds both the stats and the record summary. ``changed`` is
    their running total, compared before and after a container to see whether it must be
    rebuilt.
    """

    __slots__ = ("_active", "_ctx", "_deadline", "_nodes", "changed", "counts", "failures")

    def __init__(self, ctx: WalkContext) -> None:
        self._ctx = ctx
        self._deadline = ctx.clock() + ctx.limits.time_budget_s
        self._nodes = 0
        self._active: set[int] = set()
        self.counts: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.changed = 0

    # --- bookkeeping ----------------------------------------------------------------------

    def hit(self, rule_id: str, n: int = 1) -> None:
        """Count ``n`` redactions by ``rule_id``."""
        self.counts[rule_id] = self.counts.get(rule_id, 0) + n
        self.changed += n

    def fail(self, reason: str, marker: str | None = None) -> str:
        """Count a fail-closed replacement and return what replaces the value."""
        self.failures[reason] = self.failures.get(reason, 0) + 1
        self.hit(reason)
        return placeholder(reason) if marker is None else marker

    # --- values -----------------------------------------------------------------------------

    def keyed(self, key: str, value: Any, depth: int) -> Any:  # noqa: PLR0911 - one per verdict
        """A value under ``key``: exempt keys pass, sensitive keys lose the value."""
        rule = self._ctx.keys.plan(key)
        if rule is None:
            return self.value(value, depth)
        if rule is EXEMPT:
            return value
        if not isinstance(rule, KeyRule):  # pragma: no cover - plan() returns one of three
            return self.fail(FAIL_ERROR)
        if value is None or isinstance(value, bool) or value in ("", b""):
            return value
        action = self._ctx.key_actions.get(rule.rule_id, rule.action)
        self.hit(rule.rule_id)
        if action is Action.REMOVE:
            return REMOVE
        if action is Action.PSEUDONYMIZE and isinstance(value, (str, int, bytes)):
            secret = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            return self._ctx.renderer.render(rule.rule_id, action, secret)
        return placeholder(rule.rule_id)

    def value(self, value: Any, depth: int) -> Any:  # noqa: PLR0911 - one branch per type
        """Any log value, rebuilt only where something was replaced."""
        self._nodes += 1
        if self._nodes > self._ctx.limits.max_nodes:
            return self.fail(FAIL_SIZE, NODES_MARKER)
        if isinstance(value, str):
            return self.text(value, depth)
        if value is None or isinstance(value, (bool, float)):
            return value
        if isinstance(value, int):
            return self._integer(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.text(bytes(value).decode("utf-8", "replace"), depth)
        if depth >= self._ctx.limits.max_depth:
            return self.fail(FAIL_DEPTH, DEPTH_MARKER)
        if isinstance(value, Mapping):
            return self._container(value, depth, self._mapping)
        if isinstance(value, Sequence):
            return self._container(value, depth, self._sequence)
        return self.fail(FAIL_TYPE)

    def _integer(self, value: int) -> Any:
        if abs(value) >= SMALLEST_CARD_INT and _validators.card_number(str(abs(value))):
            registry = self._ctx.registry
            action = registry.action_for("credit_card", Action.MASK)
            self.hit("credit_card")
            return self._ctx.renderer.render("credit_card", action, str(value))
        return value

    def _container(self, value: Any, depth: int, walk: Callable[[Any, int], Any]) -> Any:
        ident = id(value)
        if ident in self._active:
            return self.fail(FAIL_CYCLE, CYCLE_MARKER)
        self._active.add(ident)
        try:
            return walk(value, depth)
        finally:
            self._active.discard(ident)

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> Any:
        before = self.changed
        out: dict[str, Any] = {}
        limit = self._ctx.limits.max_items
        for index, (raw_key, item) in enumerate(value.items()):
            if index >= limit:
                out[ITEMS_MARKER] = len(value) - limit
                self.fail(FAIL_ITEMS)
                break
            # Keys are data too ({"<token>": "alice"}): scanned like values.
            key = (
                self.text(raw_key, depth + 1)
                if isinstance(raw_key, str)
                else str(self.value(raw_key, depth + 1))
            )
            new = self.keyed(key, item, depth + 1)
            if new is not REMOVE:
                out[key] = new
        return value if self.changed == before and isinstance(value, dict) else out

    def _sequence(self, value: Sequence[Any], depth: int) -> Any:
        before = self.changed
        limit = self._ctx.limits.max_items
        out = [self.value(item, depth + 1) for item in value[:limit]]
        if len(value) > limit:
            out.append(ITEMS_MARKER)
            self.fail(FAIL_ITEMS)
        if self.changed == before:
            return value
        return tuple(out) if isinstance(value, tuple) else out

    # --- text -------------------------------------------------------------------------------

    def text(self, text: str, depth: int) -> str:
        """Scan one string: JSON inside it is walked structurally, the rest by detectors."""
        if len(text) < SHORTEST_FINDING:
            return text
        if self._ctx.clock() > self._deadline:
            return self.fail(FAIL_TIMEOUT)
        limits = self._ctx.limits
        if len(text) > limits.max_string:
            text = self._truncate(text, limits.max_string)
        if text in self._ctx.clean:
            return text
        if may_be_json(text):  # never remembered: the fast path leaves those to the walk
            walked = self._json(text, depth)
            if walked is not None:
                return walked
            spans = self._ctx.registry.find(text)
        else:
            spans = self._find_remembering(text)
        if not spans:
            return text
        spans = merge_spans(spans)
        parts: list[str] = []
        position = 0
        renderer = self._ctx.renderer
        for span in spans:
            parts.append(text[position : span.start])
            parts.append(renderer.render(span.rule_id, span.action, text[span.start : span.end]))
            self.hit(span.rule_id)
            position = span.end
        parts.append(text[position:])
        return "".join(parts)

    def _find_remembering(self, text: str) -> list[Span]:
        """Detector findings in ``text``; a short text with none is remembered as clean."""
        spans = self._ctx.registry.find(text)
        if not spans:
            remember_clean(self._ctx.clean, (text,))
        return spans

    def _truncate(self, text: str, limit: int) -> str:
        """
        Keep the first ``limit`` characters, backed off to a whitespace boundary.

        A secret straddling the cut would be scanned as a fragment that no longer
        matches; backing off to whitespace drops the fragment instead of keeping it.
        """
        dropped_from = limit
        boundary = max(
            text.rfind(" ", limit - _TAIL_BACKOFF, limit),
            text.rfind("\n", limit - _TAIL_BACKOFF, limit),
        )
        if boundary > 0:
            dropped_from = boundary
        marker = f" <truncated:{len(text) - dropped_from} chars>"
        self.fail(FAIL_SIZE)
        return text[:dropped_from] + marker

    def _json(self, text: str, depth: int) -> str | None:
        stripped = text.strip()
        if stripped[-1:] not in ("}", "]") or depth >= self._ctx.limits.max_depth:
            return None
        try:
            parsed = json.loads(stripped)
        except (ValueError, RecursionError):
            return None
        if not isinstance(parsed, (dict, list)):
            return None
        before = self.changed
        walked = self.value(parsed, depth + 1)
        if self.changed == before:
            return text
        return json.dumps(walked, ensure_ascii=False, default=str)
