"""The hand-written OTLP encoder: same message as the SDK's encoder, same canonical form as verify.

``otel_audit.export._wire`` replaces the SDK's ``encode_logs`` plus a read-back of every
value for the integrity chain. Two references decide whether it is right: the SDK's
encoder (parsed messages must be equal) and ``canonical_bytes`` of the parsed record,
which is what ``otel-audit verify`` recomputes from a SIEM's copy.
"""

from __future__ import annotations

import dataclasses
import math
from enum import Enum, IntEnum
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
from otel_audit.export import IntegrityChain, OTLPHttpLogExporter, verify_files
from otel_audit.export._integrity import canonical_bytes
from otel_audit.export._wire import Unencodable, encode_record, encode_request, varint

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


def _ours(records: list[ReadableLogRecord]) -> ExportLogsServiceRequest:
    payload, count = encode_request(records, lambda r: encode_record(r)[0], _as_is)
    assert count == len(records)
    return ExportLogsServiceRequest.FromString(payload)


def _as_is(message: bytes) -> list[bytes]:
    return [message]


def _only_record(request: ExportLogsServiceRequest) -> Any:
    return request.resource_logs[0].scope_logs[0].log_records[0]


class TestSameMessageAsTheSdk:
    @settings(max_examples=300, deadline=None)
    @given(body=_VALUES, attributes=st.dictionaries(_KEYS, _VALUES, max_size=8))
    def test_any_values(self, body: Any, attributes: dict[str, Any]) -> None:
        record = _record(body, attributes)
        assert _ours([record]) == encode_logs([record])

    @settings(max_examples=300, deadline=None)
    @given(body=_VALUES, attributes=st.dictionaries(_KEYS, _VALUES, max_size=8))
    def test_canonical_form_is_what_verify_recomputes(
        self, body: Any, attributes: dict[str, Any]
    ) -> None:
        record = _record(body, attributes)
        _, canonical = encode_record(record)
        assert canonical == canonical_bytes(_only_record(_ours([record])))

    @pytest.mark.parametrize(
        "fields",
        [
            {"timestamp": None, "severity": None, "trace_id": 0, "span_id": 0, "event_name": None},
            {"severity": SeverityNumber.FATAL4, "timestamp": 1},
            {"scope": None},
        ],
        ids=["empty fields", "extremes", "no scope"],
    )
    def test_optional_fields(self, fields: dict[str, Any]) -> None:
        record = _record("body", {"a": 1}, **fields)
        ours = _ours([record])
        assert ours == encode_logs([record])
        assert encode_record(record)[1] == canonical_bytes(_only_record(ours))

    def test_nan_is_encoded_like_the_sdk(self) -> None:
        record = _record(float("nan"), {"x": [float("nan")]})
        ours, theirs = _only_record(_ours([record])), _only_record(encode_logs([record]))
        assert math.isnan(ours.body.double_value)
        assert ours.SerializeToString() == theirs.SerializeToString()
        assert encode_record(record)[1] == canonical_bytes(ours)

    def test_grouping_by_resource_and_scope(self) -> None:
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

        ours, theirs = _ours(records), encode_logs(records)
        assert ours == theirs
        assert [body for *_, body in flat(ours)] == [b"1", b"4", b"2", b"5", b"3"]

    def test_equal_but_distinct_resources_and_scopes_share_a_block(self) -> None:
        twin_resource = Resource.create(
            {"service.name": "wire-test", "deployment.environment": "ci"}
        )
        twin_scope = InstrumentationScope(
            "security", "1.0", "https://opentelemetry.io/schemas/1.30.0"
        )
        assert twin_resource is not RESOURCE
        assert twin_resource == RESOURCE
        records = [_record("1", {}), _record("2", {}, resource=twin_resource, scope=twin_scope)]
        ours = _ours(records)
        assert ours == encode_logs(records)
        assert len(ours.resource_logs) == 1
        assert len(ours.resource_logs[0].scope_logs) == 1

    def test_one_true_and_one_point_oh_stay_apart(self) -> None:
        """The entry cache is keyed with the value's type (1 == True == 1.0 in Python)."""
        for value in (1, True, 1.0, 0, False, 0.0, -0.0, 1, True):
            record = _record("x", {"k": value})
            assert _ours([record]) == encode_logs([record]), value
            assert encode_record(record)[1] == canonical_bytes(_only_record(_ours([record])))

    def test_long_keys_and_values_are_not_kept(self) -> None:
        from otel_audit.export import _wire  # noqa: PLC0415

        _wire._KEY_CACHE.clear()
        _wire._ENTRIES.clear()
        long_key, long_value = "k" * 300, "v" * 300
        encode_record(_record("x", {long_key: "short", "short": long_value, "ok": "ok"}))
        assert long_key not in _wire._KEY_CACHE
        assert all(long_key not in key and long_value not in key for key in _wire._ENTRIES)
        assert ("ok", str, "ok") in _wire._ENTRIES
        for i in range(_wire._KEY_CACHE_MAX + 10):
            encode_record(_record("x", {f"key-{i}": [i]}))
        assert len(_wire._KEY_CACHE) <= _wire._KEY_CACHE_MAX
        for i in range(_wire._ENTRIES_MAX + 10):
            encode_record(_record("x", {"n": i}))
        assert len(_wire._ENTRIES) <= _wire._ENTRIES_MAX

    def test_dropped_attribute_count(self) -> None:
        record = _record("x", {})
        record.log_record.attributes = BoundedAttributes(
            maxlen=1, attributes={"a": 1, "b": 2, "c": 3, "d": 4}, immutable=False
        )
        assert record.dropped_attributes == 3
        assert _ours([record]) == encode_logs([record])
        assert _only_record(_ours([record])).dropped_attributes_count == 3


