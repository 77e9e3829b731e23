"""SIEM outages: persistent queues survive kill -9; the outage shows in metrics, health stays up."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _siem_stack import (
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


def _metric(stack: SiemStack, name: str, **labels: str) -> float:
    return metric_sum(http_text(stack.metrics_url), name, **labels)


def _syslog_backlog(stack: SiemStack) -> float:
    """Log records in syslog/siem's persistent queue (sizer: items)."""
    return _metric(stack, "otelcol_exporter_queue_size", exporter=SYSLOG_EXPORTER)


@contextmanager
def _syslog_down(
    binary: Path, rsyslog: Rsyslog, workdir: Path, count: int
) -> Iterator[tuple[SiemStack, set[str]]]:
    """Gateway and HEC stand-in up, rsyslog NOT running; ``count`` events queued for syslog."""
    stack = SiemStack(binary, rsyslog, workdir)
    try:
        stack.start_hec()
        stack.start_gateway()
        ids = {e["event_id"] for e in stack.emit(_events(count, workdir.name))}
        assert len(ids) == count
        wait_for(lambda: _syslog_backlog(stack) == count, timeout=30, what="syslog queue == N")
        assert not _syslog_ids(stack)
        yield stack, ids
    finally:
        stack.stop_all()


def test_queued_events_survive_kill9_and_arrive_once(
    collector_binary: Path, rsyslog: Rsyslog, tmp_path: Path
) -> None:
    """With rsyslog down, N events queued on disk survive kill -9 and arrive once after restart."""
    count = 25
    with _syslog_down(collector_binary, rsyslog, tmp_path, count) as (stack, ids):
        assert stack.gateway is not None
        stack.gateway.kill9()

        stack.start_gateway()
        # the restarted gateway found all N in its file_storage queue (the app is gone)
        wait_for(lambda: _syslog_backlog(stack) == count, timeout=30, what="queue reloaded")
        stack.start_syslog()
        wait_for(
            lambda: ids <= set(_syslog_ids(stack)), timeout=90, what="all N delivered to rsyslog"
        )
        wait_for(lambda: _syslog_backlog(stack) == 0, timeout=30, what="syslog queue drained")
        delivered = _syslog_ids(stack)
        assert set(delivered) == ids
        # at-least-once: a batch in flight at the kill could be sent twice (event.id identifies
        # it); here nothing was in flight (rsyslog was down), so every event arrives exactly once
        duplicates = {k: v for k, v in delivered.items() if v > 1}
        assert not duplicates, f"duplicates (identifiable by event.id): {duplicates}"
        assert _metric(stack, "otelcol_exporter_enqueue_failed_log_records") == 0


def test_siem_outage_is_visible_in_metrics_while_health_stays_up(
    collector_binary: Path, rsyslog: Rsyslog, tmp_path: Path
) -> None:
    """With rsyslog down, syslog/siem's queue_size counts the backlog; health stays 200."""
    count = 10
    with _syslog_down(collector_binary, rsyslog, tmp_path, count) as (stack, ids):
        # the HEC sink is unaffected by the syslog outage
        wait_for(
            lambda: ids <= {r["attributes"]["event.id"] for r in otlp_json_records(stack.hec_out)},
            timeout=30,
            what="HEC delivery during the syslog outage",
        )
        text = http_text(stack.metrics_url)
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
        gateway = stack.gateway
        assert gateway is not None
        wait_for(
            lambda: "Exporting failed. Will retry" in gateway.log_tail(200),
            timeout=30,
            what="the exporter's retry log line",
        )

        stack.start_syslog()
        wait_for(lambda: ids <= set(_syslog_ids(stack)), timeout=90, what="recovery after outage")
        wait_for(lambda: _syslog_backlog(stack) == 0, timeout=30, what="syslog queue drained")
        assert (
            _metric(stack, "otelcol_exporter_sent_log_records", exporter=SYSLOG_EXPORTER) == count
        )
        assert http_status(stack.health_url) == 200
