"""End to end on loopback: app (otel-audit, subprocess) -> real gateway -> rsyslog, HEC, archive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _siem_stack import (
    TEST_HASH_KEY,
    Rsyslog,
    SiemStack,
    otlp_json_records,
    read_text,
    running_stack,
    syslog_messages,
    wait_for,
)

pytestmark = [pytest.mark.collector, pytest.mark.slow]

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
PASSWORD = "Tr0ub4dor&3-horse"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
RAW_AWS_KEY = "AKIAJ5QXAMPLEKEY7777"
RAW_GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
RAW_PASSWORD = "s3cr3t-Passw0rd!"
PLANTED = (AWS_KEY, PASSWORD, BEARER)
RAW_PLANTED = (RAW_AWS_KEY, RAW_GITHUB_TOKEN, RAW_PASSWORD)
RAW_EVENT_ID = "01900000-0000-7000-8000-00000000beef"

RECORDS: list[dict[str, Any]] = [
    {
        "kind": "security",
        "name": "authentication.failure",
        "actor": "alice",
        "reason": "bad_password",
        "details": {
            "client.address": "203.0.113.7",
            "user_agent.original": "Mozilla/5.0 e2e",
            "http.route": "/login",
            "password": PASSWORD,
            "note": f"retried with key {AWS_KEY}",
        },
    },
    {"kind": "app", "message": "GET /health 200", "details": {"http.route": "/health"}},
    {
        "kind": "security",
        "name": "authentication.success",
        "actor": "bob",
        "details": {"client.address": "198.51.100.4", "http.route": "/login"},
    },
    {
        "kind": "app",
        "message": "cache warm-up finished",
        "details": {"authorization": f"Bearer {BEARER}"},
    },
    {
        "kind": "security",
        "name": "authorization.denied",
        "actor": "mallory",
        "reason": "missing_role",
        "details": {"http.route": "/admin", "authorization": f"Bearer {BEARER}"},
    },
    {
        "kind": "security",
        "name": "authentication.logout",
        "actor": "carol",
        "untraced": True,  # no active span: no trace fields anywhere, not all-zero ids
    },
    {
        "kind": "raw_security",
        "name": "authentication.failure",
        "message": f"login failed, token {RAW_GITHUB_TOKEN}",
        "details": {
            "event.id": RAW_EVENT_ID,
            "event.outcome": "failure",
            "audit.ocsf.class_uid": 3002,
            "audit.ocsf.category_uid": 3,
            "audit.ocsf.activity_id": 1,
            "user.name": "legacy-user",
            "aws.key": f"used {RAW_AWS_KEY}",
            "user.password": RAW_PASSWORD,
        },
    },
]
SECURITY_INDEXES = [i for i, r in enumerate(RECORDS) if r["kind"] in {"security", "raw_security"}]
APP_INDEXES = [i for i, r in enumerate(RECORDS) if r["kind"] == "app"]


@dataclass
class Run:
    """What the emitter reported and what each sink received."""

    stack: SiemStack
    emitted: list[dict[str, Any]]

    def security_ids(self) -> set[str]:
        return {self.emitted[i]["event_id"] for i in SECURITY_INDEXES}


@pytest.fixture(scope="module")
def run(
    collector_binary: Path, rsyslog: Rsyslog, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """Start the stack, emit RECORDS once, wait until every sink has every expected record."""
    workdir = tmp_path_factory.mktemp("e2e")
    with running_stack(collector_binary, rsyslog, workdir) as stack:
        emitted = stack.emit(RECORDS)
        assert all(emitted[i]["event_id"] for i in SECURITY_INDEXES), emitted
        result = Run(stack, emitted)
        want = result.security_ids()

        def all_arrived() -> bool:
            syslog = {
                m["msg"]["metadata"]["uid"] for m in syslog_messages(stack.syslog_out) if m["msg"]
            }
            hec = {r["attributes"].get("event.id") for r in otlp_json_records(stack.hec_out)}
            archive = {
                r["attributes"].get("event.id") for r in otlp_json_records(stack.archive_out)
            }
            apps = otlp_json_records(stack.app_logs_out)
            return (
                want <= syslog and want <= hec and want <= archive and len(apps) >= len(APP_INDEXES)
            )

        wait_for(all_arrived, timeout=60, what="every record at every sink")
        yield result


def _null_paths(value: Any, path: str = "") -> list[str]:
    """Where a decoded OCSF object holds a null (a field the app did not send must be absent)."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _null_paths(v, f"{path}.{k}")]
    return []


