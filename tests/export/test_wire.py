"""The hand-written OTLP encoder: same message as the SDK's encoder, same canonical form as verify.

``otel_audit.export._wire`` replaces the SDK's ``encode_logs`` plus a read-back of every
value for the integrity chain. Two references decide whether it is right: the SDK's
encoder (parsed messages must be equal) and ``canonical_bytes`` of the parsed record,
which is what ``otel-audit verify`` recomputes from a SIEM's copy.

Record encoding has two implementations: the C module (``native/otlpwire``, used when
installed) and the Python reference. The tests of one record run against both; the C
module's tests skip where it is not built, except under ``OTEL_AUDIT_REQUIRE_OTLPWIRE=1``
(set by .ci/run), where a missing module fails.
"""

from __future__ import annotations

import math
import os
import struct
import sys
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum, IntEnum
from types import MappingProxyType
from typing import Any

import pytest
from _receivers import HttpReceiver
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceFlags

from otel_audit._bounded import EXPORT, needs_bounding
from otel_audit._ids import new_event_id
from otel_audit.export import IntegrityChain, OTLPHttpLogExporter, _wire, verify_files
from otel_audit.export._integrity import canonical_bytes
from otel_audit.export._wire import (
    Unencodable,
    encode_record,
    encode_record_python,
    encode_request,
    varint,
)

Encoder = Callable[[ReadableLogRecord], tuple[bytes, bytes]]


_REQUIRED = os.environ.get("OTEL_AUDIT_REQUIRE_OTLPWIRE") == "1"
# Each record-encoding test runs on both implementations.
ENCODERS = [
    pytest.param(encode_record_python, id="python"),
    pytest.param(
        encode_record,
        id="native",
        marks=pytest.mark.skipif(
            not (_wire.NATIVE or _REQUIRED),
            reason="otel_audit_otlpwire is not built (scripts/build-otlpwire.sh)",
        ),
    ),
]


def test_the_c_encoder_is_loaded_where_required() -> None:
    if not _REQUIRED:
        pytest.skip("OTEL_AUDIT_REQUIRE_OTLPWIRE is not set")
    assert _wire.NATIVE, "otel_audit_otlpwire is required but could not be loaded"
    assert encode_record is not encode_record_python


SEQ_KEY = "audit.integrity.seq"
RESOURCE = Resource.create({"service.name": "wire-test", "deployment.environment": "ci"})
SCOPE = InstrumentationScope("security", "1.0", "https://opentelemetry.io/schemas/1.30.0")

_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    _INT64,
    st.floats(allow_nan=False),
    st.sampled_from([float("inf"), float("-inf"), -0.0, 1e-300, 5e-324]),
    _TEXT,
    st.binary(max_size=24),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(_TEXT, inner, max_size=4),
    ),
    max_leaves=12,
)
# Integrity keys are the chain's to write (left out on purpose; tested on their own).
_KEYS = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(
    lambda key: not key.startswith("audit.integrity.")
)


def _record(  # noqa: PLR0917  # one argument per record field under test
    body: Any,
    attributes: dict[str, Any],
    timestamp: int | None = 1_700_000_000_123_456_789,
    severity: SeverityNumber | None = SeverityNumber.WARN,
    trace_id: int = 0x0102030405060708090A0B0C0D0E0F10,
    span_id: int = 0x1112131415161718,
    event_name: str | None = "authentication.failure",
    resource: Resource = RESOURCE,
    scope: InstrumentationScope | None = SCOPE,
) -> ReadableLogRecord:
    record = LogRecord(
        timestamp=timestamp,
        observed_timestamp=1_700_000_000_999_000_000,
        severity_text="WARN" if severity else None,
        severity_number=severity,
        body=body,
        attributes=attributes,
        event_name=event_name,
    )
    record.trace_id, record.span_id = trace_id, span_id
    record.trace_flags = TraceFlags(1) if trace_id else TraceFlags(0)
    return ReadableLogRecord(record, resource, scope)


def _ours(
    records: list[ReadableLogRecord], encode: Encoder = encode_record
) -> ExportLogsServiceRequest:
    payload, count = encode_request(records, lambda r: encode(r)[0], _as_is)
    assert count == len(records)
    return ExportLogsServiceRequest.FromString(payload)


def _as_is(message: bytes) -> list[bytes]:
    return [message]


