r"""
OTLP protobuf encoding written straight to wire bytes, chain canonical form alongside.

Log records are encoded in one pass that also computes the integrity chain's canonical
form.

Why not the SDK's ``encode_logs``: it builds a protobuf object per record, attribute and
value (three or four per attribute) and hashes every record's ``Resource`` (a JSON dump
of its attributes) to group them, about 90 µs for a security event with 18 attributes;
the chain then read every value back out of those objects to build its canonical form
(another ~35 µs). On a threaded web server that work competes with request threads for
the GIL. Here each value is visited once and yields both its protobuf bytes and its
canonical text (``V`` in :mod:`otel_audit.export._integrity`); attribute keys, resources
and scopes are encoded once and reused.

The output is an ``ExportLogsServiceRequest`` that parses to the same message the SDK's
encoder builds (tests compare them, and the canonical text against
:func:`~otel_audit.export._integrity.canonical_bytes` of the parsed record, which is what
``otel-audit verify`` recomputes). It only takes values that need no bounding at
export; anything else raises :class:`Unencodable` (or ``UnicodeEncodeError``) and the
caller bounds the record and takes the SDK's path for it, so the export bounds need no
separate pass over every value of every record.
"""

from __future__ import annotations

import base64
import logging
import math
import struct
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring
from typing import Any, Final, Protocol, TypeVar

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord

from otel_audit._bounded import EXPORT
from otel_audit._records import attribute_dict

_q: Final = encode_basestring
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_MASK64: Final = (1 << 64) - 1
_pack_double: Final = struct.Struct("<d").pack
_pack_fixed64: Final = struct.Struct("<Q").pack
_pack_fixed32: Final = struct.Struct("<I").pack
_SMALL: Final = tuple(bytes([i]) for i in range(128))
INTEGRITY_PREFIX: Final = "audit.integrity."

# Field tags (field number << 3 | wire type): 0 varint, 1 fixed64, 2 bytes, 5 fixed32.
_ANY_STRING: Final = b"\x0a"
_ANY_BOOL_TRUE: Final = b"\x10\x01"
_ANY_BOOL_FALSE: Final = b"\x10\x00"
_ANY_INT: Final = b"\x18"
_ANY_DOUBLE: Final = b"\x21"
_ANY_ARRAY: Final = b"\x2a"
_ANY_KVLIST: Final = b"\x32"
_ANY_BYTES: Final = b"\x3a"
_KV_VALUE: Final = b"\x12"
_LIST_ITEM: Final = b"\x0a"  # ArrayValue.values and KeyValueList.values are field 1
_LR_TIME: Final = b"\x09"
_LR_SEVERITY: Final = b"\x10"
_LR_SEVERITY_TEXT: Final = b"\x1a"
_LR_BODY: Final = b"\x2a"
_LR_ATTRIBUTE: Final = b"\x32"
_LR_DROPPED: Final = b"\x38"
_LR_FLAGS: Final = b"\x45"
_LR_TRACE_ID: Final = b"\x4a"
_LR_SPAN_ID: Final = b"\x52"
_LR_OBSERVED: Final = b"\x59"
_LR_EVENT_NAME: Final = b"\x62"
_SCOPE_LOGS_SCOPE: Final = b"\x0a"
_SCOPE_LOGS_RECORD: Final = b"\x12"
_SCOPE_LOGS_SCHEMA: Final = b"\x1a"
_RESOURCE_LOGS_RESOURCE: Final = b"\x0a"
_RESOURCE_LOGS_SCOPE: Final = b"\x12"
_RESOURCE_LOGS_SCHEMA: Final = b"\x1a"
_REQUEST_RESOURCE_LOGS: Final = b"\x0a"


_INT_RANGE: Final = "integer outside int64"
_TOO_BIG: Final = "container beyond the export bounds"
_KEY_TYPE: Final = "mapping key that is not a string"