def _sink_bytes(stack: SiemStack) -> dict[str, str]:
    return {name: read_text(path) for name, path in stack.sinks.items()}


def test_syslog_sink_gets_rfc5424_with_ocsf_json(run: Run) -> None:
    """rsyslog gets one RFC 5424 message per security event: authpriv PRI, MSGID, SD, OCSF."""
    messages = {
        m["msg"]["metadata"]["uid"]: m for m in syslog_messages(run.stack.syslog_out) if m["msg"]
    }
    for index in SECURITY_INDEXES:
        emitted = run.emitted[index]
        msg = messages[emitted["event_id"]]
        assert msg["msgid"] == RECORDS[index]["name"]
        assert msg["pri_version"] in {"<86>1", "<84>1"}  # authpriv.info / authpriv.warning
        if emitted["trace_id"]:
            assert f'trace_id="{emitted["trace_id"]}"' in msg["sd"]
        else:
            assert "trace_id=" not in msg["sd"]
        assert f'event_id="{emitted["event_id"]}"' in msg["sd"]
        ocsf = msg["msg"]
        assert ocsf["metadata"].get("correlation_uid", "") == emitted["trace_id"]
        assert ("trace" in ocsf) == bool(emitted["trace_id"])
        assert ocsf["metadata"]["event_code"] == RECORDS[index]["name"]
        assert not _null_paths(ocsf), _null_paths(ocsf)
    failure = messages[run.emitted[0]["event_id"]]["msg"]
    assert (failure["class_uid"], failure["category_uid"], failure["activity_id"]) == (3002, 3, 1)
    assert failure["type_uid"] == 300201
    assert (failure["status_id"], failure["status"]) == (2, "Failure")
    assert (failure["severity_id"], failure["severity"]) == (3, "Medium")
    assert failure["status_detail"] == "bad_password"
    assert failure["src_endpoint"]["ip"] == "203.0.113.7"
    assert failure["actor"]["user"] == {"uid": "alice"}  # no user.name sent: no name key
    assert failure["http_request"] == {"user_agent": "Mozilla/5.0 e2e", "url": {"path": "/login"}}
    assert failure["unmapped"]["event.category"] == ["authentication"]
    success = messages[run.emitted[2]["event_id"]]["msg"]
    assert (success["status_id"], success["severity_id"], success["type_uid"]) == (1, 1, 300201)
    assert (success["status"], success["severity"]) == ("Success", "Informational")
    denied = messages[run.emitted[4]["event_id"]]["msg"]
    assert (denied["class_uid"], denied["type_uid"], denied["status_id"]) == (3003, 300399, 2)


def test_hec_sink_gets_ocsf_event_and_ecs_fields(run: Run) -> None:
    """The HEC stand-in gets each security event: OCSF body, ECS event.* fields, trace id."""
    records = {r["attributes"]["event.id"]: r for r in otlp_json_records(run.stack.hec_out)}
    assert set(records) == run.security_ids()
    for index in SECURITY_INDEXES:
        emitted = run.emitted[index]
        record = records[emitted["event_id"]]
        body, attrs = record["body"], record["attributes"]
        assert attrs.get("trace.id", "") == emitted["trace_id"]
        assert ("span.id" in attrs) == bool(emitted["trace_id"])
        assert body["metadata"].get("correlation_uid", "") == emitted["trace_id"]
        assert attrs["event.kind"] == "event"
        assert not {"appname", "priority", "structured_data"} & attrs.keys()  # syslog's own copy
        assert attrs["event.code"] == RECORDS[index]["name"]
        assert attrs["event.outcome"] in {"success", "failure"}
        assert int(body["class_uid"]) in {3002, 3003}
        assert int(body["type_uid"]) == int(body["class_uid"]) * 100 + int(body["activity_id"])
        assert record["resource"]["com.splunk.index"] == "security"
        assert not _null_paths(body), _null_paths(body)
    failure = records[run.emitted[0]["event_id"]]
    assert failure["attributes"]["event.category"] == ["authentication"]
    assert int(failure["body"]["status_id"]) == 2


