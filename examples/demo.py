"""
The main job, end to end on loopback: ``make demo``.

Starts the otel-audit collector gateway with its SIEM stand-ins (rsyslog, a Splunk HEC
receiver, the verbatim JSON archive, the ordinary log backend), runs the Flask example
under ``opentelemetry-instrument`` with environment variables only, drives a scripted
session against it through a trusted proxy header (logins, password change, MFA, API key,
exports, a forbidden admin call, a brute-force burst, an admin role grant), stops the app
so it flushes, waits until ``otel-audit verify`` finds the app's integrity chain complete
in the archive and every SIEM sink holds as many records, and prints what each sink
received, as tables. Finally it checks that no password, token or API key the session used
appears in any sink's bytes. The sink files are removed unless ``DEMO_KEEP=/some/dir``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from otel_audit.export import VerifyReport, verify_files

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _siem_stack import (  # noqa: E402
    SiemStack,
    StackError,
    build_collector,
    find_rsyslogd,
    free_port,
    go_available,
    otlp_json_records,
    print_table,
    running_stack,
    syslog_messages,
    wait_for,
)
from session import run_session  # noqa: E402

DEMO_HMAC_KEY = "demo-only-key-not-a-secret-0123456789"  # loopback demo only
DEMO_KEY_ID = "demo1"


def _start_app(stack: SiemStack, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    instrument = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    if instrument is None:
        msg = "opentelemetry-instrument is not installed next to this interpreter"
        raise StackError(msg)
    port = free_port()
    env = stack.emitter_env()
    env.pop("OTEL_PYTHON_AUDIT_DELIVERY", None)  # the real default: durable delivery
    env.update(
        {
            "OTEL_SERVICE_NAME": "flask-example",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_PYTHON_AUDIT_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
            "OTEL_PYTHON_AUDIT_DETECTIONS": "true",
            "OTEL_PYTHON_AUDIT_SPOOL_DIR": str(workdir / "spool"),
            "OTEL_PYTHON_AUDIT_HMAC_KEY": DEMO_HMAC_KEY,
            "OTEL_PYTHON_AUDIT_HMAC_KEY_ID": DEMO_KEY_ID,
            "PYTHONUNBUFFERED": "1",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{stack.ports['otlp_http']}",
        }
    )
    with (workdir / "flask-app.log").open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(  # noqa: S603  # our own interpreter and the example app
            [
                instrument,
                sys.executable,
                "-m",
                "waitress",
                f"--listen=127.0.0.1:{port}",
                "--threads=8",
                "--no-clear-untrusted-proxy-headers",
                "app:app",
            ],
            cwd=HERE / "flask_app",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            msg = f"the Flask app exited early; see {workdir / 'flask-app.log'}"
            raise StackError(msg)
        try:
            return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200  # noqa: PLR2004
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=60, what="Flask example health")
    return process, base_url


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)  # KeyboardInterrupt: atexit flushes the audit pipeline
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _short(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _wait_for_delivery(stack: SiemStack) -> VerifyReport:
    """
    Wait until the archive holds the app's complete, closed chain and every SIEM sink has it.

    ``otel-audit verify`` tells when the archive is complete: the app's integrity stream ends in
    its shutdown checkpoint with no gap. Then rsyslog and the HEC stand-in must hold as many
    records as the archive (they get every security event the archive gets).
    """

    def delivered() -> VerifyReport | None:
        report = verify_files([stack.archive_out], key=DEMO_HMAC_KEY.encode(), key_id=DEMO_KEY_ID)
        incomplete = {"open_tail", "deleted", "unreadable"}
        if not report.chained or any(f.kind in incomplete for f in report.findings):
            return None
        syslog = [m for m in syslog_messages(stack.syslog_out) if m["msg"]]
        hec = otlp_json_records(stack.hec_out)
        return report if len(syslog) == len(hec) == report.records else None

    report: VerifyReport = wait_for(
        delivered, timeout=90, interval=0.5, what="the app's events at every sink"
    )
    return report


def _print_sinks(stack: SiemStack, report: VerifyReport) -> None:
    archive = otlp_json_records(stack.archive_out)
    print_table(
        f"{len(archive)} security events as archived (verbatim OTLP JSON, for otel-audit verify)",
        ("event", "outcome", "user", "client.address", "route", "trace id"),
        [
            (
                r["event_name"],
                r["attributes"].get("event.outcome", ""),
                r["attributes"].get("user.name") or r["attributes"].get("user.id") or "",
                r["attributes"].get("client.address", ""),
                r["attributes"].get("http.route") or r["attributes"].get("url.path") or "",
                _short(r["trace_id"], 17),
            )
            for r in archive
        ],
    )
    counts = Counter(r["event_name"] for r in archive)
    # what the SIEMs got, one example per event type: the OCSF object rsyslog received in MSG,
    # and the index the HEC event was routed to
    syslog_by_type: dict[str, dict[str, Any]] = {}
    for m in syslog_messages(stack.syslog_out):
        if m["msg"]:
            syslog_by_type.setdefault(m["msg"]["metadata"]["event_code"], m)
    hec_index = {
        r["attributes"].get("event.code"): r["resource"].get("com.splunk.index")
        for r in otlp_json_records(stack.hec_out)
    }
    print_table(
        f"{len(counts)} event types as the SIEMs see them (OCSF 1.1; syslog PRI; HEC index)",
        ("event", "count", "PRI", "class_uid", "type_uid", "status_id", "severity_id", "index"),
        [
            (
                name,
                count,
                syslog_by_type[name]["pri_version"] if name in syslog_by_type else "",
                *(
                    syslog_by_type[name]["msg"].get(k, "") if name in syslog_by_type else ""
                    for k in ("class_uid", "type_uid", "status_id", "severity_id")
                ),
                hec_index.get(name, ""),
            )
            for name, count in sorted(counts.items())
        ],
    )
    print_table(
        "What each sink received",
        ("sink", "records", "shape"),
        [
            (
                "rsyslog (RFC 5424/TCP)",
                len([m for m in syslog_messages(stack.syslog_out) if m["msg"]]),
                "OCSF JSON in MSG",
            ),
            (
                "Splunk HEC stand-in",
                len(otlp_json_records(stack.hec_out)),
                "OCSF event + ECS fields",
            ),
            ("security archive", len(archive), "verbatim OTLP JSON"),
            (
                "ordinary log backend",
                len(otlp_json_records(stack.app_logs_out)),
                "everything that is not security",
            ),
        ],
    )
    alerts = sorted(n for n in counts if n.startswith("alert."))
    print(f"\nalerts raised in-process: {', '.join(alerts) or 'none'}")
    problems = [f for f in report.findings if f.severity != "info"]
    print(
        f"otel-audit verify on the archive: {report.chained} chained records in "
        f"{report.streams} stream(s), HMAC checked, "
        f"{'intact' if report.ok and not problems else 'PROBLEMS: ' + str(problems)}"
    )


def _leaks(stack: SiemStack, secrets: set[str]) -> list[tuple[str, int]]:
    """(sink, how many of the session's secrets it holds) for every sink holding any."""
    found = []
    for name, path in stack.sinks.items():
        data = path.read_bytes() if path.exists() else b""
        count = sum(1 for s in secrets if s.encode() in data)
        if count:
            found.append((name, count))  # never print any part of a secret
    return found


def main() -> int:
    """Run the demo; exit code 0 when every sink got its events and nothing leaked."""
    if not go_available():
        print("Go is not installed: cannot build the collector (see scripts/build-collector.sh)")
        return 2
    print("building/reusing otelcol-audit (the first build takes a few minutes) ...")
    binary = build_collector()
    rsyslog = find_rsyslogd()
    if rsyslog is None:
        print("rsyslogd not available: run scripts/install-siem-deps.sh")
        return 2
    keep = os.environ.get("DEMO_KEEP")
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="otel-audit-demo-"))
    succeeded = False
    try:
        with running_stack(binary, rsyslog, workdir) as stack:
            print(f"collector gateway up: OTLP {stack.otlp_grpc_endpoint}")
            process, base_url = _start_app(stack, workdir)
            print(f"Flask example up at {base_url} (opentelemetry-instrument, env vars only)")
            try:
                result = run_session(base_url)
                print(f"scripted session done: {len(result.statuses)} HTTP requests")
            finally:
                _stop(process)  # the app flushes its audit pipeline and closes its chain
            report = _wait_for_delivery(stack)
            if stack.gateway is not None:
                stack.gateway.stop()  # flushes the ordinary log backend's batch and file
            _print_sinks(stack, report)
            leaks = _leaks(stack, result.secrets)
            print(f"passwords/tokens/keys of the session found in any sink: {leaks or 'none'}")
            succeeded = report.ok and not leaks
            return 0 if succeeded else 1
    except StackError as exc:
        print(f"demo failed: {exc}")
        return 1
    finally:
        if keep or not succeeded:
            print(f"sink files and process logs: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            print("(set DEMO_KEEP=/some/dir to keep the sink files)")


if __name__ == "__main__":
    sys.exit(main())
