"""
A separate application process for the crash and fork tests.

Usage: python _child.py MODE SPOOL_DIR ENDPOINT OUT_FILE
  emit-forever: emit security events forever, appending each accepted event id to OUT_FILE
  drain:        open the spool (adopting what a dead process left) and flush, then exit
  fork:         emit 10, fork; the child emits 10 and exits; the parent emits 10 more
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.resources import Resource

from otel_audit import semconv
from otel_audit._ids import new_event_id
from otel_audit.export import DurableLogRecordProcessor, IntegrityChain, OTLPHttpLogExporter

QUEUE_SIZE = 64
BATCH = 16


def build(spool: str, endpoint: str) -> tuple[LoggerProvider, DurableLogRecordProcessor]:
    processor = DurableLogRecordProcessor(
        OTLPHttpLogExporter(endpoint, timeout_s=2),
        spool_dir=Path(spool),
        spool_max_bytes=256 * 1024 * 1024,
        queue_size=QUEUE_SIZE,
        overflow="block",
        block_timeout_ms=5000,
        last_resort="stderr",
        integrity=IntegrityChain(b"k" * 32, "k1", checkpoint_interval=0),
        max_export_batch_size=BATCH,
        schedule_delay_millis=10,
        shutdown_timeout_millis=10_000,
    )
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "child"}), shutdown_on_exit=True
    )
    provider.add_log_record_processor(processor)
    return provider, processor


def emit(logger, tag: str) -> str:
    event_id = new_event_id()
    logger.emit(
        body=f"event from {tag}",
        severity_number=SeverityNumber.WARN,
        attributes={
            semconv.AUDIT_EVENT_NAME: "authentication.failure",
            semconv.EVENT_ID: event_id,
            "tag": tag,
        },
    )
    return event_id


def main() -> int:
    mode, spool, endpoint, out = sys.argv[1:5]
    provider, processor = build(spool, endpoint)
    logger = provider.get_logger("security")
    if mode == "emit-forever":
        with Path(out).open("a", encoding="utf-8") as fh:
            while True:
                fh.write(emit(logger, "victim") + "\n")
                fh.flush()
    if mode == "drain":
        ok = processor.force_flush(60_000)
        provider.shutdown()
        return 0 if ok else 1
    if mode == "fork":
        ids = [emit(logger, "parent") for _ in range(10)]
        pid = os.fork()
        if pid == 0:
            child_ids = [emit(logger, "child") for _ in range(10)]
            ok = processor.force_flush(30_000)
            Path(out + ".child").write_text("\n".join(child_ids), encoding="utf-8")
            provider.shutdown()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        ids += [emit(logger, "parent") for _ in range(10)]
        ok = processor.force_flush(30_000)
        Path(out).write_text("\n".join(ids), encoding="utf-8")
        provider.shutdown()
        return 0 if ok and os.waitstatus_to_exitcode(status) == 0 else 2
    return 64


if __name__ == "__main__":
    sys.exit(main())