def _only_record(request: ExportLogsServiceRequest) -> Any:
    return request.resource_logs[0].scope_logs[0].log_records[0]


@pytest.mark.parametrize("encode", ENCODERS)
class TestSameMessageAsTheSdk:
    @settings(max_examples=300, deadline=None)
    @given(body=_VALUES, attributes=st.dictionaries(_KEYS, _VALUES, max_size=8))
    def test_any_values(self, encode: Encoder, body: Any, attributes: dict[str, Any]) -> None:
        record = _record(body, attributes)
        assert _ours([record], encode) == encode_logs([record])

    @settings(max_examples=300, deadline=None)
    @given(body=_VALUES, attributes=st.dictionaries(_KEYS, _VALUES, max_size=8))
    def test_canonical_form_is_what_verify_recomputes(
        self, encode: Encoder, body: Any, attributes: dict[str, Any]
    ) -> None:
        record = _record(body, attributes)
        _, canonical = encode(record)
        assert canonical == canonical_bytes(_only_record(_ours([record], encode)))

    @pytest.mark.parametrize(
        "fields",
        [
            {"timestamp": None, "severity": None, "trace_id": 0, "span_id": 0, "event_name": None},
            {"severity": SeverityNumber.FATAL4, "timestamp": 1},
            {"scope": None},
        ],
        ids=["empty fields", "extremes", "no scope"],
    )
    def test_optional_fields(self, encode: Encoder, fields: dict[str, Any]) -> None:
        record = _record("body", {"a": 1}, **fields)
        ours = _ours([record], encode)
        assert ours == encode_logs([record])
        assert encode(record)[1] == canonical_bytes(_only_record(ours))

    def test_nan_is_encoded_like_the_sdk(self, encode: Encoder) -> None:
        record = _record(float("nan"), {"x": [float("nan")]})
        ours, theirs = _only_record(_ours([record], encode)), _only_record(encode_logs([record]))
        assert math.isnan(ours.body.double_value)
        assert ours.SerializeToString() == theirs.SerializeToString()
        assert encode(record)[1] == canonical_bytes(ours)

    def test_grouping_by_resource_and_scope(self, encode: Encoder) -> None:
        other_resource = Resource.create({"service.name": "other"})
        other_scope = InstrumentationScope("security.admin")
        records = [
            _record("1", {"n": 1}),
            _record("2", {"n": 2}, scope=other_scope),
            _record("3", {"n": 3}, resource=other_resource),
            _record("4", {"n": 4}),
            _record("5", {"n": 5}, scope=other_scope),
        ]

        def flat(request: ExportLogsServiceRequest) -> list[tuple[bytes, bytes, bytes]]:
            return [
                (
                    rl.resource.SerializeToString(),
                    sl.scope.SerializeToString(),
                    lr.body.string_value.encode(),
                )
                for rl in request.resource_logs
                for sl in rl.scope_logs
                for lr in sl.log_records
            ]

        ours, theirs = _ours(records, encode), encode_logs(records)
        assert ours == theirs
        assert [body for *_, body in flat(ours)] == [b"1", b"4", b"2", b"5", b"3"]

    def test_equal_but_distinct_resources_and_scopes_share_a_block(self, encode: Encoder) -> None:
        twin_resource = Resource.create(
            {"service.name": "wire-test", "deployment.environment": "ci"}
        )
        twin_scope = InstrumentationScope(
            "security", "1.0", "https://opentelemetry.io/schemas/1.30.0"
        )
        assert twin_resource is not RESOURCE
        assert twin_resource == RESOURCE
        records = [_record("1", {}), _record("2", {}, resource=twin_resource, scope=twin_scope)]
        ours = _ours(records, encode)
        assert ours == encode_logs(records)
        assert len(ours.resource_logs) == 1
        assert len(ours.resource_logs[0].scope_logs) == 1

    def test_one_true_and_one_point_oh_stay_apart(self, encode: Encoder) -> None:
        """The entry cache is keyed with the value's type (1 == True == 1.0 in Python)."""
        for value in (1, True, 1.0, 0, False, 0.0, -0.0, 1, True):
            record = _record("x", {"k": value})
            assert _ours([record], encode) == encode_logs([record]), value
            assert encode(record)[1] == canonical_bytes(_only_record(_ours([record], encode)))

    def test_dropped_attribute_count(self, encode: Encoder) -> None:
        record = _record("x", {})
        record.log_record.attributes = BoundedAttributes(
            maxlen=1, attributes={"a": 1, "b": 2, "c": 3, "d": 4}, immutable=False
        )
        assert record.dropped_attributes == 3
        assert _ours([record], encode) == encode_logs([record])
        assert _only_record(_ours([record], encode)).dropped_attributes_count == 3