class Unencodable(TypeError):  # noqa: N818  # reads as the condition it reports
    """A value this encoder does not represent (the SDK's path decides what to do)."""


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer below 2**64."""
    if value < 0x80:  # noqa: PLR2004  # one-byte varint
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:  # noqa: PLR2004
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 0x80 else varint(n)) + payload  # noqa: PLR2004


def any_value(value: Any, depth: int = 0) -> tuple[bytes, str]:  # noqa: PLR0911  # one branch per kind
    """
    ``value`` as the bytes of an OTLP ``AnyValue`` and as its canonical text ``V``.

    Encodes what the SDK's ``_encode_value`` encodes the same way, but only values that
    need no bounding at export (:func:`otel_audit._bounded.needs_bounding` would say
    False): exact ``str``/``int``/``bool``/``float``/``bytes``/``None``, and ``list``,
    ``tuple`` and ``dict`` with string keys within the export bounds. Anything else
    raises, and the caller bounds the record first.

    Raises:
        Unencodable: a subclass, another type, an int beyond int64, a container too deep
            or too large, a non-string key.
        UnicodeEncodeError: text with lone surrogates.
    """
    kind = type(value)
    if kind is str:
        return field(_ANY_STRING, value.encode()), '{"s":' + _q(value) + "}"
    if kind is bool:
        return (_ANY_BOOL_TRUE, '{"b":true}') if value else (_ANY_BOOL_FALSE, '{"b":false}')
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise Unencodable(_INT_RANGE)
        return _ANY_INT + varint(value & _MASK64), '{"i":"%d"}' % value  # noqa: UP031  # hot path
    if value is None:
        return b"", "null"
    if kind is float:
        text = repr(value) if math.isfinite(value) else str(value)
        return _ANY_DOUBLE + _pack_double(value), '{"d":' + _q(text) + "}"
    if kind is bytes:
        return field(_ANY_BYTES, value), '{"y":"' + base64.b64encode(value).decode("ascii") + '"}'
    if kind is tuple or kind is list or kind is dict:
        if depth >= EXPORT.max_depth or len(value) > EXPORT.max_items:
            raise Unencodable(_TOO_BIG)
        return _kvlist(value, depth + 1) if kind is dict else _array(value, depth + 1)
    raise Unencodable(kind.__name__)


def _array(values: Sequence[Any], depth: int) -> tuple[bytes, str]:
    parts: list[bytes] = []
    texts: list[str] = []
    for item in values:
        encoded, text = any_value(item, depth)
        parts.append(field(_LIST_ITEM, encoded))
        texts.append(text)
    return field(_ANY_ARRAY, b"".join(parts)), '{"a":[' + ",".join(texts) + "]}"


def _kvlist(values: dict[Any, Any], depth: int) -> tuple[bytes, str]:
    parts: list[bytes] = []
    pairs: list[tuple[str, str]] = []
    for key, item in values.items():
        if type(key) is not str:
            raise Unencodable(_KEY_TYPE)
        encoded, text = key_value(key, item, depth)
        parts.append(field(_LIST_ITEM, encoded))
        pairs.append((key, text))
    pairs.sort(key=_first)  # by key only, stable: the canonical form's definition
    body = ",".join(["[" + _q(k) + "," + v + "]" for k, v in pairs])
    return field(_ANY_KVLIST, b"".join(parts)), '{"m":[' + body + "]}"


def _first(pair: tuple[str, str]) -> str:
    return pair[0]


_KEY_CACHE: dict[str, bytes] = {}
_KEY_CACHE_MAX: Final = 4096
_CACHED_LENGTH_MAX: Final = 256  # longer keys and values are encoded each time, never kept


def key_value(key: str, value: Any, depth: int = 0) -> tuple[bytes, str]:
    """A ``KeyValue`` message's bytes, and ``V(value)``."""
    head = _KEY_CACHE.get(key)
    if head is None:
        head = field(b"\x0a", key.encode())
        if len(key) <= _CACHED_LENGTH_MAX:
            _keep(_KEY_CACHE, key, head, _KEY_CACHE_MAX)
    encoded, text = any_value(value, depth)
    return head + field(_KV_VALUE, encoded), text


