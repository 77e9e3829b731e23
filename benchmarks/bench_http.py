"""
Request latency and throughput of the Flask example with and without otel-audit.

Both servers run the same app under ``opentelemetry-instrument`` with waitress on
127.0.0.1, exporting traces and logs over OTLP/HTTP to a sink in this process. The
baseline has ``OTEL_PYTHON_AUDIT_ENABLED=false`` (plain OpenTelemetry: the middleware is
a pass-through, security events go to the SDK's batch path untouched); "audit" is the
default pipeline (tier-1 redaction, durable delivery, detections on). Load comes from a
separate process (``_loadgen.py``), rounds alternate between the two servers so drift
hits both, and the result is printed as ratios.

Each scenario runs twice. *Saturated*: ``--concurrency`` connections in a closed loop, so
the server never idles; this measures throughput and CPU per request (user + system,
every thread, from ``/proc``), and its p50 is mostly queueing. *Open loop*: requests due
at a fixed rate, ``--utilisation`` (default half) of the baseline's saturated
throughput in that scenario, latency counted from when each request was due. That p50 is
the added latency a user of a server with headroom sees, and the figure the budget
(audit/baseline p50 <= 1.10) is about.

    python benchmarks/bench_http.py [--seconds 3] [--rounds 3] [--concurrency 4]
        [--utilisation 0.5] [--open-connections 8] [--delivery durable|batch]
        [--only TEXT] [--variant NAME=VALUE ...]

``--variant`` adds a third server: otel-audit with these extra environment variables
(e.g. ``--variant OTEL_PYTHON_AUDIT_DEFER_EVENTS=false``). It takes part in the same
rounds, so two designs are compared under the same host noise, which on a shared machine
is larger than the difference between runs of one design. With three servers the order
of a round reverses every round, so none always follows the same neighbour.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "examples" / "flask_app"
LOADGEN = Path(__file__).resolve().parent / "_loadgen.py"
SETTLE_S = 2.0  # > the 1 s export schedule delays, so a scenario's export work is counted
QUIET_WINDOW_S = 0.3
P50_BUDGET = 1.10  # issue 4: at most 10% added median latency with tier-1 redaction on

SCENARIOS = {
    # (method, path, body): what each request does
    "healthz (no event)": ("GET", "/healthz", "-"),
    "401 (automatic authorization.denied)": ("GET", "/admin/users", "-"),
    "failed login (event + careless secret redacted)": (
        "POST",
        "/login",
        json.dumps({"username": "bob", "password": "guess-Hunter2-bench"}),
    ),
}


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    port: int,
    sink: str,
    tmp: Path,
    *,
    audit: bool,
    delivery: str,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "OTEL_SERVICE_NAME": "bench-flask",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink,
        # Spans leave within a second, as logs do, so a round's export work is over
        # before the other server's round (the default waits up to 5 s).
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
        "OTEL_PYTHON_AUDIT_TRUSTED_PROXIES": "127.0.0.1/32",
        "OTEL_PYTHON_AUDIT_SPOOL_DIR": str(tmp / f"spool-{port}"),
        "OTEL_PYTHON_AUDIT_DETECTIONS": "true",
        # a high bar so the benchmark measures the steady state, not alert storms
        "OTEL_PYTHON_AUDIT_BRUTE_FORCE_THRESHOLD": "1000000",
        "OTEL_PYTHON_AUDIT_STUFFING_THRESHOLD": "1000000",
    }
    if not audit:
        env["OTEL_PYTHON_AUDIT_ENABLED"] = "false"
    env["OTEL_PYTHON_AUDIT_DELIVERY"] = delivery
    env.update(extra_env or {})
    instrument = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    if instrument is None:
        sys.exit("opentelemetry-instrument is not installed next to this interpreter")
    command = [
        instrument, sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}",
        "--threads=4", "--no-clear-untrusted-proxy-headers", "app:app",
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603  # our own interpreter and example
        command, cwd=APP_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                sys.exit(f"server exited with {process.returncode}")
            time.sleep(0.1)
    process.kill()
    sys.exit("server did not become healthy")


def load(
    port: int, scenario: tuple[str, str, str], concurrency: int, seconds: float, rate: float = 0.0
) -> dict[str, Any]:
    method, path, body = scenario
    out = subprocess.run(  # noqa: S603  # our own interpreter and load generator
        [sys.executable, str(LOADGEN), str(port), method, path, body,
         str(concurrency), str(seconds), str(rate)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_quiet(pid: int, limit_s: float = 2 * SETTLE_S) -> None:
    """Return once the process has used under 1% of a CPU for 0.3 s (or after ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    time.sleep(QUIET_WINDOW_S)
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(QUIET_WINDOW_S)
        now = cpu_seconds(pid)
        if now - before < QUIET_WINDOW_S * 0.01:
            return
        before = now


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Stats = tuple[float, float, float, float]  # p50 ms, p99 ms, req/s, CPU µs per request


def measure(  # noqa: PLR0917  # the benchmark's knobs, passed through
    servers: dict[str, subprocess.Popen[bytes]],
    ports: dict[str, int],
    scenario: tuple[str, str, str],
    args: argparse.Namespace,
    label: str,
    load_label: str,
    rate: float,
) -> dict[str, Stats]:
    """Alternating rounds against every server; prints their rows and ratios to the baseline."""
    names = list(servers)
    samples: dict[str, list[float]] = {name: [] for name in names}
    elapsed = dict.fromkeys(names, 0.0)
    cpu = {name: cpu_seconds(servers[name].pid) for name in names}
    connections = args.concurrency if rate <= 0 else args.open_connections
    for round_no in range(args.rounds):
        order = names if round_no % 2 == 0 or len(names) < 3 else names[::-1]
        for name in order:
            result = load(ports[name], scenario, connections, args.seconds, rate)
            samples[name].extend(result["latencies_ms"])
            elapsed[name] += result["elapsed_s"]
            # The export threads finish this round's records before the next server's
            # round starts, so no server's deferred work lands in another's timing.
            wait_until_quiet(servers[name].pid)
    time.sleep(SETTLE_S)  # let the export threads finish this scenario's records
    stats: dict[str, Stats] = {}
    for name in names:
        lat = samples[name]
        used = cpu_seconds(servers[name].pid) - cpu[name]
        stats[name] = (
            statistics.median(lat),
            percentile(lat, 0.99),
            len(lat) / elapsed[name],
            used / len(lat) * 1e6,
        )
        p50, p99, rps, cpu_us = stats[name]
        print(
            f"{label:<48} {load_label:<16} {name:<9} {p50:>8.3f} {p99:>8.3f} {rps:>8.0f} "
            f"{cpu_us:>10.0f}"
        )
    b = stats["baseline"]
    for name in names[1:]:
        a = stats[name]
        print(
            f"{'':<48} {'':<16} {'ratio':<9} {a[0] / b[0]:>8.3f} {a[1] / b[1]:>8.3f} "
            f"{a[2] / b[2]:>8.3f} {a[3] / b[3]:>10.3f}   ({name} / baseline)"
        )
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description="HTTP latency with and without otel-audit")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--delivery", choices=("durable", "batch"), default="durable")
    parser.add_argument(
        "--utilisation",
        type=float,
        default=0.5,
        help="open-loop rate as a fraction of the baseline's saturated throughput",
    )
    parser.add_argument("--open-connections", type=int, default=8)
    parser.add_argument(
        "--only", default="", help="run only the scenarios whose label contains this text"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="run a third server, otel-audit with these environment variables (repeatable)",
    )
    args = parser.parse_args()
    if any("=" not in item for item in args.variant):
        parser.error("--variant takes NAME=VALUE")
    variant = dict(item.split("=", 1) for item in args.variant)

    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        ports = {"baseline": free_port(), "audit": free_port()}
        if variant:
            ports["variant"] = free_port()
            print("variant: otel-audit with " + " ".join(f"{k}={v}" for k, v in variant.items()))
        servers = {
            name: start_server(
                port,
                sink_url,
                tmp,
                audit=name != "baseline",
                delivery=args.delivery,
                extra_env=variant if name == "variant" else None,
            )
            for name, port in ports.items()
        }
        try:
            print(
                f"{'scenario':<48} {'load':<16} {'mode':<9} {'p50 ms':>8} {'p99 ms':>8} "
                f"{'req/s':>8} {'cpu us/req':>10}"
            )
            for label, scenario in SCENARIOS.items():
                if args.only not in label:
                    continue
                for port in ports.values():  # warm-up
                    load(port, scenario, args.concurrency, 1.0)
                time.sleep(SETTLE_S)
                saturated = measure(servers, ports, scenario, args, label, "saturated", 0.0)
                rate = args.utilisation * saturated["baseline"][2]
                open_loop = measure(
                    servers, ports, scenario, args, label, f"{rate:.0f} req/s", rate
                )
                for name in list(servers)[1:]:
                    ratio = open_loop[name][0] / open_loop["baseline"][0]
                    verdict = "OK" if ratio <= P50_BUDGET else "OVER"
                    print(
                        f"{'':<48} budget open-loop p50 <= {P50_BUDGET:.2f}: {verdict} "
                        f"({ratio:.2f}, {name})"
                    )
        finally:
            for process in servers.values():
                process.terminate()
            for process in servers.values():
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
            sink.shutdown()


if __name__ == "__main__":
    main()