class _Colour(str, Enum):
    RED = "red"


class _Level(IntEnum):
    HIGH = 3


class _Severity(IntEnum):
    """A severity with a value no SDK level has (the SDK never checks)."""

    HUGE = 10**18


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def _cycle() -> list[Any]:
    loop: list[Any] = ["x"]
    loop.append(loop)
    return loop


@pytest.mark.parametrize("encode", ENCODERS)
class TestRefusals:
    @pytest.mark.parametrize(
        "value",
        [
            2**63,
            -(2**63) - 1,
            object(),
            {1, 2},
            bytearray(b"x"),
            _Colour.RED,
            _Level.HIGH,
            {1: "int key"},
            range(3),
            _nested(EXPORT.max_depth + 1),
            {"k": _nested(EXPORT.max_depth)},
            _cycle(),
            list(range(EXPORT.max_items + 1)),
            {str(i): i for i in range(EXPORT.max_items + 1)},
        ],
        ids=[
            "int64 max + 1",
            "int64 min - 1",
            "object",
            "set",
            "bytearray",
            "str enum",
            "int enum",
            "non-string key",
            "other sequence",
            "too deep",
            "too deep in a mapping",
            "cycle",
            "too many items",
            "too many entries",
        ],
    )
    def test_values_that_need_bounding_are_refused(self, encode: Encoder, value: Any) -> None:
        """Exactly what the export bounds would change; the caller bounds those first."""
        assert needs_bounding(value, EXPORT)
        with pytest.raises(Unencodable):
            encode(_record("x", {"v": value}))
        with pytest.raises(Unencodable):
            encode(_record(value, {}))

    @settings(max_examples=200, deadline=None)
    @given(value=_VALUES)
    def test_refuses_only_what_needs_bounding(self, encode: Encoder, value: Any) -> None:
        try:
            encode(_record(value, {}))
        except Unencodable:
            assert needs_bounding(value, EXPORT)
        else:
            assert not needs_bounding(value, EXPORT)

    @pytest.mark.parametrize("key", [5, b"k", None], ids=["int", "bytes", "None"])
    def test_non_string_attribute_keys_are_refused(self, encode: Encoder, key: Any) -> None:
        with pytest.raises(Unencodable):
            encode(_record("x", {key: "v"}))

    def test_lone_surrogates_are_refused(self, encode: Encoder) -> None:
        with pytest.raises(UnicodeEncodeError):
            encode(_record("bad \udc80", {}))

    def test_integrity_attributes_are_left_to_the_chain(self, encode: Encoder) -> None:
        record = _record("x", {"audit.integrity.seq": 99, "audit.integrity.hmac": "f" * 64, "a": 1})
        message, canonical = encode(record)
        parsed = ExportLogsServiceRequest.FromString(
            encode_request([record], lambda _: message, _as_is)[0]
        )
        assert [kv.key for kv in _only_record(parsed).attributes] == ["a"]
        assert b"audit.integrity" not in canonical


def test_python_encoder_caches_stay_bounded() -> None:
    """Long keys and values are never kept; both caches stay within their limits."""
    _wire._KEY_CACHE.clear()
    _wire._ENTRIES.clear()
    long_key, long_value = "k" * 300, "v" * 300
    encode_record_python(_record("x", {long_key: "short", "short": long_value, "ok": "ok"}))
    assert long_key not in _wire._KEY_CACHE
    assert all(long_key not in key and long_value not in key for key in _wire._ENTRIES)
    assert ("ok", str, "ok") in _wire._ENTRIES
    for i in range(_wire._KEY_CACHE_MAX + 10):
        encode_record_python(_record("x", {f"key-{i}": [i]}))
    assert len(_wire._KEY_CACHE) <= _wire._KEY_CACHE_MAX
    for i in range(_wire._ENTRIES_MAX + 10):
        encode_record_python(_record("x", {"n": i}))
    assert len(_wire._ENTRIES) <= _wire._ENTRIES_MAX


