r"""
Tamper evidence for security events: a per-process hash chain, HMAC-signed.

Where it runs: on the export thread, after tier-2 redaction (``pre_export``) and before
the spool, over exactly the values encoded into the OTLP record that leaves the process
(:mod:`otel_audit.export._wire` yields the canonical form while encoding; a record the
SDK's encoder takes is chained from its protobuf form), and after pseudonymisation, so
keys can be dropped later without breaking it.

Fields added to every chained record (all under ``audit.integrity.``, flat scalars, so a
collector transform can copy them as they are into an OCSF profile object or any SIEM
field without recomputing anything):

==========================  =========================================================
``audit.integrity.stream``  id of this chain: one per process (a forked child starts
                            its own), UUIDv7 text
``audit.integrity.seq``     1, 2, 3, … within the stream (int)
``audit.integrity.prev``    ``link`` of the previous record (64 hex; 64 zeros for seq 1)
``audit.integrity.alg``     ``hmac-sha256`` or ``sha256`` (no key configured: the
                            record is chained but *not* signed — anyone can recompute)
``audit.integrity.key_id``  the key id (only with a key)
``audit.integrity.hmac``    HMAC-SHA256 of ``message`` (only with a key), 64 hex
==========================  =========================================================

Definitions (version 1)::

    message = "otel-audit-chain/1\\n" alg "\\n" key_id "\\n" stream "\\n" seq "\\n" prev "\\n"
              canonical                                      (UTF-8; key_id "" if none)
    link    = hex(SHA-256(message))
    hmac    = hex(HMAC-SHA256(key, message))

``canonical`` is the compact JSON (sorted keys, ``","``/``":"`` separators, non-ASCII
kept as UTF-8) of::

    {"v": 1,
     "time":  decimal string of timeUnixNano ("0" if absent),
     "sev":   severityNumber as an integer (0 if absent),
     "body":  V(body) or null,
     "trace": lowercase hex traceId or "",
     "span":  lowercase hex spanId or "",
     "attrs": [[key, V(value)], …] sorted by key, then by value, every attribute
              except the audit.integrity.* ones}

    V(stringValue s) = {"s": s}          V(boolValue b)  = {"b": b}
    V(intValue i)    = {"i": "<decimal>"}V(doubleValue d)= {"d": Python repr(float(d))}
    V(bytesValue x)  = {"y": base64(x)}  V(arrayValue)   = {"a": [V(item), …]} (in order)
    V(kvlistValue)   = {"m": [[key, V(value)], …]} sorted by key
    V(empty)         = null

Every input is a field of the OTLP log data model that the collector's JSON file exporter
writes (``timeUnixNano``, ``severityNumber``, ``body``, ``attributes``, ``traceId``,
``spanId``), so :mod:`otel_audit.export._verify` rebuilds it from a SIEM or archive copy.
Deliberately left out: ``eventName`` (some exporters drop it; ``audit.event.name`` is an
attribute and covered), ``observedTimeUnixNano`` and ``severityText`` (collectors fill or
rewrite them), resource and scope (collectors enrich resources; the stream id binds
records to one process instead).

Checkpoints: every ``checkpoint_interval`` chained events, and once at shutdown, the chain
emits its own record ``audit.event.name = audit.checkpoint`` with
``audit.checkpoint.{first_seq,last_seq,count,head,reason}`` (``head`` = link of
``last_seq``), itself chained and signed. A stream whose last record is a
``reason=shutdown`` checkpoint is provably complete.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from json.encoder import encode_basestring
from typing import Any, Final

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as PbScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbLogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource

from otel_audit import semconv
from otel_audit._catalogue import CATALOGUE, tag_attributes
from otel_audit._ids import new_event_id
from otel_audit.export._wire import attribute, int_attribute, key_head, str_attribute

PREFIX: Final = "audit.integrity."
STREAM: Final = semconv.AUDIT_INTEGRITY_STREAM
SEQ: Final = semconv.AUDIT_INTEGRITY_SEQ
PREV: Final = semconv.AUDIT_INTEGRITY_PREV
HMAC: Final = semconv.AUDIT_INTEGRITY_HMAC
_SEQ_HEAD: Final = key_head(SEQ)
_PREV_HEAD: Final = key_head(PREV)
_HMAC_HEAD: Final = key_head(HMAC)
KEY_ID: Final = semconv.AUDIT_INTEGRITY_KEY_ID
ALG: Final = semconv.AUDIT_INTEGRITY_ALG

ALG_HMAC: Final = "hmac-sha256"
ALG_DIGEST: Final = "sha256"
GENESIS: Final = "0" * 64
VERSION_TAG: Final = b"otel-audit-chain/1\n"

CHECKPOINT_EVENT: Final = "audit.checkpoint"
CP_FIRST: Final = "audit.checkpoint.first_seq"
CP_LAST: Final = "audit.checkpoint.last_seq"
CP_COUNT: Final = "audit.checkpoint.count"
CP_HEAD: Final = "audit.checkpoint.head"
CP_REASON: Final = "audit.checkpoint.reason"
_SEVERITY_INFO: Final = 9


# A JSON string literal with non-ASCII kept, as ``json.dumps(text, ensure_ascii=False)``
# writes it (the C function itself: a wrapper costs ~2 µs per record).
_q: Final = encode_basestring


def canonical_value(value: AnyValue) -> str:  # noqa: PLR0911  # one return per AnyValue kind
    """``V(value)`` of the module docstring, as its compact JSON text."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return '{"s":' + _q(value.string_value) + "}"
    if kind is None:
        return "null"
    if kind == "int_value":
        return '{"i":"%d"}' % value.int_value  # noqa: UP031  # fastest form on this hot path
    if kind == "bool_value":
        return '{"b":true}' if value.bool_value else '{"b":false}'
    if kind == "double_value":
        d = float(value.double_value)
        return '{"d":' + _q(repr(d) if math.isfinite(d) else str(d)) + "}"
    if kind == "bytes_value":
        return '{"y":"' + base64.b64encode(value.bytes_value).decode("ascii") + '"}'
    if kind == "array_value":
        return '{"a":[' + ",".join([canonical_value(v) for v in value.array_value.values]) + "]}"
    pairs = [(kv.key, canonical_value(kv.value)) for kv in value.kvlist_value.values]
    pairs.sort(key=_first)  # by key only: stable for repeated keys, as the definition says
    return '{"m":[' + ",".join(["[" + _q(k) + "," + v + "]" for k, v in pairs]) + "]}"


