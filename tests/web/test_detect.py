"""AnomalyDetector: thresholds, windows, de-duplication, memory bound, threads, pipeline."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

import otel_audit
from otel_audit import AuditProcessor, AuditSettings, _api, request_context, security_event
from otel_audit.detect import Alert, AnomalyDetector


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(name: str, **attributes: Any) -> LogRecord:
    return LogRecord(event_name=name, attributes={"audit.event.name": name, **attributes})


def failure(account: str | None = "alice", address: str | None = "198.51.100.7") -> LogRecord:
    attrs: dict[str, Any] = {}
    if account is not None:
        attrs["user.name"] = account
    if address is not None:
        attrs["client.address"] = address
    return record("authentication.failure", **attrs)


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


@pytest.fixture(name="alerts")
def _alerts() -> list[Alert]:
    return []


def detector(clock: Clock, alerts: list[Alert], **options: Any) -> AnomalyDetector:
    defaults: dict[str, Any] = {
        "brute_force_threshold": 3,
        "stuffing_threshold": 3,
        "window_s": 60,
        "export_threshold": 100,
    }
    defaults.update(options)
    return AnomalyDetector(emit=alerts.append, _clock=clock, **defaults)


def rules(alerts: list[Alert]) -> list[str]:
    return [a.details["audit.alert.rule"] for a in alerts]


class TestBruteForce:
    def test_threshold_per_account(self, clock, alerts):
        """N failures for one account from different addresses raise one account alert."""
        d = detector(clock, alerts)
        for i in range(2):
            d.observe(failure("alice", f"192.0.2.{i}"))
        assert alerts == []
        d.observe(failure("alice", "192.0.2.9"))
        assert rules(alerts) == ["brute_force.account"]
        assert alerts[0].target == "alice"
        assert alerts[0].details["audit.alert.count"] == 3

    def test_threshold_per_address(self, clock, alerts):
        """N failures from one address (distinct accounts under the stuffing bar) alert."""
        d = detector(clock, alerts, stuffing_threshold=10)
        for account in ("a", "b", "c"):
            d.observe(failure(account, "203.0.113.1"))
        assert rules(alerts) == ["brute_force.address"]
        assert alerts[0].target == "203.0.113.1"

    def test_failures_outside_the_window_do_not_count(self, clock, alerts):
        """Failures spread wider than the window never alert."""
        d = detector(clock, alerts)
        for _ in range(10):
            d.observe(failure("alice", None))
            clock.now += 31  # three failures span 62 s > 60 s window
        assert alerts == []

    def test_deduplicated_within_window_then_re_alerts(self, clock, alerts):
        """A key alerts once per window, and again once the window has passed."""
        d = detector(clock, alerts)
        for _ in range(10):
            d.observe(failure("alice", None))
        assert len(alerts) == 1
        clock.now += 61
        for _ in range(3):
            d.observe(failure("alice", None))
        assert len(alerts) == 2

    def test_success_and_other_events_are_ignored(self, clock, alerts):
        """Only authentication failures feed the brute-force windows."""
        d = detector(clock, alerts)
        for _ in range(5):
            d.observe(record("authentication.success", **{"user.name": "alice"}))
        assert alerts == []

    @pytest.mark.parametrize("attribute", ["user.name", "user.id"])
    def test_alert_names_the_attribute_it_counted(self, clock, alerts, attribute):
        """An account known only by user.id is counted and named as user.id."""
        d = detector(clock, alerts)
        for _ in range(3):
            d.observe(record("authentication.failure", **{attribute: "u-7"}))
        (alert,) = alerts
        assert (alert.target, alert.details["audit.alert.key"]) == ("u-7", attribute)


def test_credential_stuffing(clock, alerts):
    """Distinct failing accounts from one address raise a stuffing alert."""
    d = detector(clock, alerts, brute_force_threshold=100)
    for account in ("u1", "u2", "u1", "u3"):
        d.observe(failure(account, "203.0.113.66"))
    assert rules(alerts) == ["credential_stuffing"]
    assert alerts[0].details["audit.alert.count"] == 3
    assert alerts[0].details["client.address"] == "203.0.113.66"


def test_credential_stuffing_window(clock, alerts):
    """Accounts that failed longer ago than the window are forgotten."""
    d = detector(clock, alerts, brute_force_threshold=100)
    for account in ("u1", "u2", "u3"):
        d.observe(failure(account, "203.0.113.66"))
        clock.now += 40
    assert alerts == []


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"user.id": "root-admin", "audit.target.user": "bob", "audit.target.role": "Admin"},
         "privilege_escalation.admin_role"),
        ({"user.id": "bob", "audit.target.user": "bob", "audit.target.role": "editor"},
         "privilege_escalation.self_grant"),
        ({"user.name": "bob", "audit.target": "bob", "audit.role": "viewer"},
         "privilege_escalation.self_grant"),
        ({"user.id": "ann", "audit.target.user": "bob", "audit.target.role": "editor"}, None),
        ({"user.id": "ann", "audit.target.user": "bob"}, None),
    ],
)  # fmt: skip
def test_privilege_escalation(clock, alerts, attrs, expected):
    """Admin-level grants and self-grants alert; ordinary grants do not."""
    detector(clock, alerts).observe(record("account.role_granted", **attrs))
    assert rules(alerts) == ([expected] if expected else [])


def test_permission_grant_self(clock, alerts):
    """A self-granted permission is escalation too."""
    attrs = {"user.id": "bob", "audit.target.user": "bob", "audit.target.permission": "write"}
    detector(clock, alerts).observe(record("account.permission_granted", **attrs))
    assert rules(alerts) == ["privilege_escalation.self_grant"]


class TestUnusualAccess:
    def test_volume_above_threshold_in_window(self, clock, alerts):
        """Exports that add up past the threshold for one actor alert once."""
        d = detector(clock, alerts)
        for _ in range(2):
            d.observe(record("data.exported", **{"user.id": "eve", "audit.data.record_count": 50}))
        assert alerts == []
        d.observe(record("data.exported", **{"user.id": "eve", "audit.data.record_count": 1}))
        assert rules(alerts) == ["unusual_data_access"]
        assert alerts[0].details["audit.alert.count"] == 101
        d.observe(record("data.exported", **{"user.id": "eve", "audit.data.record_count": 500}))
        assert len(alerts) == 1

    def test_old_exports_expire(self, clock, alerts):
        """Exports older than the window no longer count."""
        d = detector(clock, alerts)
        for _ in range(5):
            d.observe(record("data.exported", **{"user.id": "eve", "audit.data.record_count": 60}))
            clock.now += 61
        assert alerts == []

    @pytest.mark.parametrize("count", [None, "lots", True, -5])
    def test_bad_counts_are_ignored(self, clock, alerts, count):
        """Missing or non-numeric counts never alert and never raise."""
        d = detector(clock, alerts)
        d.observe(record("data.exported", **{"user.id": "eve", "audit.data.record_count": count}))
        assert alerts == []
        assert "errors" not in d.stats.snapshot()

    def test_many_small_exports_keep_exact_total(self, clock, alerts):
        """Per-actor entries are merged past the cap without losing volume."""
        d = detector(clock, alerts, export_threshold=1000)
        for _ in range(1001):
            d.observe(record("data.exported", **{"user.id": "eve", "audit.data.record_count": 1}))
        assert rules(alerts) == ["unusual_data_access"]
        assert alerts[0].details["audit.alert.count"] == 1001


def test_memory_is_bounded(clock, alerts):
    """Keys beyond max_keys evict the least recent ones and are counted."""
    d = detector(clock, alerts, max_keys=50)
    for i in range(5000):
        d.observe(failure(f"user{i}", f"10.{i // 250}.{i % 250}.1"))
    assert d.tracked_keys() <= 4 * 50
    assert d.stats.snapshot()["evicted.account"] >= 4950


def test_alert_events_are_ignored(clock, alerts):
    """alert.* events never feed a detection (no alert loops)."""
    d = detector(clock, alerts)
    for _ in range(10):
        d.observe(record("alert.brute_force", **{"user.name": "alice"}))
    assert alerts == []


def test_thread_safety_smoke(clock, alerts):
    """Concurrent observers keep exact counts: one alert per account, no errors."""
    d = detector(clock, alerts, brute_force_threshold=50, stuffing_threshold=1000)
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(500):
            d.observe(failure(f"acct{i % 10}", f"192.0.2.{n}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    per_account = [a for a in alerts if a.details["audit.alert.rule"] == "brute_force.account"]
    assert sorted(a.target for a in per_account) == [f"acct{i}" for i in range(10)]
    assert "errors" not in d.stats.snapshot()


def test_raising_emitter_is_counted(clock):
    """An emitter that raises is counted, never propagated."""

    def emit(alert: Alert) -> None:
        raise RuntimeError

    d = AnomalyDetector(brute_force_threshold=1, emit=emit, _clock=clock)
    d.observe(failure())
    stats = d.stats.snapshot()
    assert stats["emit_errors"] == 2  # the account and the address alert
    assert not any(name.startswith("alerts.") for name in stats)


@pytest.mark.parametrize(
    "options",
    [{"brute_force_threshold": 0}, {"stuffing_threshold": 1}, {"window_s": 0}, {"max_keys": 0}],
)
def test_bad_options_fail_at_construction(options):
    """Invalid thresholds raise ValueError naming the option."""
    with pytest.raises(ValueError, match=next(iter(options))):
        AnomalyDetector(**options)


def test_alerts_through_the_real_pipeline():
    """Alerts re-enter the pipeline once, tagged, with the request context and no loop."""
    settings = AuditSettings(detections=True, brute_force_threshold=3)
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(
        AuditProcessor(settings, observers=[AnomalyDetector.from_settings(settings)])
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    _api._set_provider(provider)
    try:
        with request_context(client_address="198.51.100.9", request_id="r-1"):
            for _ in range(4):
                security_event("authentication.failure", actor={"name": "alice"})
    finally:
        _api._set_provider(None)
        provider.shutdown()
    records = [r.log_record for r in exporter.get_finished_logs()]
    alerts = [r for r in records if r.event_name == "alert.brute_force"]
    assert len(records) == 4 + 2  # account and address
    assert {a.attributes["audit.alert.rule"] for a in alerts} == {
        "brute_force.account",
        "brute_force.address",
    }
    for alert in alerts:
        assert alert.attributes["audit.category"] == "alert"
        assert alert.attributes["audit.request.id"] == "r-1"
        assert alert.attributes["client.address"] == "198.51.100.9"


def test_configure_installs_the_detector():
    """configure() with OTEL_PYTHON_AUDIT_DETECTIONS=true builds an AnomalyDetector."""
    exporter = InMemoryLogRecordExporter()
    env = {
        "OTEL_PYTHON_AUDIT_DETECTIONS": "true",
        "OTEL_PYTHON_AUDIT_BRUTE_FORCE_THRESHOLD": "2",
        "OTEL_PYTHON_AUDIT_DELIVERY": "batch",
        "OTEL_PYTHON_AUDIT_REDACTION": "off",
        "OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF": "true",
    }
    provider = LoggerProvider(shutdown_on_exit=False)
    otel_audit.configure(
        environ=env,
        logger_provider=provider,
        exporters=[exporter],
        set_global=False,
        bridge_logging=False,
    )
    for _ in range(2):
        security_event("authentication.failure", actor={"name": "zed"})
    otel_audit.shutdown()
    names = [r.log_record.event_name for r in exporter.get_finished_logs()]
    assert names.count("alert.brute_force") == 1