_ODD_TEXT = st.text(
    st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from(['"', "\\", "\x00", "\x1f", "\x7f", "\u2028", "é", "\U0001f600"]),
    ),
    max_size=12,
)
_ODD_SCALARS = st.one_of(
    _SCALARS,
    _ODD_TEXT,
    st.integers(min_value=-(2**64), max_value=2**64),  # both sides of int64
    st.floats(),  # NaN included
    st.sampled_from([object(), {1, 2}, bytearray(b"x"), _Colour.RED, _Level.HIGH, "\udc80"]),
)
_ODD_VALUES = st.recursive(
    _ODD_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(
            st.one_of(_ODD_TEXT, st.integers(0, 3), st.just("audit.integrity.x")), inner, max_size=4
        ),
    ),
    max_leaves=12,
)


def _outcome(encode: Encoder, record: ReadableLogRecord) -> Any:
    try:
        return encode(record)
    except Unencodable:
        return "Unencodable"
    except UnicodeEncodeError:
        return "UnicodeEncodeError"


@pytest.mark.skipif(not (_wire.NATIVE or _REQUIRED), reason="otel_audit_otlpwire is not built")
class TestTheCEncoderMatchesThePythonOne:
    """Byte for byte, and the same refusals, on values the SDK encoder would not take either."""

    @settings(max_examples=600, deadline=None)
    @given(
        body=_ODD_VALUES,
        attributes=st.dictionaries(
            st.one_of(
                _ODD_TEXT,
                st.sampled_from(
                    ["audit.integrity.seq", "audit.integrity", "audit.integrity.\ud800", "\udc80"]
                ),
            ),
            _ODD_VALUES,
            max_size=10,
        ),
    )
    def test_same_bytes_or_same_refusal(self, body: Any, attributes: dict[str, Any]) -> None:
        record = _record(body, attributes)
        assert _outcome(encode_record, record) == _outcome(encode_record_python, record)

    @pytest.mark.parametrize(
        "fields",
        [
            {"timestamp": None, "severity": None, "trace_id": 0, "span_id": 0, "event_name": None},
            {"timestamp": 2**64 - 1, "trace_id": 2**128 - 1, "span_id": 2**64 - 1},
            {"severity": SeverityNumber.FATAL4, "event_name": "é \u2028"},
        ],
        ids=["absent", "largest", "unicode event name"],
    )
    def test_record_fields(self, fields: dict[str, Any]) -> None:
        record = _record({"k": ["v", 1, 2.5, None, b"\x00\xff"]}, {"a": True}, **fields)
        assert encode_record(record) == encode_record_python(record)

    def test_out_of_range_fields_raise(self) -> None:
        """Both refuse (the durable processor then bounds the record); the types may differ."""
        fields: dict[str, Any]
        for fields in ({"timestamp": 2**64}, {"trace_id": 2**128}, {"span_id": -1}):
            record = _record("x", {}, **fields)
            with pytest.raises((OverflowError, ValueError, struct.error)):
                encode_record_python(record)
            with pytest.raises((OverflowError, ValueError, struct.error)):
                encode_record(record)

    def test_large_values(self) -> None:
        big = {"body": "x" * 300_000, "bytes": bytes(range(256)) * 500, "é" * 70: list(range(5000))}
        record = _record("é" * 100_000, big)
        assert encode_record(record) == encode_record_python(record)

    def test_found_in_review(self) -> None:
        """Cases a review found where the two differed (or C read past a buffer)."""
        cases = [
            _record("b", {}, severity=_Severity.HUGE),  # 19 digits overran a text buffer
            _record("b", {"audit.integrity.\ud800": 1, "a": 1}),  # ours: skipped, not encoded
        ]
        for record in cases:
            assert encode_record(record) == encode_record_python(record)
        encode_record_python(_record("b", {"red": "x"}))  # an equal str key in the cache
        for encode in (encode_record, encode_record_python):
            with pytest.raises(Unencodable):
                encode(_record("b", {_Colour.RED: "x"}))

    def test_attribute_mappings_that_are_not_plain_dicts(self) -> None:
        ordered = OrderedDict([("a", 1), ("b", 2), ("c", 3)])
        ordered.move_to_end("a")
        for attributes in (MappingProxyType({"a": 1, "b": [2]}), ordered):
            record = _record("b", {})
            record.log_record.attributes = attributes  # type: ignore[assignment]
            assert encode_record(record) == encode_record_python(record)

    def test_no_utf8_copy_is_left_in_non_ascii_strings(self) -> None:
        body = "é" * 100_000
        before = sys.getsizeof(body)
        encode_record(_record(body, {"ü" * 10: "ö" * 1000}))
        assert sys.getsizeof(body) == before

    def test_misuse_gets_clear_errors(self) -> None:
        import otel_audit_otlpwire  # noqa: PLC0415

        with pytest.raises(TypeError, match="11 arguments"):
            otel_audit_otlpwire.encode_record(1, 2)  # type: ignore[call-arg]
        args: list[Any] = [0, 0, None, "b", None, 0, 0, b"", b"", 0, None]
        bad_attributes = [*args[:4], ["not", "a", "dict"], *args[5:]]
        with pytest.raises(TypeError, match="must be a dict"):
            otel_audit_otlpwire.encode_record(*bad_attributes)
        bad_trace = [*args[:7], b"short", *args[8:]]
        with pytest.raises(ValueError, match="16 / 8 bytes"):
            otel_audit_otlpwire.encode_record(*bad_trace)
        with pytest.raises(TypeError, match="Exception subclass"):
            otel_audit_otlpwire.configure(int, 1, 1, "x")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**63 - 1, 2**64 - 1])
