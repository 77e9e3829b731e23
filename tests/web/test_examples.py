"""
The example apps, end to end: a real server under ``opentelemetry-instrument`` (waitress
for Flask, uvicorn for FastAPI) on 127.0.0.1, the scripted session over real HTTP, and a
real OTLP receiver that decodes what arrived.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from helpers.otlp_receiver import OTLPHttpReceiver, ReceivedLog, ReceivedSpan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))

import session  # noqa: E402  # examples/session.py, importable once the path is set

SERVER_KIND = 2  # SpanKind.SERVER in OTLP

pytestmark = pytest.mark.slow

EXPECTED_EVENTS = {
    "authentication.success",
    "authentication.failure",
    "authentication.logout",
    "authentication.password_changed",
    "authentication.mfa_enrolled",
    "api_key.created",
    "data.exported",
    "authorization.denied",
    "account.role_granted",
    "alert.brute_force",
    "alert.privilege_escalation",
    "alert.unusual_data_access",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def instrument_cmd() -> str:
    found = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("opentelemetry-instrument is not installed next to the test interpreter")
    return found


@dataclass
class Example:
    name: str
    directory: Path
    server: list[str]


EXAMPLE_APPS = {
    "flask": Example(
        "flask",
        EXAMPLES / "flask_app",
        [
            sys.executable,
            "-m",
            "waitress",
            "--listen=127.0.0.1:{port}",
            "--threads=8",
            "--no-clear-untrusted-proxy-headers",
            "app:app",
        ],
    ),
    "fastapi": Example(
        "fastapi",
        EXAMPLES / "fastapi_app",
        [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}", "app:app"],
    ),
}


def audit_env(receiver: OTLPHttpReceiver, tmp_path: Path, service: str) -> dict[str, str]:
    """Environment variables only: this is the whole configuration of the example."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "OTEL_SERVICE_NAME": service,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "OTEL_PYTHON_AUDIT_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
        "OTEL_PYTHON_AUDIT_DETECTIONS": "true",
        "OTEL_PYTHON_AUDIT_SPOOL_DIR": str(tmp_path / "spool"),
    }


@pytest.fixture(name="served", params=sorted(EXAMPLE_APPS))
def _served(request, tmp_path) -> Iterator[tuple[str, OTLPHttpReceiver, Path]]:
    example = EXAMPLE_APPS[request.param]
    port = free_port()
    log_path = tmp_path / "server.log"
    with OTLPHttpReceiver() as receiver, log_path.open("wb") as log:
        command = [instrument_cmd(), *(part.format(port=port) for part in example.server)]
        process = subprocess.Popen(
            command,
            cwd=example.directory,
            env=audit_env(receiver, tmp_path, f"{example.name}-example"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base_url, process, log_path)
            yield base_url, receiver, log_path
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited early:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling interval, not a timing assertion
    pytest.fail(f"server not healthy in time:\n{log_path.read_text(errors='replace')}")


def request_path(span: ReceivedSpan) -> str:
    """The path a server span handled, under old or new HTTP semantic conventions."""
    target = span.attributes.get("url.path") or span.attributes.get("http.target") or ""
    return str(target).split("?", 1)[0]


def names(logs: list[ReceivedLog]) -> set[str]:
    return {r.event_name for r in logs if r.event_name}


def by_name(logs: list[ReceivedLog], name: str) -> list[ReceivedLog]:
    return [r for r in logs if r.event_name == name]


def test_session_reaches_the_receiver(served):
    """Events, outcomes, proxy-resolved addresses, trace ids and alerts arrive; no secrets do."""
    base_url, receiver, log_path = served
    result = session.run_session(base_url)

    def complete(r: OTLPHttpReceiver) -> bool:
        # Spans and logs leave on their own schedules: wait for the server span of every
        # record checked below, not only for the records (else a late span batch fails
        # the trace-id checks on a loaded machine).
        traced = {s.trace_id for s in r.spans if s.kind == SERVER_KIND}
        checked = [
            x
            for x in r.logs
            if x.event_name
            and (
                x.event_name.split(".")[0] in {"authentication", "alert"}
                or x.event_name in {"authorization.denied", "account.role_granted"}
            )
        ]
        return names(r.logs) >= EXPECTED_EVENTS and all(x.trace_id in traced for x in checked)

    arrived = receiver.wait_until(complete, timeout=60)
    logs = list(receiver.logs)
    assert arrived, (
        f"missing {EXPECTED_EVENTS - names(logs)}; {len(receiver.spans)} spans for "
        f"{len(logs)} records\n{log_path.read_text(errors='replace')}"
    )

    # categories and outcomes
    for record in logs:
        if record.event_name.startswith("authentication."):
            assert record.attributes["audit.category"] == "authentication"
    failures = by_name(logs, "authentication.failure")
    assert len(failures) >= session.BRUTE_FORCE_ATTEMPTS
    assert {f.attributes["event.outcome"] for f in failures} == {"failure"}
    assert {s.attributes["event.outcome"] for s in by_name(logs, "authentication.success")} == {
        "success"
    }

    # client address through the trusted proxy header, never the proxy itself
    assert {f.attributes["client.address"] for f in failures} == {session.ATTACKER_ADDRESS}
    # The failed logins' 401s are already recorded as authentication.failure, so the
    # middleware adds no second event for them; the one denial is alice's 403 admin call.
    assert not [
        d
        for d in by_name(logs, "authorization.denied")
        if d.attributes["http.response.status_code"] == 401
    ]
    (denied,) = [
        d
        for d in by_name(logs, "authorization.denied")
        if d.attributes["http.response.status_code"] == 403
    ]
    assert denied.attributes["client.address"] == session.ALICE_ADDRESS
    assert denied.attributes["http.response.status_code"] == 403
    assert denied.attributes["user.id"] == "u-1001"
    assert denied.attributes["audit.category"] == "authorization"
    assert denied.attributes["event.outcome"] == "failure"

    # trace ids match the server spans of the requests that emitted them
    server_spans = {s.trace_id: s for s in receiver.spans if s.kind == SERVER_KIND}
    for record in logs:
        if record.event_name and record.event_name.split(".")[0] in {"authentication", "alert"}:
            assert record.trace_id in server_spans, record.event_name
            assert request_path(server_spans[record.trace_id]) == record.attributes["url.path"]
    assert request_path(server_spans[denied.trace_id]) == "/admin/users"
    (grant,) = by_name(logs, "account.role_granted")
    assert request_path(server_spans[grant.trace_id]) == "/admin/roles"

    # alerts from the in-process detections
    rules = {a.attributes["audit.alert.rule"] for a in logs if a.event_name.startswith("alert.")}
    assert {"brute_force.account", "brute_force.address"} <= rules
    assert "privilege_escalation.admin_role" in rules
    assert "unusual_data_access" in rules
    for alert in (r for r in logs if r.event_name.startswith("alert.")):
        assert alert.attributes["audit.category"] == "alert"

    # no password, token, API key or session cookie anywhere in what crossed the wire
    raw = receiver.raw
    assert result.secrets
    leaked = sorted(s for s in result.secrets if s.encode() in raw)
    assert leaked == []
