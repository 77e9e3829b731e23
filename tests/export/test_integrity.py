"""Integrity chain and ``otel-audit verify``: tamper with an exported file in every way."""

from __future__ import annotations

import argparse
import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest
from _receivers import HttpReceiver, free_port
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbLogRecord

from otel_audit.export import IntegrityChain, OTLPHttpLogExporter, verify_files
from otel_audit.export._cli import register
from otel_audit.export._integrity import canonical_bytes

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(name="exported")
def _exported(make_pipeline, tmp_path: Path) -> Path:
    """45 chained, signed events (checkpoint every 10) written as the collector would."""
    with HttpReceiver() as receiver:
        pipe = make_pipeline(
            OTLPHttpLogExporter(receiver.endpoint, timeout_s=5),
            integrity=IntegrityChain(KEY, "k1", checkpoint_interval=10),
            max_export_batch_size=5,
            schedule_delay_millis=1,
        )
        for i in range(45):
            pipe.emit(1, i=i, f=0.1 * i, nested={"b": b"\x00\xff", "l": [1, "x", 2.5]})
            assert pipe.processor.force_flush(5000)
        pipe.provider.shutdown()
        path = tmp_path / "archive.jsonl"
        receiver.write_otlp_json(path)
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, lines: list[dict]) -> Path:
    out = path.with_name("tampered.jsonl")
    out.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    return out


def _records(lines: list[dict]) -> list[dict]:
    return [
        lr
        for obj in lines
        for rl in obj["resourceLogs"]
        for sl in rl["scopeLogs"]
        for lr in sl["logRecords"]
    ]


def _kinds(report) -> set[str]:
    return {f.kind for f in report.findings if f.severity == "error"}