def test_varint(value: int) -> None:
    request = ExportLogsServiceRequest.FromString(
        b"\x0a" + varint(len(_scope_with_dropped(value))) + _scope_with_dropped(value)
    )
    assert request.resource_logs[0].resource.dropped_attributes_count == value & 0xFFFFFFFF


def _scope_with_dropped(value: int) -> bytes:
    """A ResourceLogs whose resource has dropped_attributes_count (uint32) = value."""
    resource = b"\x10" + varint(value)
    return b"\x0a" + varint(len(resource)) + resource


class TestChainOverEncodedRecords:
    @staticmethod
    def _both(interval: int, records: list[ReadableLogRecord]) -> tuple[list[Any], list[Any]]:
        wire_chain = IntegrityChain(b"k" * 32, "k1", checkpoint_interval=interval)
        pb_chain = IntegrityChain(b"k" * 32, "k1", checkpoint_interval=interval)
        pb_chain.stream = wire_chain.stream

        def seal(item: tuple[bytes, bytes]) -> list[bytes]:
            return wire_chain.seal_encoded(*item)

        wire = ExportLogsServiceRequest.FromString(encode_request(records, encode_record, seal)[0])
        reference = encode_logs(records)
        pb_chain.seal(reference)
        return (
            list(wire.resource_logs[0].scope_logs[0].log_records),
            list(reference.resource_logs[0].scope_logs[0].log_records),
        )

    def test_same_fields_as_the_protobuf_path(self) -> None:
        """seal_encoded and seal give identical records for the same chain state."""
        records = [_record(f"event {i}", {"i": i, "nested": {"k": [i, "v"]}}) for i in range(25)]
        ours, theirs = self._both(0, records)
        assert len(ours) == 25
        assert ours == theirs

    def test_checkpoints_land_where_the_protobuf_path_puts_them(self) -> None:
        records = [_record(f"event {i}", {"i": i}) for i in range(25)]
        ours, theirs = self._both(10, records)

        def shape(lrs: list[Any]) -> list[tuple[str, int]]:
            return [
                (
                    lr.event_name,
                    next(
                        kv.value.int_value
                        for kv in lr.attributes
                        if kv.key == "audit.integrity.seq"
                    ),
                )
                for lr in lrs
            ]

        assert shape(ours) == shape(theirs)
        assert [i for i, (name, _) in enumerate(shape(ours)) if name == "audit.checkpoint"] == [
            10,
            21,
        ]

    def test_unsigned_chain(self) -> None:
        chain = IntegrityChain(None, checkpoint_interval=0)
        message, canonical = encode_record(_record("x", {}))
        (sealed,) = chain.seal_encoded(message, canonical)
        request = ExportLogsServiceRequest.FromString(
            encode_request([_record("x", {})], lambda _: sealed, _as_is)[0]
        )
        keys = [kv.key for kv in _only_record(request).attributes]
        assert keys == [
            "audit.integrity.stream",
            "audit.integrity.seq",
            "audit.integrity.prev",
            "audit.integrity.alg",
        ]

    def test_final_checkpoint_carries_the_sdk_resource(self) -> None:
        chain = IntegrityChain(b"k" * 32, "k1", checkpoint_interval=0)
        record = _record("x", {})
        message, canonical = encode_record(record)
        chain.seal_encoded(message, canonical, (record.resource, record.instrumentation_scope))
        final = chain.final_checkpoint()
        assert final is not None
        resource_logs = final.resource_logs[0]
        names = {kv.key: kv.value.string_value for kv in resource_logs.resource.attributes}
        assert names["service.name"] == "wire-test"
        assert resource_logs.scope_logs[0].scope.name == "security"