def _first(pair: tuple[str, str]) -> str:
    return pair[0]


def canonical_bytes(record: PbLogRecord) -> bytes:
    """``canonical`` of the module docstring, as UTF-8 bytes."""
    return _canonical(record)[0]


def _canonical(record: PbLogRecord) -> tuple[bytes, bool]:
    """
    The canonical bytes, and whether the record already carried integrity fields.

    Written out directly rather than through ``json.dumps(sort_keys=True)`` of nested
    dicts (a third of the chain's cost): the top-level keys are emitted in sorted order,
    every ``V`` object has a single key, and attributes sort by ``(key, V text)``, which is
    the definition's "by key, then by value".
    """
    pairs = [(kv.key, kv.value) for kv in record.attributes]
    attrs = [(k, canonical_value(v)) for k, v in pairs if not k.startswith(PREFIX)]
    attrs.sort()
    body = canonical_value(record.body) if record.HasField("body") else "null"
    text = '{"attrs":[%s],"body":%s,"sev":%d,"span":"%s","time":"%d","trace":"%s","v":1}' % (  # noqa: UP031  # see above
        ",".join(["[" + _q(k) + "," + v + "]" for k, v in attrs]),
        body,
        int(record.severity_number),
        record.span_id.hex(),
        record.time_unix_nano,
        record.trace_id.hex(),
    )
    return text.encode("utf-8", "surrogatepass"), len(attrs) != len(pairs)


def chain_message(  # noqa: PLR0917  # mirrors the documented field order
    alg: str, key_id: str, stream: str, seq: int, prev: str, canonical: bytes
) -> bytes:
    """``message`` of the module docstring."""
    head = f"{alg}\n{key_id}\n{stream}\n{seq}\n{prev}\n".encode()
    return VERSION_TAG + head + canonical


def link_of(message: bytes) -> str:
    """``link``: what the next record carries as ``prev``."""
    return hashlib.sha256(message).hexdigest()


def sign(key: bytes, message: bytes) -> str:
    """``hmac`` of the module docstring."""
    return hmac.digest(key, message, "sha256").hex()


def _add_str(attrs: Any, key: str, value: str) -> None:
    kv = attrs.add()
    kv.key = key
    kv.value.string_value = value


def _kv_str(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _kv_int(key: str, value: int) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(int_value=value))