def attribute(key: str, value: Any) -> bytes:
    """One ``LogRecord.attributes`` entry (for fields added after the canonical form)."""
    return field(_LR_ATTRIBUTE, key_value(key, value)[0])


def key_head(key: str) -> bytes:
    """A ``KeyValue``'s key field, for :func:`int_attribute` / :func:`str_attribute`."""
    return field(b"\x0a", key.encode())


def int_attribute(head: bytes, value: int) -> bytes:
    """``attribute(key, value)`` for an int64, ``head`` from :func:`key_head` (the chain's)."""
    return field(_LR_ATTRIBUTE, head + field(_KV_VALUE, _ANY_INT + varint(value & _MASK64)))


def str_attribute(head: bytes, value: str) -> bytes:
    """``attribute(key, value)`` for a string, ``head`` from :func:`key_head` (the chain's)."""
    return field(_LR_ATTRIBUTE, head + field(_KV_VALUE, field(_ANY_STRING, value.encode())))


def encode_record(record: ReadableLogRecord | ReadWriteLogRecord) -> tuple[bytes, bytes]:
    """
    A ``LogRecord`` message (without integrity attributes) and its canonical form.

    The canonical form is ``canonical`` of :mod:`otel_audit.export._integrity`, UTF-8.

    Attributes under ``audit.integrity.`` are left out of both: only the chain writes
    them, and it appends them to the returned bytes.

    Uses the optional C encoder (``native/otlpwire``) when it is installed, else
    :func:`encode_record_python`; both give the same bytes (tests compare them).

    Raises:
        Unencodable: a value this encoder does not represent.
    """
    if _native_encode is None:
        return encode_record_python(record)
    lr = record.log_record
    severity = lr.severity_number
    attributes = attribute_dict(lr.attributes) if lr.attributes else None
    if attributes is not None and type(attributes) is not dict:
        attributes = dict(attributes.items())  # the C module reads a plain dict's storage
    trace_id = lr.trace_id or 0
    span_id = lr.span_id or 0
    return _native_encode(
        lr.timestamp or 0,
        severity._value_ if severity is not None else 0,  # Enum's own field, without the property
        lr.severity_text or None,
        lr.body,
        attributes,
        record.dropped_attributes,
        int(lr.trace_flags) if lr.trace_flags is not None else 0,
        trace_id.to_bytes(16, "big") if trace_id else b"",
        span_id.to_bytes(8, "big") if span_id else b"",
        lr.observed_timestamp or 0,
        lr.event_name or None,
    )


def encode_record_python(record: ReadableLogRecord | ReadWriteLogRecord) -> tuple[bytes, bytes]:  # noqa: C901, PLR0912  # field by field
    """:func:`encode_record` in Python: the reference, and the path without the C encoder."""
    lr = record.log_record
    out: list[bytes] = []
    timestamp = lr.timestamp or 0
    if timestamp:
        out.append(_LR_TIME + _pack_fixed64(timestamp))
    severity = lr.severity_number
    sev = severity.value if severity is not None else 0
    if sev:
        out.append(_LR_SEVERITY + varint(sev))
    if lr.severity_text:
        out.append(field(_LR_SEVERITY_TEXT, lr.severity_text.encode()))
    body_bytes, body_text = any_value(lr.body)
    out.append(field(_LR_BODY, body_bytes))
    attrs: list[tuple[str, str, str]] = []
    attributes = lr.attributes
    if attributes:
        for key, value in attribute_dict(attributes).items():
            kind = type(value)
            if type(key) is not str:  # before the cache, where an equal str key may sit
                raise Unencodable(_KEY_TYPE)
            if kind is str or kind is int or kind is bool:
                encoded, item = _entry(key, kind, value)
            else:
                encoded, item = _encode_entry(key, value)
            if item is not None:  # None: an integrity key, the chain's to write
                out.append(encoded)
                attrs.append(item)
    dropped = record.dropped_attributes
    if dropped:
        out.append(_LR_DROPPED + varint(dropped))
    flags = int(lr.trace_flags) if lr.trace_flags is not None else 0
    if flags:
        out.append(_LR_FLAGS + _pack_fixed32(flags))
    trace_id = lr.trace_id or 0
    span_id = lr.span_id or 0
    if trace_id:
        out.append(_LR_TRACE_ID + b"\x10" + trace_id.to_bytes(16, "big"))
    if span_id:
        out.append(_LR_SPAN_ID + b"\x08" + span_id.to_bytes(8, "big"))
    observed = lr.observed_timestamp or 0
    if observed:
        out.append(_LR_OBSERVED + _pack_fixed64(observed))
    if lr.event_name:
        out.append(field(_LR_EVENT_NAME, lr.event_name.encode()))
    attrs.sort()
    canonical = (
        '{"attrs":[%s],"body":%s,"sev":%d,"span":"%s","time":"%d","trace":"%s","v":1}'  # noqa: UP031  # hot path
        % (
            ",".join([pair for _, _, pair in attrs]),
            body_text,
            sev,
            format(span_id, "016x") if span_id else "",
            timestamp,
            format(trace_id, "032x") if trace_id else "",
        )
    )
    return b"".join(out), canonical.encode("utf-8", "surrogatepass")