class TestThroughTheDurableProcessor:
    """The real processor, a real receiver, and ``otel-audit verify`` over what arrived."""

    def test_interleaved_scopes_resources_and_fallbacks_verify_clean(
        self, make_pipeline: Any, tmp_path: Any
    ) -> None:
        with HttpReceiver() as receiver:
            pipe = make_pipeline(
                OTLPHttpLogExporter(receiver.endpoint, timeout_s=5),
                integrity=IntegrityChain(b"k" * 32, "k1", checkpoint_interval=4),
                max_export_batch_size=512,
                schedule_delay_millis=60_000,  # one batch holds everything below
            )
            other = LoggerProvider(resource=Resource.create({"service.name": "other"}))
            other.add_log_record_processor(pipe.processor)
            loggers = [
                pipe.provider.get_logger("security"),
                pipe.provider.get_logger("otel_audit"),
                other.get_logger("security"),
            ]
            for i in range(30):
                attributes: dict[str, Any] = {
                    "audit.event.name": "authentication.failure",
                    "event.id": new_event_id(),
                    "i": i,
                }
                if i % 7 == 3:  # needs the export bounds: the SDK encoder's path
                    attributes["odd"] = {"k": 2**70}  # beyond int64: bounded to text
                loggers[i % 3].emit(
                    body=f"event {i}",
                    severity_number=SeverityNumber.WARN,
                    event_name="authentication.failure",
                    attributes=attributes,
                )
            assert pipe.processor.force_flush(10_000)
            assert pipe.processor.stats["sanitized"] == 4  # i = 3, 10, 17, 24
            pipe.provider.shutdown()
            path = tmp_path / "archive.jsonl"
            receiver.write_otlp_json(path)
        report = verify_files([path], key=b"k" * 32, key_id="k1")
        assert [f for f in report.findings if f.severity == "error"] == []
        received = ExportLogsServiceRequest()
        for request in receiver.requests:
            received.MergeFrom(request)
        bodies = [
            lr.body.string_value
            for rl in received.resource_logs
            for sl in rl.scope_logs
            for lr in sl.log_records
            if lr.event_name != "audit.checkpoint"
        ]
        assert sorted(bodies) == sorted(f"event {i}" for i in range(30))

    def test_a_batch_the_encoder_cannot_build_is_counted_and_kept(
        self, make_pipeline: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Not silently lost: counted as dropped and written to the last-resort file."""

        def broken(resource: Any) -> bytes:
            raise RuntimeError("resource encoding broke")

        monkeypatch.setattr("otel_audit.export._wire._resource_bytes", broken)
        with HttpReceiver() as receiver:
            pipe = make_pipeline(OTLPHttpLogExporter(receiver.endpoint, timeout_s=5))
            pipe.emit(3)
            pipe.processor.force_flush(5000)
            assert receiver.requests == []
        assert pipe.processor.stats.dropped == {"encode_error": 3}
        kept = (tmp_path / "last-resort.jsonl").read_text().splitlines()
        assert len(kept) == 3
        assert all('"encode_error"' in line for line in kept)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 2**40, 2**63 - 1, -1, -(2**63)])
def test_the_chains_int_attribute_is_attribute(value: int) -> None:
    assert _wire.int_attribute(_wire.key_head("audit.integrity.seq"), value) == _wire.attribute(
        "audit.integrity.seq", value
    )


@pytest.mark.parametrize("value", ["", "f" * 64, "é" * 200])
def test_the_chains_str_attribute_is_attribute(value: str) -> None:
    key = "k" * 300  # a key longer than one varint byte
    assert _wire.str_attribute(_wire.key_head(key), value) == _wire.attribute(key, value)
