"""agent.yaml run for real: app -> agent (queue, TLS, bearer token) -> gateway, unmodified."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from _siem_stack import (
    CONFIG_DIR,
    HTTP_OK,
    Proc,
    Rsyslog,
    SiemStack,
    free_port,
    http_status,
    otlp_json_records,
    tcp_open,
    wait_for,
)

from otel_audit.export import verify_files

pytestmark = [pytest.mark.collector, pytest.mark.slow]

APP_KEY = "agent-test-key-not-a-secret-0123"  # loopback test only
EVENTS = [
    {"kind": "security", "name": "authentication.failure", "actor": f"user-{i}", "reason": "x"}
    for i in range(5)
]

# The receiver TLS + auth that README.md ("TLS and authentication on the receiver") documents,
# merged over gateway.yaml with a second --config.
GATEWAY_TLS_AUTH = """\
extensions:
  bearertokenauth/ingress: {{filename: {token}}}
receivers:
  otlp:
    protocols:
      grpc:
        tls: {{cert_file: {cert}, key_file: {key}}}
        auth: {{authenticator: bearertokenauth/ingress}}
service:
  extensions: [health_check, file_storage/queue, bearertokenauth/ingress]
"""


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not on PATH: cannot make the gateway's test certificate")
    cert, key = tmp_path / "gateway.crt", tmp_path / "gateway.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=otelcol-audit-gateway.test",
         "-addext", "subjectAltName=DNS:otelcol-audit-gateway.test,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_agent_forwards_security_events_unmodified_over_tls_with_a_token(
    collector_binary: Path, rsyslog: Rsyslog, tmp_path: Path
) -> None:
    """Through agent.yaml the gateway archive gets every event, its integrity chain intact."""
    cert, key = _self_signed(tmp_path)
    token = tmp_path / "gateway.token"
    token.write_text("agent-test-token\n")
    token.chmod(0o600)
    overlay = tmp_path / "gateway-tls-auth.yaml"
    overlay.write_text(GATEWAY_TLS_AUTH.format(token=token, cert=cert, key=key))
    grpc, health = free_port(), free_port()
    # only the gateway: the archive is what this test reads
    stack = SiemStack(collector_binary, rsyslog, tmp_path / "stack", extra_configs=[overlay])
    try:
        stack.start_gateway()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "OTELCOL_AUDIT_STATE_DIR": str(tmp_path / "agent-state"),
            "OTELCOL_AUDIT_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc}",
            "OTELCOL_AUDIT_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
            "OTELCOL_AUDIT_HEALTH_ENDPOINT": f"127.0.0.1:{health}",
            "OTELCOL_AUDIT_METRICS_PORT": str(free_port()),
            "OTELCOL_AUDIT_GATEWAY_ENDPOINT": f"127.0.0.1:{stack.ports['otlp_grpc']}",
            "OTELCOL_AUDIT_GATEWAY_CA_FILE": str(cert),
            "OTELCOL_AUDIT_GATEWAY_SERVER_NAME": "otelcol-audit-gateway.test",
            "OTELCOL_AUDIT_GATEWAY_TOKEN_FILE": str(token),
        }
        agent = Proc(
            "agent", [str(collector_binary), f"--config={CONFIG_DIR / 'agent.yaml'}"], env,
            tmp_path / "agent.log",
        ).start()  # fmt: skip
        try:
            agent_health = f"http://127.0.0.1:{health}/"
            wait_for(
                lambda: agent.check_alive() and http_status(agent_health) == HTTP_OK,
                timeout=60,
                what="agent health",
            )
            wait_for(lambda: tcp_open(grpc), timeout=60, what="agent OTLP")
            emitted = stack.emit(
                EVENTS,
                env={
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{grpc}",
                    "OTEL_PYTHON_AUDIT_DELIVERY": "durable",
                    "OTEL_PYTHON_AUDIT_SPOOL_DIR": str(tmp_path / "spool"),
                    "OTEL_PYTHON_AUDIT_HMAC_KEY": APP_KEY,
                    "OTEL_PYTHON_AUDIT_HMAC_KEY_ID": "agent1",
                },
            )
            ids = {e["event_id"] for e in emitted}

            def closed_chain() -> bool:
                # the agent's 4 queue consumers send batches concurrently, so records can arrive
                # out of order (seen here): verify needs allow_reorder behind an agent
                report = verify_files(
                    [stack.archive_out], key=APP_KEY.encode(), key_id="agent1", allow_reorder=True
                )
                unexpected = [f for f in report.findings if f.kind != "reordered"]
                return report.ok and not unexpected and report.chained > len(ids)

            # every event and the shutdown checkpoint arrived with matching HMACs: nothing on
            # the way (agent queue, TLS hop, gateway routing) changed or lost a record
            wait_for(closed_chain, timeout=60, what="the app's closed chain in the archive")
            archive = otlp_json_records(stack.archive_out)
            assert ids <= {r["attributes"].get("event.id") for r in archive}
            assert "agent-test-token" not in agent.log_tail(500)
        finally:
            agent.stop()
    finally:
        stack.stop_all()
