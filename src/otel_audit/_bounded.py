"""Make arbitrary Python values safe to hand to the OpenTelemetry SDK and its encoder.

One walker, used at two points with different :class:`Bounds`:

* :data:`INGRESS` (the stdlib handler, ``security_event``, request context): before the
  SDK sees a value. The SDK's attribute cleaner recurses without a depth limit or cycle
  check, so a self-referencing dict in ``extra=`` would raise ``RecursionError`` inside
  the application's logging call. Bytes are decoded to text here so that redaction,
  which runs later on the result, can scan them; unknown objects become ``str(obj)`` for
  the same reason.
* :data:`EXPORT` (the durable export path, :mod:`otel_audit.export._codec`): just before
  encoding, *after* redaction. The SDK's protobuf encoder raises on bodies it cannot
  represent and silently drops such attribute values. Bytes stay bytes (OTLP has
  ``bytesValue``, and nothing scans them any more); unknown objects become
  ``"<TypeName>"``, never their ``str``/``repr``, which would be data redaction never saw.

Either way the result is encodable: depth, item count and (at ingress) string length are
bounded, cycles are cut, integers outside int64 become decimal text, lone surrogates are
replaced, mapping keys become strings. Nothing here decides what is secret, and nothing
here raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

MAX_DEPTH: Final = 16
MAX_ITEMS: Final = 256
MAX_STRING: Final = 64 * 1024

CYCLE: Final = "<cycle>"
TOO_DEEP: Final = "<truncated:depth>"
TOO_MANY: Final = "<truncated:items>"
UNREPRESENTABLE: Final = "<unrepresentable>"

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_PLAIN_TYPES: Final = frozenset({bool, int, float, type(None)})
_BINARY: Final = (bytes, bytearray, memoryview)
_CONTAINERS: Final = (Mapping, list, tuple, set, frozenset)


@dataclass(frozen=True, slots=True)
class Bounds:
    """
    Limits and type policy of one use of the walker.

    Args:
        max_depth: nesting at or below this becomes ``<truncated:depth>``.
        max_items: items per container kept; the rest is counted in a marker.
        max_string: characters (and bytes) kept per string; ``None`` for no limit.
        bytes_as_text: decode bytes as UTF-8 (invalid sequences replaced) instead of
            keeping them as bytes.
        stringify: unknown objects and non-string keys become ``str(obj)``; otherwise
            ``"<TypeName>"`` (keys of int, float and bool type are always ``str()``).
        sdk_shape: sequences become tuples and mappings lose empty keys, as the SDK's
            attribute cleaner makes them. A value bounded this way passes that cleaner
            unchanged, so the bridge can hand it to the SDK without a second pass
            (:func:`otel_audit._records.writable`).
    """

    max_depth: int
    max_items: int
    max_string: int | None
    bytes_as_text: bool
    stringify: bool
    sdk_shape: bool = False


INGRESS: Final = Bounds(
    MAX_DEPTH, MAX_ITEMS, MAX_STRING, bytes_as_text=True, stringify=True, sdk_shape=True
)
EXPORT: Final = Bounds(32, 10_000, None, bytes_as_text=False, stringify=False)


def is_plain(value: Any) -> bool:
    """True when ``value`` needs no bounding at ingress (the common case, checked cheaply)."""
    kind = type(value)
    if kind is str:
        return len(value) <= MAX_STRING
    return kind in _PLAIN_TYPES


def bound_value(value: Any, bounds: Bounds = INGRESS) -> Any:
    """A copy of ``value`` with depth, size, cycles and types bounded; never raises."""
    try:
        return _bound(value, bounds, 0, set())
    except Exception:  # the walker itself failed: fail closed
        return UNREPRESENTABLE


def bound_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """
    Bound every value of an attribute mapping (ingress bounds); keys become strings.

    Every value of the result is either plain or in the SDK cleaner's shape, so the SDK
    would store it unchanged (given no value-length limit and no empty top-level key).
    """
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


def needs_bounding(value: Any, bounds: Bounds = INGRESS) -> bool:
    """
    Cheap check: would :func:`bound_value` change ``value``?

    Errs towards True (a cycle, an unknown type or a failing container say True), so a
    False answer means the value can be encoded as it is.
    """
    try:
        return _needs(value, bounds, 0)
    except Exception:
        return True


def _clean_str(text: str, limit: int | None) -> str:
    if limit is not None and len(text) > limit:
        text = text[:limit]
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: the encoder would raise
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _str_ok(text: str, limit: int | None) -> bool:
    if limit is not None and len(text) > limit:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _needs(value: Any, bounds: Bounds, depth: int) -> bool:  # noqa: PLR0911  # one flat type switch
    kind = type(value)
    if kind is str:
        return not _str_ok(value, bounds.max_string)
    if kind is int:
        return not _INT64_MIN <= value <= _INT64_MAX
    if kind in _PLAIN_TYPES:
        return False
    if kind is bytes:
        return bounds.bytes_as_text or (
            bounds.max_string is not None and len(value) > bounds.max_string
        )
    if depth >= bounds.max_depth:
        return True
    if kind is dict:
        return len(value) > bounds.max_items or any(
            type(k) is not str or not _str_ok(k, None) or _needs(v, bounds, depth + 1)
            for k, v in value.items()
        )
    if kind is list or kind is tuple:
        return len(value) > bounds.max_items or any(_needs(v, bounds, depth + 1) for v in value)
    return True  # subclasses, other containers, objects: let the walker decide


def _bound(value: Any, bounds: Bounds, depth: int, seen: set[int]) -> Any:  # noqa: PLR0911  # one flat type switch reads better than helpers
    if isinstance(value, str):
        return _clean_str(value, bounds.max_string)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if isinstance(value, _BINARY):
        raw = bytes(value if bounds.max_string is None else value[: bounds.max_string])
        return raw.decode("utf-8", errors="replace") if bounds.bytes_as_text else raw
    if depth >= bounds.max_depth:
        return TOO_DEEP
    if isinstance(value, _CONTAINERS):
        ident = id(value)
        if ident in seen:
            return CYCLE
        seen.add(ident)
        try:
            return _bound_container(value, bounds, depth, seen)
        finally:
            seen.discard(ident)
    if isinstance(value, Sequence):
        return _bound(list(value), bounds, depth, seen)
    return _unknown(value, bounds)


def _bound_container(value: Any, bounds: Bounds, depth: int, seen: set[int]) -> Any:
    limit = bounds.max_items
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= limit:
                out[TOO_MANY] = len(value) - limit
                break
            name = _key(key, bounds)
            if name or not bounds.sdk_shape:
                out[name] = _bound(item, bounds, depth + 1, seen)
        return out
    items = []
    for index, item in enumerate(value):
        if index >= limit:
            items.append(TOO_MANY)
            break
        items.append(_bound(item, bounds, depth + 1, seen))
    return tuple(items) if bounds.sdk_shape else items


def _key(key: Any, bounds: Bounds) -> str:
    if isinstance(key, str):
        return _clean_str(key, None)
    if isinstance(key, int | float) or bounds.stringify:
        return _clean_str(str(key), bounds.max_string)
    return f"<{type(key).__name__}>"


def _unknown(value: Any, bounds: Bounds) -> str:
    if not bounds.stringify:
        return f"<{type(value).__name__}>"
    try:
        text = str(value)
    except Exception:
        return UNREPRESENTABLE
    return _clean_str(text, bounds.max_string)