class _Colour(str, Enum):
    RED = "red"


class _Level(IntEnum):
    HIGH = 3


# The real export bounds (depth 32, 10,000 items) with a smaller depth for the test.
_SMALL_BOUNDS = dataclasses.replace(EXPORT, max_depth=3)


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
            [[[["deep"]]]],
            list(range(10_001)),
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
            "too many items",
        ],
    )
    def test_values_that_need_bounding_are_refused(
        self, value: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Exactly what the export bounds would change; the caller bounds those first."""
        monkeypatch.setattr("otel_audit.export._wire.EXPORT", _SMALL_BOUNDS)
        assert needs_bounding(value, _SMALL_BOUNDS)
        with pytest.raises(Unencodable):
            encode_record(_record("x", {"v": value}))
        with pytest.raises(Unencodable):
            encode_record(_record(value, {}))

    @settings(max_examples=200, deadline=None)
    @given(value=_VALUES)
    def test_refuses_only_what_needs_bounding(self, value: Any) -> None:
        try:
            encode_record(_record(value, {}))
        except Unencodable:
            assert needs_bounding(value, EXPORT)
        else:
            assert not needs_bounding(value, EXPORT)

    @pytest.mark.parametrize("key", [5, b"k", None], ids=["int", "bytes", "None"])
    def test_non_string_attribute_keys_are_refused(self, key: Any) -> None:
        with pytest.raises(Unencodable):
            encode_record(_record("x", {key: "v"}))

    def test_lone_surrogates_are_refused(self) -> None:
        with pytest.raises(UnicodeEncodeError):
            encode_record(_record("bad \udc80", {}))

    def test_integrity_attributes_are_left_to_the_chain(self) -> None:
        record = _record("x", {"audit.integrity.seq": 99, "audit.integrity.hmac": "f" * 64, "a": 1})
        message, canonical = encode_record(record)
        parsed = ExportLogsServiceRequest.FromString(
            encode_request([record], lambda _: message, _as_is)[0]
        )
        assert [kv.key for kv in _only_record(parsed).attributes] == ["a"]
        assert b"audit.integrity" not in canonical


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
