"""Demo: app -> otel-audit -> otelcol-audit gateway -> SIEM sinks, all on 127.0.0.1.

Builds (or reuses) the collector, starts rsyslog and a Splunk HEC stand-in, starts the gateway from
collector-config/gateway.yaml, emits a realistic series of security events and ordinary logs from an
app subprocess through otel-audit, prints what each sink received, and stops everything.

Run: .venv/bin/python examples/collector_demo.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _siem_stack import (
    StackError,
    build_collector,
    find_rsyslogd,
    go_available,
    otlp_json_records,
    running_stack,
    syslog_messages,
    wait_for,
)

SCENARIO: list[dict[str, Any]] = [
    {"kind": "app", "message": "GET /login 200", "details": {"http.route": "/login"}},
    {
        "kind": "security",
        "name": "authentication.failure",
        "actor": "alice",
        "reason": "bad_password",
        "details": {
            "client.address": "203.0.113.7",
            "http.route": "/login",
            "password": "hunter2-correct-horse",  # planted: must not reach any sink
        },
    },
    {
        "kind": "security",
        "name": "authentication.success",
        "actor": "alice",
        "details": {"client.address": "203.0.113.7", "http.route": "/login"},
    },
    {"kind": "app", "message": "cart loaded in 12 ms", "details": {"http.route": "/cart"}},
    {
        "kind": "security",
        "name": "authorization.denied",
        "actor": "alice",
        "reason": "missing_role:admin",
        "details": {"http.route": "/admin/users"},
    },
    {
        "kind": "security",
        "name": "account.role_granted",
        "actor": "root-admin",
        "details": {"audit.target": "bob", "user.roles": "admin"},
    },
    {
        "kind": "security",
        "name": "data.exported",
        "actor": "bob",
        "details": {"audit.data.record_count": 5000, "note": "key AKIAIOSFODNN7EXAMPLE"},
    },
    {"kind": "app", "message": "payment batch settled", "details": {}},
]


def _table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    cells = [tuple(str(c) for c in header), *[tuple(str(c) for c in r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n== {title} ({len(rows)} records)")
    for n, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write sink files here and keep them")
    args = parser.parse_args()
    if not go_available():
        print("Go is not installed: cannot build the collector (see scripts/build-collector.sh)")
        return 2
    print("building/reusing otelcol-audit (first build takes a few minutes) ...")
    binary = build_collector()
    rsyslog = find_rsyslogd()
    if rsyslog is None:
        print("rsyslogd not available: run scripts/install-siem-deps.sh")
        return 2
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="otel-audit-demo-"))
    try:
        with running_stack(binary, rsyslog, workdir) as stack:
            print(f"gateway up: OTLP {stack.otlp_grpc_endpoint}, health {stack.health_url}")
            emitted = stack.emit(SCENARIO)
            ids = {e["event_id"] for e in emitted if e["event_id"]}
            apps = sum(1 for s in SCENARIO if s["kind"] == "app")
            wait_for(
                lambda: (
                    ids
                    <= {
                        m["msg"]["metadata"]["uid"]
                        for m in syslog_messages(stack.syslog_out)
                        if m["msg"]
                    }
                    and ids
                    <= {r["attributes"].get("event.id") for r in otlp_json_records(stack.hec_out)}
                    and len(otlp_json_records(stack.app_logs_out)) >= apps
                ),
                timeout=60,
                what="all sinks",
            )
            syslog = syslog_messages(stack.syslog_out)
            _table(
                "rsyslog (RFC 5424 over TCP, OCSF JSON in MSG)",
                ("PRI", "MSGID", "class_uid", "type_uid", "status_id", "user", "trace id"),
                [
                    (
                        m["pri_version"],
                        m["msgid"],
                        m["msg"]["class_uid"],
                        m["msg"]["type_uid"],
                        m["msg"]["status_id"],
                        m["msg"]["actor"]["user"]["uid"],
                        m["msg"]["metadata"]["correlation_uid"][:16] + "…",
                    )
                    for m in syslog
                    if m["msg"]
                ],
            )
            _table(
                "Splunk HEC stand-in (OCSF event + ECS fields)",
                ("event.code", "event.outcome", "event.category", "severity_id", "index"),
                [
                    (
                        r["attributes"].get("event.code"),
                        r["attributes"].get("event.outcome"),
                        r["attributes"].get("event.category"),
                        int(r["body"]["severity_id"]),
                        r["resource"].get("com.splunk.index"),
                    )
                    for r in otlp_json_records(stack.hec_out)
                ],
            )
            _table(
                "security archive (verbatim OTLP JSON, for otel-audit verify)",
                ("event_name", "event.id", "body"),
                [
                    (r["event_name"], r["attributes"].get("event.id"), r["body"])
                    for r in otlp_json_records(stack.archive_out)
                ],
            )
            _table(
                "ordinary log backend (app-logs.jsonl)",
                ("severity", "body", "trace id"),
                [
                    (r["severity"], r["body"], r["trace_id"])
                    for r in otlp_json_records(stack.app_logs_out)
                ],
            )
            planted = ("hunter2-correct-horse", "AKIAIOSFODNN7EXAMPLE")
            leaks = [
                (name, secret)
                for name, path in (
                    ("syslog", stack.syslog_out),
                    ("hec", stack.hec_out),
                    ("archive", stack.archive_out),
                    ("app", stack.app_logs_out),
                )
                for secret in planted
                if secret in path.read_text(errors="replace")
            ]
            print(f"\nplanted secrets found in sinks: {leaks or 'none'}")
            print(f"sink files: {workdir}")
    except StackError as exc:
        print(f"demo failed: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