def _load_native() -> Callable[..., tuple[bytes, bytes]] | None:
    """The C encoder, configured with this module's bounds, or None when not installed."""
    try:
        import otel_audit_otlpwire  # noqa: PLC0415  # optional accelerator
    except ImportError:
        return None
    except Exception:  # installed but unloadable (a moved checkout, an ABI mismatch)
        logging.getLogger(__name__).warning(
            "otel_audit_otlpwire is installed but could not be loaded; "
            "the durable export path encodes in Python",
            exc_info=True,
        )
        return None
    otel_audit_otlpwire.configure(Unencodable, EXPORT.max_depth, EXPORT.max_items, INTEGRITY_PREFIX)
    return otel_audit_otlpwire.encode_record


_native_encode: Final = _load_native()
NATIVE: Final = _native_encode is not None
"""True when records are encoded by the C module (``otel-audit check-config`` says so)."""

_Entry = tuple[bytes, tuple[str, str, str] | None]

# Attribute entries of repeated (key, value) pairs: most of a security event's attributes
# (classification, outcome, route, user agent, service-wide values) repeat from record to
# record. Keyed with the value's type, because 1 == True == 1.0 in Python; floats are not
# cached at all (0.0 == -0.0). Cleared when full, so unique values (ids) only churn it.
_ENTRIES: dict[tuple[str, type, Any], _Entry] = {}
_ENTRIES_MAX: Final = 8192


def _entry(key: str, kind: type, value: str | int) -> _Entry:
    """A scalar attribute's entry (cached): record field bytes and canonical sort item."""
    cache_key = (key, kind, value)
    hit = _ENTRIES.get(cache_key)
    if hit is not None:
        return hit
    entry = _encode_entry(key, value)
    if len(key) <= _CACHED_LENGTH_MAX and (kind is not str or len(value) <= _CACHED_LENGTH_MAX):  # type: ignore[arg-type]
        _keep(_ENTRIES, cache_key, entry, _ENTRIES_MAX)
    return entry


def _encode_entry(key: str, value: Any) -> _Entry:
    """``LogRecord.attributes`` entry bytes and ``(key, V, "[key,V]")``; None for ours."""
    if type(key) is not str:
        raise Unencodable(_KEY_TYPE)
    if key.startswith(INTEGRITY_PREFIX):
        return b"", None
    encoded, text = key_value(key, value)
    return field(_LR_ATTRIBUTE, encoded), (key, text, "[" + _q(key) + "," + text + "]")


class _Group:
    """The records of one resource and scope, in arrival order."""

    __slots__ = ("items", "resource", "scope")

    def __init__(self, resource: Any, scope: Any) -> None:
        self.resource = resource
        self.scope = scope
        self.items: list[Any] = []


class Origin(Protocol):
    """Where a record came from: what :func:`encode_request` groups by."""

    @property
    def resource(self) -> Any: ...
    @property
    def instrumentation_scope(self) -> Any: ...


_R = TypeVar("_R", bound=Origin)