def test_archive_holds_security_events_exactly_as_the_app_sent_them(run: Run) -> None:
    """The JSON archive has every security event with the app's attributes and no SIEM shaping."""
    records = {r["attributes"]["event.id"]: r for r in otlp_json_records(run.stack.archive_out)}
    assert set(records) == run.security_ids()
    for index in SECURITY_INDEXES:
        record = records[run.emitted[index]["event_id"]]
        assert record["trace_id"] == run.emitted[index]["trace_id"]
        assert record["event_name"] == RECORDS[index]["name"]
        assert isinstance(record["body"], str)  # not the OCSF map
        assert "event.kind" not in record["attributes"]
        assert not any(k.startswith("redaction.") for k in record["attributes"])
        assert "otel_audit.collector.name" not in record["resource"]
    raw = records[RAW_EVENT_ID]
    # verbatim means verbatim: what bypassed the app's redaction is archived as sent (see README)
    assert raw["attributes"]["user.password"] == RAW_PASSWORD


def test_ordinary_records_reach_only_the_log_backend(run: Run) -> None:
    """App logs land in app-logs.jsonl and in no SIEM sink; no security event lands there."""
    apps = otlp_json_records(run.stack.app_logs_out)
    bodies = {r["body"] for r in apps}
    assert {RECORDS[i]["message"] for i in APP_INDEXES} <= bodies
    assert not any("audit.event.name" in r["attributes"] for r in apps)
    app_trace_ids = {run.emitted[i]["trace_id"] for i in APP_INDEXES}
    assert app_trace_ids <= {r["trace_id"] for r in apps}
    sinks = _sink_bytes(run.stack)
    for name in ("syslog", "hec", "archive"):
        for index in APP_INDEXES:
            assert RECORDS[index]["message"] not in sinks[name], name
            assert run.emitted[index]["trace_id"] not in sinks[name], name


def test_no_planted_secret_in_any_sink(run: Run) -> None:
    """Secrets sent through otel-audit appear in no sink's bytes (syslog, HEC, archive, app)."""
    for name, data in _sink_bytes(run.stack).items():
        assert data, f"{name} sink is empty"
        for secret in PLANTED:
            assert secret not in data, f"{secret!r} leaked into {name}"
    # not vacuous: the attributes that carried the secrets did reach the sinks, redacted
    archive = {r["attributes"]["event.id"]: r for r in otlp_json_records(run.stack.archive_out)}
    failure = archive[run.emitted[0]["event_id"]]["attributes"]
    assert failure["password"]
    assert failure["note"].startswith("retried with key ")
    denied = archive[run.emitted[4]["event_id"]]["attributes"]
    assert denied["authorization"]
    apps = {r["body"]: r for r in otlp_json_records(run.stack.app_logs_out)}
    assert apps["cache warm-up finished"]["attributes"]["authorization"]


def test_hash_key_appears_in_no_sink_and_no_process_log(run: Run) -> None:
    """The gateway's keyed-hash key is used on every SIEM record but written nowhere."""
    logs = {p.name: read_text(p) for p in run.stack.workdir.glob("*.log")}
    assert "gateway-1.log" in logs
    for name, data in {**_sink_bytes(run.stack), **logs}.items():
        assert TEST_HASH_KEY not in data, name


def test_second_line_redaction_protects_siem_sinks_from_a_bypassing_app(run: Run) -> None:
    """Secrets from an app without otel-audit are keyed-hashed or masked before any SIEM sink."""
    sinks = _sink_bytes(run.stack)
    for name in ("syslog", "hec", "app-logs"):
        for secret in RAW_PLANTED:
            assert secret not in sinks[name], f"{secret!r} leaked into {name}"
    hec = {r["attributes"]["event.id"]: r for r in otlp_json_records(run.stack.hec_out)}
    raw = hec[RAW_EVENT_ID]
    assert raw["attributes"]["aws.key"].startswith("used ksha256:test1:")
    assert len(raw["attributes"]["aws.key"].rsplit(":", 1)[1]) == 64
    assert raw["attributes"]["user.password"] == "****"
    assert "ksha256:test1:" in raw["body"]["message"]
    syslog = {
        m["msg"]["metadata"]["uid"]: m for m in syslog_messages(run.stack.syslog_out) if m["msg"]
    }
    assert "ksha256:test1:" in json.dumps(syslog[RAW_EVENT_ID]["msg"])


def test_record_without_timestamp_gets_the_observed_time(run: Run) -> None:
    """The bypassing app sets no timestamp: the SIEM sinks get the collector's observed time."""
    syslog = {
        m["msg"]["metadata"]["uid"]: m for m in syslog_messages(run.stack.syslog_out) if m["msg"]
    }
    raw = syslog[RAW_EVENT_ID]
    assert raw["msg"]["time"] > 1_700_000_000_000  # epoch ms, not 0
    assert not raw["raw"].split(" ", 2)[1].startswith("1970")  # RFC 5424 TIMESTAMP
