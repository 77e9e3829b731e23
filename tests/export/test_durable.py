"""The durable path end to end against real receivers on 127.0.0.1."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from _receivers import Fault, HttpReceiver, wait_until
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from otel_audit import semconv
from otel_audit._settings import AuditSettings
from otel_audit.export import DurableLogRecordProcessor, IntegrityChain, OTLPHttpLogExporter


class TestHealthy:
    def test_all_security_events_arrive_over_http(self, make_pipeline):
        """100 security events reach a healthy OTLP/HTTP receiver, ordinary logs do not."""
        with HttpReceiver() as receiver:
            pipe = make_pipeline(OTLPHttpLogExporter(receiver.endpoint, timeout_s=5))
            ids = pipe.emit(100)
            pipe.emit_ordinary(10)
            assert pipe.processor.force_flush(10_000)
            assert sorted(ids) == sorted(receiver.event_ids())
            assert pipe.processor.stats["exported"] == 100
            assert pipe.processor.stats["dropped"] == 0

    def test_plain_sdk_exporter_gets_decoded_records(self, make_pipeline):
        """Any LogRecordExporter works: records are rebuilt from the spooled protobuf."""
        exporter = InMemoryLogRecordExporter()
        pipe = make_pipeline(exporter)
        ids = pipe.emit(5, **{"n.int": 7, "n.float": 1.5, "n.list": ["a", "b"], "n.bool": True})
        assert pipe.processor.force_flush(10_000)
        got = exporter.get_finished_logs()
        assert [r.log_record.attributes[semconv.EVENT_ID] for r in got] == ids
        first = got[0].log_record
        assert first.attributes["n.int"] == 7
        assert first.attributes["n.float"] == 1.5
        assert list(first.attributes["n.list"]) == ["a", "b"]
        assert first.event_name == "authentication.failure"
        assert got[0].resource.attributes["service.name"] == "export-tests"

    def test_spool_is_empty_after_delivery(self, make_pipeline, tmp_path: Path):
        """Segments are deleted once everything in them was delivered."""
        with HttpReceiver() as receiver:
            pipe = make_pipeline(OTLPHttpLogExporter(receiver.endpoint, timeout_s=5))
            pipe.emit(50)
            assert pipe.processor.force_flush(10_000)
        segments = list((tmp_path / "spool").glob("p*/*.seg"))
        assert segments == []

    def test_from_settings(self, tmp_path: Path):
        """from_settings wires spool, bounds, policy and the integrity chain from settings."""
        settings = AuditSettings(spool_dir=tmp_path / "s", queue_size=10, hmac_key=b"k" * 32)
        processor = DurableLogRecordProcessor.from_settings(InMemoryLogRecordExporter(), settings)
        try:
            assert isinstance(processor._integrity, IntegrityChain)
            assert processor._queue_size == 10
            assert processor._integrity.signed
        finally:
            processor.shutdown()


class _Keep(LogRecordProcessor):
    """Keeps the records it sees, so a test can change one after the durable path took it."""

    def __init__(self) -> None:
        self.seen: list[ReadWriteLogRecord] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.seen.append(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class TestWhatIsExported:
    def test_the_record_as_it_stood_when_the_durable_path_took_it(self, make_pipeline):
        """
        Without a pre_export step, on_emit encodes the record at once: a processor (or
        the application) that changes it later does not change the audit record.
        """
        exporter = InMemoryLogRecordExporter()
        pipe = make_pipeline(exporter)
        keep = _Keep()
        pipe.provider.add_log_record_processor(keep)  # runs after the durable path
        [event_id] = pipe.emit(1, note="original")
        [record] = keep.seen
        record.log_record.body = "changed later"
        record.log_record.attributes = {"note": "changed later"}
        assert pipe.processor.force_flush(10_000)
        [got] = exporter.get_finished_logs()
        assert got.log_record.body.startswith("login failed #")
        assert got.log_record.attributes["note"] == "original"
        assert got.log_record.attributes[semconv.EVENT_ID] == event_id

    def test_each_record_keeps_its_own_scope_beyond_the_origin_table(self, make_pipeline):
        """Queued bytes name their (resource, scope) by index; past 256 pairs, directly."""
        exporter = InMemoryLogRecordExporter()
        pipe = make_pipeline(exporter)
        for i in range(300):
            pipe.provider.get_logger(f"scope.{i}").emit(
                body=f"event {i}",
                event_name="authentication.failure",
                attributes={semconv.AUDIT_EVENT_NAME: "authentication.failure"},
            )
        assert pipe.processor.force_flush(10_000)
        got = {
            r.log_record.body: r.instrumentation_scope.name for r in exporter.get_finished_logs()
        }
        assert got == {f"event {i}": f"scope.{i}" for i in range(300)}

    def test_with_a_pre_export_step_it_sees_the_records_themselves(self, make_pipeline):
        """Tier 2 runs on the intake thread over the queued records, before encoding."""
        seen: list[str] = []

        def pre_export(batch):
            for record in batch:
                seen.append(record.log_record.attributes[semconv.EVENT_ID])
                record.log_record.body = "rewritten by pre_export"

        exporter = InMemoryLogRecordExporter()
        pipe = make_pipeline(exporter, pre_export=pre_export)
        ids = pipe.emit(3)
        assert pipe.processor.force_flush(10_000)
        assert seen == ids
        bodies = {r.log_record.body for r in exporter.get_finished_logs()}
        assert bodies == {"rewritten by pre_export"}


class _RaisingOnItems(Mapping[str, Any]):
    """An attribute mapping that answers membership but raises when its items are read."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def items(self) -> Any:
        raise RuntimeError("items")