def _tags(name: str) -> list[KeyValue]:
    """The catalogue's classification of ``name`` (ECS, OCSF), as the processor adds it."""
    event_type = CATALOGUE.get(name)
    if event_type is None:
        return []
    out = []
    for key, value in tag_attributes(event_type).items():
        if isinstance(value, int):
            out.append(_kv_int(key, value))
        elif isinstance(value, tuple):
            strings = [AnyValue(string_value=v) for v in value]
            out.append(KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=strings))))
        else:
            out.append(_kv_str(key, str(value)))
    return out


class IntegrityChain:
    """
    Chains and signs encoded records in place; one instance per process.

    Args:
        key: HMAC key; ``None`` gives an unkeyed digest chain (``alg = sha256``), which
            detects accidental damage and naive edits but not a forger who recomputes.
        key_id: written beside every HMAC so keys can rotate.
        checkpoint_interval: chained events between checkpoints (0: only at shutdown).

    Not thread-safe by design: only the export thread calls it, in delivery order.
    """

    def __init__(
        self, key: bytes | None, key_id: str = "k1", *, checkpoint_interval: int = 1000
    ) -> None:
        if checkpoint_interval < 0:
            msg = "checkpoint_interval must be >= 0"
            raise ValueError(msg)
        self._key = key
        self.key_id = key_id if key else ""
        self.alg = ALG_HMAC if key else ALG_DIGEST
        self.checkpoint_interval = checkpoint_interval
        self._new_stream()

    @classmethod
    def from_settings(cls, settings: Any) -> IntegrityChain | None:
        """The chain ``settings`` ask for, or None when integrity is switched off."""
        if not settings.integrity:
            return None
        return cls(
            settings.hmac_key,
            settings.hmac_key_id,
            checkpoint_interval=settings.checkpoint_interval,
        )

    def _new_stream(self) -> None:
        self.stream = new_event_id()
        self._fixed_fields = self._fields_of(self.stream)
        self._seq = 0
        self._head = GENESIS
        self._since_checkpoint = 0
        self._first_uncovered = 1
        self._last_resource: Any = None
        self._last_scope: Any = None

    def _fields_of(self, stream: str) -> tuple[str, bytes, bytes]:
        """The encoded integrity attributes that stay the same for a whole stream."""
        alg_fields = attribute(ALG, self.alg)
        if self._key is not None:
            alg_fields += attribute(KEY_ID, self.key_id)
        return stream, attribute(STREAM, stream), alg_fields

    def reset_after_fork(self) -> None:
        """A forked child writes its own stream; sharing one would fork the chain."""
        self._new_stream()

    @property
    def signed(self) -> bool:
        """True when records carry an HMAC."""
        return self._key is not None

    def _advance(self, canonical: bytes) -> tuple[int, str, str | None]:
        """Chain one record: its (seq, prev, hmac or None); the head moves on."""
        self._seq += 1
        seq, prev = self._seq, self._head
        message = chain_message(self.alg, self.key_id, self.stream, seq, prev, canonical)
        mac = sign(self._key, message) if self._key is not None else None
        self._head = link_of(message)
        return seq, prev, mac

    def _seal_one(self, record: PbLogRecord) -> None:
        canonical, stale = _canonical(record)
        if stale:  # drop integrity fields a caller set: only the chain writes them
            keep = [kv for kv in record.attributes if not kv.key.startswith(PREFIX)]
            del record.attributes[:]
            record.attributes.extend(keep)
        seq, prev, mac = self._advance(canonical)
        attrs = record.attributes
        _add_str(attrs, STREAM, self.stream)
        kv = attrs.add()
        kv.key = SEQ
        kv.value.int_value = seq
        _add_str(attrs, PREV, prev)
        _add_str(attrs, ALG, self.alg)
        if mac is not None:
            _add_str(attrs, KEY_ID, self.key_id)
            _add_str(attrs, HMAC, mac)

    def _checkpoint_due(self) -> PbLogRecord | None:
        """Count one chained event; the interval checkpoint when one is due."""
        self._since_checkpoint += 1
        if self.checkpoint_interval and self._since_checkpoint >= self.checkpoint_interval:
            return self._checkpoint_record("interval")
        return None

    def seal_record(
        self, record: PbLogRecord, origin: tuple[Any, Any] | None = None
    ) -> list[bytes]:
        """
        Chain one protobuf record (the SDK encoder's fallback path), in request order.

        ``origin`` is its SDK resource and scope (for the shutdown checkpoint). Returns
        its serialized message, followed by a checkpoint's when one is due.
        """
        self._seal_one(record)
        if origin is not None:
            self._last_resource, self._last_scope = origin
        out = [record.SerializeToString()]
        checkpoint = self._checkpoint_due()
        if checkpoint is not None:
            out.append(checkpoint.SerializeToString())
        return out

    def seal_encoded(
        self, message: bytes, canonical: bytes, origin: tuple[Any, Any] | None = None
    ) -> list[bytes]:
        """
        Chain one record already encoded by :mod:`otel_audit.export._wire`.

        ``message`` is its ``LogRecord`` bytes without integrity attributes and
        ``canonical`` its canonical form; ``origin`` its SDK resource and scope (for the
        shutdown checkpoint). Returns the sealed message, followed by a checkpoint's
        message when one is due, as :meth:`seal` would insert it.
        """
        seq, prev, mac = self._advance(canonical)
        fixed = self._fixed_fields
        if fixed[0] is not self.stream:
            fixed = self._fixed_fields = self._fields_of(self.stream)
        _, stream_field, alg_fields = fixed
        tail = [
            message,
            stream_field,
            int_attribute(_SEQ_HEAD, seq),
            str_attribute(_PREV_HEAD, prev),
            alg_fields,
        ]
        if mac is not None:
            tail.append(str_attribute(_HMAC_HEAD, mac))
        out = [b"".join(tail)]
        if origin is not None:
            self._last_resource, self._last_scope = origin
        checkpoint = self._checkpoint_due()
        if checkpoint is not None:
            out.append(checkpoint.SerializeToString())
        return out

    def _checkpoint_record(self, reason: str) -> PbLogRecord:
        last = self._seq
        record = PbLogRecord(
            time_unix_nano=time.time_ns(),
            observed_time_unix_nano=time.time_ns(),
            severity_number=_SEVERITY_INFO,  # type: ignore[arg-type]  # enum value as int
            severity_text="INFO",
            event_name=CHECKPOINT_EVENT,
            body=AnyValue(string_value="otel-audit integrity checkpoint"),
        )
        record.attributes.extend(
            [
                _kv_str(semconv.AUDIT_EVENT_NAME, CHECKPOINT_EVENT),
                _kv_str(semconv.EVENT_ID, new_event_id()),
                _kv_str(CP_REASON, reason),
                _kv_int(CP_FIRST, self._first_uncovered),
                _kv_int(CP_LAST, last),
                _kv_int(CP_COUNT, last - self._first_uncovered + 1),
                _kv_str(CP_HEAD, self._head),
                *_tags(CHECKPOINT_EVENT),
            ]
        )
        self._seal_one(record)
        self._first_uncovered = self._seq + 1
        self._since_checkpoint = 0
        return record

    def seal(self, request: ExportLogsServiceRequest) -> int:
        """
        Chain every record of ``request`` in order, inserting due checkpoints.

        Returns the number of checkpoint records added.
        """
        added = 0
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                inserts: list[tuple[int, PbLogRecord]] = []
                for index, record in enumerate(sl.log_records):
                    self._seal_one(record)
                    checkpoint = self._checkpoint_due()
                    if checkpoint is not None:
                        inserts.append((index, checkpoint))
                if inserts:
                    merged: list[PbLogRecord] = []
                    positions = dict(inserts)
                    for index, record in enumerate(sl.log_records):
                        merged.append(record)
                        if index in positions:
                            merged.append(positions[index])
                    del sl.log_records[:]
                    sl.log_records.extend(merged)
                    added += len(inserts)
                self._last_scope = sl.scope
            self._last_resource = rl.resource
        return added

    def final_checkpoint(self) -> ExportLogsServiceRequest | None:
        """A request holding the shutdown checkpoint, or None if nothing was chained."""
        if self._seq == 0:
            return None
        request = ExportLogsServiceRequest()
        rl = request.resource_logs.add()
        resource, scope = self._last_resource, self._last_scope
        if resource is not None and not isinstance(resource, PbResource):
            resource = _encode_resource(resource)  # an SDK resource, from seal_encoded
        if resource is not None:
            rl.resource.CopyFrom(resource)
        sl = rl.scope_logs.add()
        if scope is not None and not isinstance(scope, PbScope):
            scope = _encode_instrumentation_scope(scope)
        if scope is not None:
            sl.scope.CopyFrom(scope)
        sl.log_records.append(self._checkpoint_record("shutdown"))
        return request