def encode_request(
    records: Sequence[_R],
    encode_one: Callable[[_R], Any],
    finish: Callable[[Any], list[bytes]],
) -> tuple[bytes, int]:
    """
    An ``ExportLogsServiceRequest`` of ``records``, grouped by resource and scope.

    Two passes, so that anything order-dependent (the integrity chain) sees the records
    in the order they stand in the request: ``encode_one`` turns each record into an item
    (``None`` if it was lost); once all are grouped, ``finish`` turns each item, in
    request order, into the ``LogRecord`` messages it becomes (two when the chain adds a
    checkpoint after it). Resources and scopes that are equal but distinct objects share
    one block, as with the SDK's encoder. Returns the request's bytes and how many log
    records it holds.
    """
    by_id: dict[tuple[int, int], _Group] = {}
    groups: list[_Group] = []
    for record in records:
        item = encode_one(record)
        if item is None:
            continue
        resource, scope = record.resource, record.instrumentation_scope or None
        key = (id(resource), id(scope))
        group = by_id.get(key)
        if group is None:
            group = next((g for g in groups if g.resource == resource and g.scope == scope), None)
            if group is None:
                group = _Group(resource, scope)
                groups.append(group)
            by_id[key] = group
        group.items.append(item)
    blocks: list[tuple[Any, list[_Group]]] = []
    for group in groups:
        block = next((b for b in blocks if b[0] == group.resource), None)
        if block is None:
            blocks.append((group.resource, [group]))
        else:
            block[1].append(group)
    heads = [
        (_resource_bytes(resource), [(g, _scope_bytes(g.scope)) for g in block_groups])
        for resource, block_groups in blocks
    ]  # encoded before any item is finished: a failure here changes no chain state
    out: list[bytes] = []
    count = 0
    for (resource, _), (resource_bytes, scoped) in zip(blocks, heads, strict=True):
        parts = [field(_RESOURCE_LOGS_RESOURCE, resource_bytes)]
        for group, scope_bytes in scoped:
            messages = [message for item in group.items for message in finish(item)]
            count += len(messages)
            parts.append(field(_RESOURCE_LOGS_SCOPE, _scope_logs(group, scope_bytes, messages)))
        schema_url = getattr(resource, "schema_url", "")
        if schema_url:
            parts.append(field(_RESOURCE_LOGS_SCHEMA, schema_url.encode()))
        out.append(field(_REQUEST_RESOURCE_LOGS, b"".join(parts)))
    return b"".join(out), count


def _scope_logs(group: _Group, scope_bytes: bytes, messages: list[bytes]) -> bytes:
    scope = group.scope
    parts = [field(_SCOPE_LOGS_SCOPE, scope_bytes)]
    parts.extend(field(_SCOPE_LOGS_RECORD, message) for message in messages)
    schema_url = scope.schema_url if scope is not None else None
    if schema_url:
        parts.append(field(_SCOPE_LOGS_SCHEMA, schema_url.encode()))
    return b"".join(parts)


# Resources and scopes are long-lived objects shared by every record of a logger; their
# encodings are kept per object (the object is held too, so its id is not reused).
_RESOURCES: dict[int, tuple[Any, bytes]] = {}
_SCOPES: dict[int, tuple[Any, bytes]] = {}
_OBJECT_CACHE_MAX: Final = 256


def _resource_bytes(resource: Any) -> bytes:
    if resource is None:
        return b""
    return _cached(_RESOURCES, resource, lambda r: _encode_resource(r).SerializeToString())


def _scope_bytes(scope: Any) -> bytes:
    if scope is None:
        return b""
    return _cached(_SCOPES, scope, lambda s: _encode_instrumentation_scope(s).SerializeToString())


def _cached(cache: dict[int, tuple[Any, bytes]], obj: Any, encode: Callable[[Any], bytes]) -> bytes:
    hit = cache.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    encoded = encode(obj)
    _keep(cache, id(obj), (obj, encoded), _OBJECT_CACHE_MAX)
    return encoded


def _keep(cache: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """Store in a cache that is emptied when full (a repeat refills it in one pass)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