class _SetAttributes(_Keep):
    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        log_record.log_record.attributes = _RaisingOnItems(dict(log_record.log_record.attributes))


def _last_resort(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "last-resort.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class TestNothingLostUncounted:
    def test_an_event_still_encoding_when_shutdown_ends_is_counted_and_kept(
        self, make_pipeline, tmp_path: Path
    ):
        """shutdown() collected the queue's leftovers before this event reached the queue."""
        pipe = make_pipeline(InMemoryLogRecordExporter())
        processor = pipe.processor
        encode = processor._encode_early

        def slow_encode(record, origins):
            stopper = threading.Thread(target=processor.shutdown)
            stopper.start()
            stopper.join(10)
            return encode(record, origins)

        processor._encode_early = slow_encode
        pipe.emit(1)
        assert processor.stats.dropped == {"shutdown": 1}
        assert [line["otel_audit_last_resort"] for line in _last_resort(tmp_path)] == ["shutdown"]

    def test_a_mapping_that_raises_when_read_is_counted_and_kept(self, make_pipeline, tmp_path):
        """The encoders and the sanitizer fail; the record goes to the last resort."""
        exporter = InMemoryLogRecordExporter()
        durable = make_pipeline(exporter).processor
        provider = LoggerProvider(shutdown_on_exit=False)
        provider.add_log_record_processor(_SetAttributes())
        provider.add_log_record_processor(durable)
        provider.get_logger("t").emit(
            body="hostile", attributes={semconv.AUDIT_EVENT_NAME: "authentication.failure"}
        )
        assert durable.force_flush(5_000)
        assert exporter.get_finished_logs() == ()
        assert durable.stats.dropped == {"encode_error": 1}
        assert [line["otel_audit_last_resort"] for line in _last_resort(tmp_path)] == [
            "encode_error"
        ]

    def test_a_batch_with_an_entry_that_cannot_be_decoded_keeps_the_others(
        self, make_pipeline, tmp_path, monkeypatch
    ):
        """When a batch fails, each entry is decoded for the last resort on its own."""

        def broken(resource: Any) -> bytes:
            raise RuntimeError("resource encoding broke")

        monkeypatch.setattr("otel_audit.export._wire._resource_bytes", broken)
        # the intake lingers until the flush: both land in one batch, the second damaged
        pipe = make_pipeline(InMemoryLogRecordExporter(), schedule_delay_millis=60_000)
        processor = pipe.processor
        pipe.emit(2)
        with processor._lock:
            assert len(processor._queue) == 2
            message, canonical, _ = processor._queue[-1]
            processor._queue[-1] = (message, canonical, 99)  # an origin the table lacks
        processor.force_flush(3_000)
        assert processor.stats.dropped == {"encode_error": 2}
        assert len(_last_resort(tmp_path)) == 1


class TestCollectorDown:
    def test_down_then_back_everything_arrives(self, make_pipeline):
        """Events sent while the collector is down arrive, once it is back."""
        receiver = HttpReceiver()
        port = receiver.port
        receiver.stop()  # never started: the port is closed
        pipe = make_pipeline(OTLPHttpLogExporter(f"http://127.0.0.1:{port}/v1/logs", timeout_s=2))
        ids = pipe.emit(300)
        assert wait_until(lambda: pipe.processor.stats["retried"] > 0, 10)
        assert not pipe.processor.force_flush(200)
        back = HttpReceiver(port).start()
        try:
            assert pipe.processor.force_flush(30_000)
            assert set(ids) <= set(back.event_ids())
            assert pipe.processor.stats["spilled"] > 0
            assert pipe.processor.stats["replayed"] > 0
            assert pipe.processor.stats["dropped"] == 0
        finally:
            back.stop()

    def test_restart_replays_previous_process_spool(self, make_pipeline, tmp_path: Path):
        """What one processor left in the spool, the next one on the same root delivers."""
        receiver = HttpReceiver()
        port = receiver.port
        receiver.stop()
        endpoint = f"http://127.0.0.1:{port}/v1/logs"
        first = make_pipeline(
            OTLPHttpLogExporter(endpoint, timeout_s=1), shutdown_timeout_millis=300
        )
        ids = first.emit(200)
        assert wait_until(lambda: first.processor.stats["retried"] > 0, 10)
        first.provider.shutdown()
        assert list((tmp_path / "spool").glob("p*/*.seg"))
        with HttpReceiver(port) as back:
            second = make_pipeline(OTLPHttpLogExporter(endpoint, timeout_s=5))
            assert wait_until(lambda: set(ids) <= set(back.event_ids()), 30)
            # counted once the sender has the receiver's answer, just after it arrived
            assert wait_until(lambda: second.processor.stats["replayed"] >= 200, 10)


class TestPrivacyOfTheSpool:
    def test_everything_under_the_spool_is_owner_only(self, make_pipeline, tmp_path: Path):
        """Segments, dead letters, their notes and the stats files: 0600; directories: 0700."""
        with HttpReceiver() as receiver:
            receiver.inject(Fault("partial", times=1, rejected=2))
            pipe = make_pipeline(
                OTLPHttpLogExporter(receiver.endpoint, timeout_s=5),
                last_resort=str(tmp_path / "last-resort.jsonl"),
            )
            pipe.emit(10)
            assert pipe.processor.force_flush(10_000)
            pipe.processor._write_stats()
            pipe.provider.shutdown()
        root = tmp_path / "spool"
        paths = [root, *root.rglob("*")]
        kinds = {p.suffix for p in paths if p.is_file()}
        assert {".seg", ".log", ".json"} <= kinds
        loose = {
            str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode))
            for p in paths
            if stat.S_IMODE(p.stat().st_mode) & 0o077
        }
        assert loose == {}