class TestVerify:
    def test_untouched_export_verifies(self, exported: Path):
        """The file as exported verifies, including checkpoints and the closing checkpoint."""
        report = verify_files([exported], key=KEY, key_id="k1")
        assert report.ok, [str(f) for f in report.findings]
        assert report.chained == 45 + 4 + 1
        assert not any(f.kind == "open_tail" for f in report.findings)

    def test_checkpoints_are_classified_like_every_event(self, exported: Path):
        """Checkpoint records carry the catalogue's OCSF/ECS tags, so SIEMs file them."""
        checkpoints = [
            r for r in _records(_lines(exported)) if r.get("eventName") == "audit.checkpoint"
        ]
        assert checkpoints
        for record in checkpoints:
            attrs = {kv["key"]: kv["value"] for kv in record["attributes"]}
            assert attrs["audit.ocsf.class_uid"] == {"intValue": "6002"}
            assert attrs["audit.category"] == {"stringValue": "audit"}

    def test_modified_body_is_detected(self, exported: Path):
        """Changing one record's body breaks its HMAC."""
        lines = _lines(exported)
        _records(lines)[7]["body"] = {"stringValue": "login succeeded"}
        assert "modified" in _kinds(verify_files([_write(exported, lines)], key=KEY, key_id="k1"))

    def test_modified_attribute_detected_without_key(self, exported: Path):
        """Without the key, the digest chain still exposes a naive edit."""
        lines = _lines(exported)
        for kv in _records(lines)[3]["attributes"]:
            if kv["key"] == "user.id":
                kv["value"] = {"stringValue": "someone-else"}
        report = verify_files([_write(exported, lines)], key=None)
        assert "modified" in _kinds(report)

    def test_deleted_record_is_detected(self, exported: Path):
        """Removing a record (a whole exported request) leaves a sequence gap."""
        lines = _lines(exported)
        lines.pop(5)
        assert "deleted" in _kinds(verify_files([_write(exported, lines)], key=KEY, key_id="k1"))

    def test_inserted_forgery_is_detected(self, exported: Path):
        """A copy of a record with new content and the same sequence number is an insertion."""
        lines = _lines(exported)
        records = lines[1]["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        forged = json.loads(json.dumps(records[0]))
        forged["body"] = {"stringValue": "admin granted"}
        records.insert(1, forged)
        kinds = _kinds(verify_files([_write(exported, lines)], key=KEY, key_id="k1"))
        assert "inserted" in kinds

    def test_unchained_security_event_is_an_insertion(self, exported: Path):
        """A security event without integrity fields cannot have come from the pipeline."""
        lines = _lines(exported)
        records = lines[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        forged = json.loads(json.dumps(records[0]))
        forged["attributes"] = [
            kv for kv in forged["attributes"] if not kv["key"].startswith("audit.integrity.")
        ]
        records.append(forged)
        assert "inserted" in _kinds(verify_files([_write(exported, lines)], key=KEY, key_id="k1"))

    def test_reordering_is_detected(self, exported: Path):
        """Swapping two exported requests is reported (an error unless allowed)."""
        lines = _lines(exported)
        lines[1], lines[2] = lines[2], lines[1]
        path = _write(exported, lines)
        assert "reordered" in _kinds(verify_files([path], key=KEY, key_id="k1"))
        relaxed = verify_files([path], key=KEY, key_id="k1", allow_reorder=True)
        assert relaxed.ok

    def test_duplicates_from_at_least_once_are_fine(self, exported: Path):
        """The same request delivered twice is a note, not a problem."""
        lines = _lines(exported)
        lines.append(lines[-2])
        report = verify_files([_write(exported, lines)], key=KEY, key_id="k1", allow_reorder=True)
        assert report.ok
        assert any(f.kind == "duplicate" for f in report.findings)

    def test_truncated_tail_is_flagged(self, exported: Path):
        """Dropping the closing checkpoint: the tail can no longer be proven complete."""
        lines = _lines(exported)[:-1]
        report = verify_files([_write(exported, lines)], key=KEY, key_id="k1")
        assert any(f.kind == "open_tail" for f in report.findings)

    def test_checkpoint_exposes_tampering_of_covered_range(self, exported: Path):
        """Deleting records just before a checkpoint is caught through its head."""
        lines = _lines(exported)
        recs = _records(lines)
        cp_index = next(i for i, r in enumerate(recs) if r.get("eventName") == "audit.checkpoint")
        for obj in lines:
            for rl in obj["resourceLogs"]:
                for sl in rl["scopeLogs"]:
                    if recs[cp_index - 1] in sl["logRecords"]:
                        sl["logRecords"].remove(recs[cp_index - 1])
        assert "deleted" in _kinds(verify_files([_write(exported, lines)], key=KEY, key_id="k1"))

    def test_wrong_key_fails(self, exported: Path):
        """Verifying with another key reports every record as modified."""
        report = verify_files([exported], key=b"x" * 32, key_id="k1")
        assert "modified" in _kinds(report)


class TestVerifyCli:
    def _run(self, argv: list[str]) -> int:
        parser = argparse.ArgumentParser(prog="otel-audit")
        register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(argv)
        return args.func(args)

    def test_exit_codes(self, exported: Path, monkeypatch, capsys):
        """0 for a clean file, 1 for a tampered one; the key comes from the environment."""
        monkeypatch.setenv("OTEL_PYTHON_AUDIT_HMAC_KEY", "hex:" + KEY.hex())
        assert self._run(["verify", str(exported)]) == 0
        assert "OK:" in capsys.readouterr().out
        lines = _lines(exported)
        _records(lines)[0]["body"] = {"stringValue": "x"}
        assert self._run(["verify", str(_write(exported, lines))]) == 1
        assert "FAILED" in capsys.readouterr().out

    def test_missing_file_is_a_usage_error(self, tmp_path: Path):
        """A missing file is exit code 2, not a traceback."""
        assert self._run(["verify", str(tmp_path / "nope.jsonl")]) == 2

    def test_spool_stats_and_replay(self, make_pipeline, tmp_path: Path, monkeypatch, capsys):
        """An operator sees what is spooled and replays it to the configured endpoint."""
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}/v1/logs"
        pipe = make_pipeline(
            OTLPHttpLogExporter(endpoint, timeout_s=0.5), shutdown_timeout_millis=200
        )
        ids = pipe.emit(30)
        pipe.processor.force_flush(300)
        pipe.provider.shutdown()
        spool = tmp_path / "spool"
        assert self._run(["spool", "stats", "--spool-dir", str(spool), "--json"]) == 0
        stats = json.loads(capsys.readouterr().out)
        assert sum(p["pending_records"] for p in stats["processes"]) == 30
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", endpoint)
        with HttpReceiver(port) as receiver:
            assert self._run(["spool", "replay", "--spool-dir", str(spool)]) == 0
            assert set(ids) <= set(receiver.event_ids())
        assert not list(spool.glob("p*/*.seg"))


def _reference_value(value: AnyValue) -> Any:  # noqa: PLR0911  # the definition, one kind a line
    """``V(value)`` exactly as the module docstring defines it, via ``json.dumps``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return {"s": value.string_value}
    if kind == "bool_value":
        return {"b": value.bool_value}
    if kind == "int_value":
        return {"i": str(value.int_value)}
    if kind == "double_value":
        d = float(value.double_value)
        return {"d": repr(d) if math.isfinite(d) else str(d)}
    if kind == "bytes_value":
        return {"y": base64.b64encode(value.bytes_value).decode("ascii")}
    if kind == "array_value":
        return {"a": [_reference_value(v) for v in value.array_value.values]}
    pairs = [[kv.key, _reference_value(kv.value)] for kv in value.kvlist_value.values]
    return {"m": sorted(pairs, key=lambda p: p[0])}


def _reference_canonical(record: PbLogRecord) -> bytes:
    def dumps(obj: Any) -> str:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    attrs = [
        [kv.key, _reference_value(kv.value)]
        for kv in record.attributes
        if not kv.key.startswith("audit.integrity.")
    ]
    attrs.sort(key=lambda p: (p[0], dumps(p[1])))
    obj = {
        "v": 1,
        "time": str(record.time_unix_nano),
        "sev": int(record.severity_number),
        "body": _reference_value(record.body) if record.HasField("body") else None,
        "trace": record.trace_id.hex(),
        "span": record.span_id.hex(),
        "attrs": attrs,
    }
    return dumps(obj).encode("utf-8", "surrogatepass")


def _av(value: Any) -> AnyValue:  # noqa: PLR0911  # one kind a line
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_av(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=_kvs(value.items())))
    return AnyValue()


def _kvs(items: Any) -> list[KeyValue]:
    return [KeyValue(key=k, value=_av(v)) for k, v in items]


class TestCanonicalForm:
    @pytest.mark.parametrize(
        ("body", "attrs"),
        [
            ("plain", [("b", 1), ("a", "x")]),
            (None, []),
            ({"z": 1, "a": [1.5, True, b"\x00\xff"]}, [("n", {"y": None, "x": 'é\u2028"\\'})]),
            (float("nan"), [("inf", float("inf")), ("neg", float("-inf")), ("zero", -0.0)]),
            ([], [("dup", "b"), ("dup", "a"), ("dup", 2), ("audit.integrity.seq", 9)]),
            ("ünïcödé \U0001f600", [("k\u00e9y", "tab\tnl\n"), ("big", -(2**63))]),
            ("kv", [("m", {"k": 1, "a": {"k": [None, False]}})]),
        ],
    )
    def test_fast_writer_matches_the_definition(self, body, attrs):
        """The hand-written canonical JSON equals json.dumps of the documented structure."""
        record = PbLogRecord(
            time_unix_nano=1_700_000_000_123_456_789,
            severity_number=13,  # type: ignore[arg-type]  # enum value as int
            trace_id=bytes(range(16)),
            span_id=bytes(range(8)),
            attributes=_kvs(attrs),
        )
        if body is not None:
            record.body.CopyFrom(_av(body))
        assert _reference_canonical(record) == canonical_bytes(record)
