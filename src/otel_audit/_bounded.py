"""Make arbitrary Python values safe to hand to the OpenTelemetry SDK.

The SDK's attribute cleaner recurses without a depth limit or cycle check, so a
self-referencing dict in ``extra=`` would raise ``RecursionError`` inside the
application's logging call. This runs first: it bounds depth, item count and string
length, breaks cycles and turns unknown objects into text, and it never raises.
Redaction still runs later on the result; nothing here decides what is secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

MAX_DEPTH: Final = 16
MAX_ITEMS: Final = 256
MAX_STRING: Final = 64 * 1024

CYCLE: Final = "<cycle>"
TOO_DEEP: Final = "<truncated:depth>"
UNREPRESENTABLE: Final = "<unrepresentable>"

_SCALARS = (str, bool, int, float, type(None))


_PLAIN_TYPES = frozenset({bool, int, float, type(None)})


def is_plain(value: Any) -> bool:
    """True when ``value`` needs no bounding (the common case, checked cheaply)."""
    kind = type(value)
    if kind is str:
        return len(value) <= MAX_STRING
    return kind in _PLAIN_TYPES


def bound_value(value: Any) -> Any:
    """A copy of ``value`` with depth, size, cycles and types bounded; never raises."""
    try:
        return _bound(value, 0, set())
    except Exception:  # the walker itself failed: fail closed
        return UNREPRESENTABLE


def bound_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """Bound every value of an attribute mapping; keys become strings."""
    out: dict[str, Any] = {}
    try:
        for index, (key, value) in enumerate(values.items()):
            if index >= MAX_ITEMS:
                out["otel_audit.truncated_items"] = len(values) - MAX_ITEMS
                break
            out[str(key)] = value if is_plain(value) else bound_value(value)
    except Exception:
        return {"otel_audit.unrepresentable": True}
    return out


def _bound(value: Any, depth: int, seen: set[int]) -> Any:  # noqa: C901, PLR0911, PLR0912  # one flat type switch reads better than helpers
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[:MAX_STRING]
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value[:MAX_STRING])
        # Text in bytes is decoded so redaction can scan it; invalid UTF-8 is replaced.
        return raw.decode("utf-8", errors="replace")
    if depth >= MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        ident = id(value)
        if ident in seen:
            return CYCLE
        seen.add(ident)
        try:
            if isinstance(value, Mapping):
                out: dict[str, Any] = {}
                for index, (key, item) in enumerate(value.items()):
                    if index >= MAX_ITEMS:
                        out["<truncated:items>"] = len(value) - MAX_ITEMS
                        break
                    out[str(key)] = _bound(item, depth + 1, seen)
                return out
            items = []
            for index, item in enumerate(value):
                if index >= MAX_ITEMS:
                    items.append("<truncated:items>")
                    break
                items.append(_bound(item, depth + 1, seen))
            return items
        finally:
            seen.discard(ident)
    if isinstance(value, Sequence):
        return _bound(list(value), depth, seen)
    try:
        text = str(value)
    except Exception:
        return UNREPRESENTABLE
    return text[:MAX_STRING]
