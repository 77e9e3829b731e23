"""SIEM outages: persistent queues survive kill -9; the outage shows in metrics, health stays up."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _procs import (
    Rsyslog,
    SiemStack,
    http_status,
    http_text,
    metric_sum,
    otlp_json_records,
    syslog_messages,
    wait_for,
)

pytestmark = [pytest.mark.collector, pytest.mark.slow]

SYSLOG_EXPORTER = "syslog/siem"


def _events(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "kind": "security",
            "name": "authentication.failure",
            "actor": f"{prefix}-user-{i}",
            "reason": "bad_password",
            "details": {"client.address": "192.0.2.10"},
        }
        for i in range(count)
    ]


def _syslog_ids(stack: SiemStack) -> Counter[str]:
    return Counter(
        m["msg"]["metadata"]["uid"] for m in syslog_messages(stack.syslog_out) if m["msg"]
    )


def _archive_ids(stack: SiemStack) -> set[str]:
    return {r["attributes"]["event.id"] for r in otlp_json_records(stack.archive_out)}


def _metrics(stack: SiemStack) -> str:
    return http_text(stack.metrics_url)


def test_queued_events_survive_kill9_and_arrive_once(
    collector_binary: Path, rsyslog: Rsyslog, tmp_path: Path
) -> None:
    """With rsyslog down, N events queued on disk survive kill -9 and arrive once after restart."""
    count = 25
    stack = SiemStack(collector_binary, rsyslog, tmp_path)
    try:
        stack.start_hec()
        stack.start_gateway()  # rsyslog is NOT running: the syslog exporter cannot deliver
        emitted = stack.emit(_events(count, "kill9"))
        ids = {e["event_id"] for e in emitted}
        assert len(ids) == count
        # the gateway acknowledged them: they are in the archive, and queued for syslog
        wait_for(lambda: ids <= _archive_ids(stack), timeout=30, what="archive has all N")
        wait_for(
            lambda: (
                metric_sum(_metrics(stack), "otelcol_exporter_queue_size", exporter=SYSLOG_EXPORTER)
                >= 1
            ),
            timeout=30,
            what="syslog queue holds the events",
        )
        assert not _syslog_ids(stack)
        assert stack.gateway is not None
        stack.gateway.kill9()

        stack.start_gateway()
        stack.start_syslog()
        wait_for(
            lambda: ids <= set(_syslog_ids(stack)), timeout=90, what="all N delivered to rsyslog"
        )
        wait_for(
            lambda: (
                metric_sum(_metrics(stack), "otelcol_exporter_queue_size", exporter=SYSLOG_EXPORTER)
                == 0
            ),
            timeout=30,
            what="syslog queue drained",
        )
        delivered = _syslog_ids(stack)
        assert set(delivered) == ids
        # at-least-once: a batch in flight at the kill may be sent twice; event.id identifies it
        duplicates = {k: v for k, v in delivered.items() if v > 1}
        assert not duplicates, f"duplicates (identifiable by event.id): {duplicates}"
        assert metric_sum(_metrics(stack), "otelcol_exporter_enqueue_failed_log_records") == 0
    finally:
        stack.stop_all()


def test_siem_outage_is_visible_in_metrics_while_health_stays_up(
    collector_binary: Path, rsyslog: Rsyslog, tmp_path: Path
) -> None:
    """With rsyslog down, syslog/siem's queue_size counts the backlog; health stays 200."""
    count = 10
    stack = SiemStack(collector_binary, rsyslog, tmp_path)
    try:
        stack.start_hec()
        stack.start_gateway()
        emitted = stack.emit(_events(count, "outage"))
        ids = {e["event_id"] for e in emitted}
        # the HEC sink is unaffected by the syslog outage
        wait_for(
            lambda: ids <= {r["attributes"]["event.id"] for r in otlp_json_records(stack.hec_out)},
            timeout=30,
            what="HEC delivery during the syslog outage",
        )

        def backlog() -> float:
            return metric_sum(
                _metrics(stack), "otelcol_exporter_queue_size", exporter=SYSLOG_EXPORTER
            )

        wait_for(lambda: backlog() == count, timeout=30, what="syslog queue_size == N records")
        text = _metrics(stack)
        assert metric_sum(text, "otelcol_exporter_sent_log_records", exporter=SYSLOG_EXPORTER) == 0
        assert (
            metric_sum(text, "otelcol_exporter_sent_log_records", exporter="splunk_hec/siem")
            == count
        )
        # With retry_on_failure.max_elapsed_time: 0 the exporter never gives up, and v0.145.0 counts
        # send_failed only for records it gives up on: the outage shows as queue_size (and in the
        # "Exporting failed. Will retry" log), not as send_failed. Alert on queue_size > 0 for long.
        assert (
            metric_sum(text, "otelcol_exporter_send_failed_log_records", exporter=SYSLOG_EXPORTER)
            == 0
        )
        assert metric_sum(text, "otelcol_exporter_enqueue_failed_log_records") == 0
        assert http_status(stack.health_url) == 200
        assert stack.gateway is not None
        assert "Exporting failed. Will retry" in stack.gateway.log_tail(200)

        stack.start_syslog()
        wait_for(lambda: ids <= set(_syslog_ids(stack)), timeout=90, what="recovery after outage")
        wait_for(lambda: backlog() == 0, timeout=30, what="syslog queue drained")
        assert (
            metric_sum(
                _metrics(stack), "otelcol_exporter_sent_log_records", exporter=SYSLOG_EXPORTER
            )
            == count
        )
        assert http_status(stack.health_url) == 200
    finally:
        stack.stop_all()
