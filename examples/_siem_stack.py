"""Start the otel-audit collector gateway and its SIEM stand-ins on 127.0.0.1, for tests and demos.

Everything here starts real processes: the ``otelcol-audit`` binary built by
``scripts/build-collector.sh`` (gateway, and a second instance with the ``splunk_hec`` receiver
standing in for Splunk), and ``rsyslogd`` unpacked by ``scripts/install-siem-deps.sh`` with its own
config. Ports are free loopback ports; readiness is polled with deadlines; every process is
terminated (then killed) by :meth:`Proc.stop`. Used by ``tests/collector`` and ``examples/demo.py``;
not part of the installed package.

Run as a script (``python examples/_siem_stack.py emit``) it is the emitting *app*: it reads a JSON
list of records from stdin, emits them through ``otel_audit`` over OTLP, and prints one JSON line
per record with its event id and trace id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "collector-config"
BUILD_SCRIPT = ROOT / "scripts" / "build-collector.sh"
SIEM_DEPS_SCRIPT = ROOT / "scripts" / "install-siem-deps.sh"
SIEM_DEPS_ROOT = ROOT / ".cache" / "siem-deps" / "root"
HEC_TOKEN = "00000000-0000-4000-8000-000000000000"  # stand-in token, not a secret
HTTP_OK = 200
TEST_HASH_KEY = "ZmFrZS10ZXN0LWtleS1mb3ItbG9vcGJhY2stb25seQ"  # loopback tests only


class StackError(RuntimeError):
    """A stand-in could not be built, started or reached in time."""


# --- small utilities -----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except StackError:
            raise  # a process died: waiting longer cannot help
        except Exception as exc:  # a probe that fails is simply not ready yet
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})"
            raise StackError(msg)
        time.sleep(interval)


def _loopback_only(url: str) -> None:
    if not url.startswith("http://127.0.0.1:"):
        msg = f"refusing non-loopback URL {url}"
        raise ValueError(msg)


def http_status(url: str, timeout: float = 2.0) -> int:
    """The HTTP status of a GET to a loopback URL (0 when nothing answers)."""
    _loopback_only(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  # loopback only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def http_text(url: str, timeout: float = 5.0) -> str:
    """The body of a GET to a loopback URL."""
    _loopback_only(url)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  # loopback only
        return str(response.read().decode())


def tcp_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def metric_sum(metrics_text: str, name: str, **labels: str) -> float:
    """Sum of the Prometheus samples called ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
    return total


# --- processes -----------------------------------------------------------------------------------


@dataclass
class Proc:
    """A started child process with its log file; :meth:`stop` always reaps it."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> Proc:
        """Start the process in its own session, appending its output to :attr:`log_path`."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603  # fixed argv of our own binaries
            self.argv,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def check_alive(self) -> bool:
        """True while running; raise with the log tail if the process died."""
        if self.popen is None:
            return False
        if self.popen.poll() is not None:
            msg = f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
            raise StackError(msg)
        return True

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the process log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait, then SIGKILL; close the log. Safe to call twice."""
        try:
            if self.popen is not None and self.popen.poll() is None:
                self.popen.terminate()
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(timeout=timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def kill9(self) -> None:
        """SIGKILL without any chance to flush (crash simulation)."""
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None


# --- builds and dependencies ---------------------------------------------------------------------


def go_available() -> bool:
    """Whether a Go toolchain is on PATH."""
    return shutil.which("go") is not None


def build_collector() -> Path:
    """Run scripts/build-collector.sh (a no-op when up to date) and return the binary path."""
    result = subprocess.run(  # noqa: S603  # our own script
        ["/bin/bash", str(BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3000,
    )
    if result.returncode != 0:
        msg = f"build-collector.sh failed ({result.returncode}):\n{result.stderr[-4000:]}"
        raise StackError(msg)
    binary = Path(result.stdout.strip().splitlines()[-1])
    if not binary.is_file():
        msg = f"build-collector.sh printed {binary}, which does not exist"
        raise StackError(msg)
    return binary


@dataclass(frozen=True)
class Rsyslog:
    """Where the rsyslogd binary, its modules and libraries are."""

    binary: Path
    module_dir: Path | None
    library_path: str | None


def find_rsyslogd() -> Rsyslog | None:
    """Locate rsyslogd: $RSYSLOGD, the unpacked .cache copy (installing it), or PATH."""
    explicit = os.environ.get("RSYSLOGD")
    if explicit:
        return Rsyslog(Path(explicit), None, None)
    unpacked = SIEM_DEPS_ROOT / "usr" / "sbin" / "rsyslogd"
    if not unpacked.exists() and shutil.which("apt-get"):
        subprocess.run(  # noqa: S603  # our own script
            ["/bin/bash", str(SIEM_DEPS_SCRIPT)], capture_output=True, check=False, timeout=600
        )
    if unpacked.exists():
        libdirs = sorted((SIEM_DEPS_ROOT / "usr" / "lib").glob("*-linux-gnu"))
        libdirs += sorted((SIEM_DEPS_ROOT / "lib").glob("*-linux-gnu"))
        modules = [d / "rsyslog" for d in libdirs if (d / "rsyslog").is_dir()]
        return Rsyslog(
            unpacked, modules[0] if modules else None, ":".join(str(d) for d in libdirs) or None
        )
    found = shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None
    )
    return Rsyslog(Path(found), None, None) if found else None


# --- the stack -----------------------------------------------------------------------------------


RSYSLOG_CONF = """\
global(workDirectory="{workdir}")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="siem") {{
  action(type="omfile" file="{out}" template="raw" flushOnTXEnd="on" asyncWriting="off"
         fileCreateMode="0600")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="siem")
"""


@dataclass
class SiemStack:
    """Gateway + rsyslog + HEC stand-in in one directory, with free loopback ports."""

    binary: Path
    rsyslog: Rsyslog
    workdir: Path
    siem_exporters: str = "[splunk_hec/siem]"
    extra_env: Mapping[str, str] = field(default_factory=dict)
    extra_configs: list[Path] = field(default_factory=list)  # merged over gateway.yaml
    ports: dict[str, int] = field(default_factory=dict)
    gateway: Proc | None = None
    syslog: Proc | None = None
    hec: Proc | None = None
    _starts: int = 0

    def __post_init__(self) -> None:
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)  # sink files: owner only
        for name in ("otlp_grpc", "otlp_http", "health", "metrics", "syslog", "hec", "hec_health"):
            self.ports[name] = free_port()
        (self.workdir / "rsyslog-work").mkdir(exist_ok=True)

    # paths of what each sink received
    @property
    def state_dir(self) -> Path:
        """The gateway's OTELCOL_AUDIT_STATE_DIR (queues, archive, app logs)."""
        return self.workdir / "gateway-state"

    @property
    def syslog_out(self) -> Path:
        """Raw RFC 5424 lines as rsyslog received them."""
        return self.workdir / "siem-syslog.log"

    @property
    def hec_out(self) -> Path:
        """OTLP JSON lines written by the HEC stand-in."""
        return self.workdir / "hec-received.jsonl"

    @property
    def archive_out(self) -> Path:
        """The gateway's verbatim security-event archive."""
        return self.state_dir / "archive" / "security-events.jsonl"

    @property
    def app_logs_out(self) -> Path:
        """The gateway's ordinary log backend (file exporter)."""
        return self.state_dir / "app-logs.jsonl"

    @property
    def sinks(self) -> dict[str, Path]:
        """Every sink's file by name: the three SIEM-side sinks and the ordinary log backend."""
        return {
            "syslog": self.syslog_out,
            "hec": self.hec_out,
            "archive": self.archive_out,
            "app-logs": self.app_logs_out,
        }

    @property
    def otlp_grpc_endpoint(self) -> str:
        """http://127.0.0.1:<port> of the gateway's OTLP gRPC receiver."""
        return f"http://127.0.0.1:{self.ports['otlp_grpc']}"

    @property
    def metrics_url(self) -> str:
        """The gateway's Prometheus endpoint."""
        return f"http://127.0.0.1:{self.ports['metrics']}/metrics"

    @property
    def health_url(self) -> str:
        """The gateway's health_check endpoint."""
        return f"http://127.0.0.1:{self.ports['health']}/"

    def gateway_env(self) -> dict[str, str]:
        """Environment for gateway.yaml pointing every sink at the loopback stand-ins."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108  # fallback only
            "OTELCOL_AUDIT_STATE_DIR": str(self.state_dir),
            "OTELCOL_AUDIT_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.ports['otlp_grpc']}",
            "OTELCOL_AUDIT_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.ports['otlp_http']}",
            "OTELCOL_AUDIT_HEALTH_ENDPOINT": f"127.0.0.1:{self.ports['health']}",
            "OTELCOL_AUDIT_METRICS_PORT": str(self.ports["metrics"]),
            "OTELCOL_AUDIT_HASH_KEY": TEST_HASH_KEY,
            "OTELCOL_AUDIT_HASH_KEY_ID": "test1",
            "SIEM_SYSLOG_HOST": "127.0.0.1",
            "SIEM_SYSLOG_PORT": str(self.ports["syslog"]),
            "SIEM_SYSLOG_TLS_INSECURE": "true",
            "SIEM_HEC_ENDPOINT": f"http://127.0.0.1:{self.ports['hec']}/services/collector",
            "SIEM_HEC_TOKEN": HEC_TOKEN,
            "OTELCOL_AUDIT_SIEM_EXPORTERS": self.siem_exporters,
        }
        env.update(self.extra_env)
        return env

    def start_gateway(self, timeout: float = 60.0) -> Proc:
        """Start (or restart) the gateway and wait until its health endpoint answers 200."""
        self._starts += 1
        proc = Proc(
            "gateway",
            [
                str(self.binary),
                f"--config={CONFIG_DIR / 'gateway.yaml'}",
                *(f"--config={path}" for path in self.extra_configs),
            ],
            self.gateway_env(),
            self.workdir / f"gateway-{self._starts}.log",
        ).start()
        self.gateway = proc
        wait_for(
            lambda: proc.check_alive() and http_status(self.health_url) == HTTP_OK,
            timeout=timeout,
            what="gateway health",
        )
        wait_for(lambda: tcp_open(self.ports["otlp_grpc"]), timeout=timeout, what="gateway OTLP")
        return proc

    def start_syslog(self, timeout: float = 30.0) -> Proc:
        """Start rsyslogd with our own config on 127.0.0.1 and wait for its TCP port."""
        conf = self.workdir / "rsyslog.conf"
        conf.write_text(
            RSYSLOG_CONF.format(
                workdir=self.workdir / "rsyslog-work",
                out=self.syslog_out,
                port=self.ports["syslog"],
            )
        )
        argv = [str(self.rsyslog.binary), "-n", "-f", str(conf), "-i", str(self.workdir / "rs.pid")]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if self.rsyslog.module_dir is not None:
            argv += ["-M", str(self.rsyslog.module_dir)]
        if self.rsyslog.library_path:
            env["LD_LIBRARY_PATH"] = self.rsyslog.library_path
        proc = Proc("rsyslogd", argv, env, self.workdir / "rsyslogd.log").start()
        self.syslog = proc
        wait_for(
            lambda: proc.check_alive() and tcp_open(self.ports["syslog"]),
            timeout=timeout,
            what="rsyslogd TCP port",
        )
        return proc

    def start_hec(self, timeout: float = 60.0) -> Proc:
        """Start the Splunk HEC stand-in (second collector: splunk_hec receiver -> file)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HEC_STANDIN_ENDPOINT": f"127.0.0.1:{self.ports['hec']}",
            "HEC_STANDIN_HEALTH_ENDPOINT": f"127.0.0.1:{self.ports['hec_health']}",
            "HEC_STANDIN_OUT": str(self.hec_out),
        }
        proc = Proc(
            "hec-standin",
            [str(self.binary), f"--config={CONFIG_DIR / 'test' / 'hec-standin.yaml'}"],
            env,
            self.workdir / "hec-standin.log",
        ).start()
        self.hec = proc
        health = f"http://127.0.0.1:{self.ports['hec_health']}/"
        wait_for(
            lambda: proc.check_alive() and http_status(health) == HTTP_OK,
            timeout=timeout,
            what="HEC stand-in health",
        )
        wait_for(lambda: tcp_open(self.ports["hec"]), timeout=timeout, what="HEC stand-in port")
        return proc

    def start_all(self) -> None:
        """Start the sinks first, then the gateway."""
        self.start_syslog()
        self.start_hec()
        self.start_gateway()

    def stop_all(self) -> None:
        """Stop the gateway first (it flushes), then the sinks."""
        for proc in (self.gateway, self.hec, self.syslog):
            if proc is not None:
                proc.stop()

    def emitter_env(self) -> dict[str, str]:
        """Environment for an app process exporting to this gateway with otel-audit."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            {
                "OTEL_SERVICE_NAME": "payments-api",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=e2e,host.name=app-1",
                "OTEL_LOGS_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_grpc_endpoint,
                "OTEL_EXPORTER_OTLP_INSECURE": "true",
                "OTEL_BLRP_SCHEDULE_DELAY": "200",
                "OTEL_PYTHON_AUDIT_DELIVERY": "batch",
                "PYTHONPATH": str(ROOT / "src"),
            }
        )
        return env

    def emit(
        self,
        records: list[dict[str, Any]],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 120.0,
    ) -> list[dict[str, Any]]:
        """Run the emitting app in a subprocess (``env`` overrides); one result per record."""
        result = subprocess.run(  # noqa: S603  # our own interpreter and script
            [sys.executable, str(Path(__file__).resolve()), "emit"],
            input=json.dumps(records),
            capture_output=True,
            text=True,
            env={**self.emitter_env(), **(env or {})},
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            msg = f"emitter failed ({result.returncode}):\n{result.stderr[-4000:]}"
            raise StackError(msg)
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@contextmanager
def running_stack(
    binary: Path, rsyslog: Rsyslog, workdir: Path, **kwargs: Any
) -> Iterator[SiemStack]:
    """A started :class:`SiemStack`, always stopped on exit."""
    stack = SiemStack(binary, rsyslog, workdir, **kwargs)
    try:
        stack.start_all()
        yield stack
    finally:
        stack.stop_all()


# --- reading what the sinks received -------------------------------------------------------------


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Print ``rows`` under ``header`` as an aligned plain-text table (for the demo)."""
    cells = [tuple(str(c) for c in header), *[tuple(str(c) for c in r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n== {title}")
    for n, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def read_text(path: Path) -> str:
    """File contents, or '' when the file does not exist yet."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def otlp_json_records(path: Path) -> list[dict[str, Any]]:
    """Flatten OTLP-JSON lines (file exporter) into records with decoded attributes."""
    out: list[dict[str, Any]] = []
    for line in read_text(path).splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        for rl in doc.get("resourceLogs", []):
            resource = kv_map(rl.get("resource", {}).get("attributes", []))
            for sl in rl.get("scopeLogs", []):
                for rec in sl.get("logRecords", []):
                    out.append(  # noqa: PERF401  # readable nested walk
                        {
                            "resource": resource,
                            "attributes": kv_map(rec.get("attributes", [])),
                            "body": any_value(rec.get("body", {})),
                            "trace_id": rec.get("traceId", ""),
                            "span_id": rec.get("spanId", ""),
                            "event_name": rec.get("eventName", ""),
                            "severity": rec.get("severityNumber", 0),
                        }
                    )
    return out


def any_value(value: Mapping[str, Any]) -> Any:  # noqa: PLR0911  # one return per type
    """Decode an OTLP-JSON AnyValue."""
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return kv_map(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def kv_map(items: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Decode an OTLP-JSON KeyValue list."""
    return {item["key"]: any_value(item.get("value", {})) for item in items}


def syslog_messages(path: Path) -> list[dict[str, Any]]:
    """Parse the RFC 5424 lines rsyslog wrote: header fields, SD text and the JSON MSG."""
    out: list[dict[str, Any]] = []
    for line in read_text(path).splitlines():
        if not line.startswith("<"):
            continue
        header, sep, rest = line.partition("] ")
        if not sep:
            continue
        parts = header.split(" ", 6)
        if len(parts) < 7:  # noqa: PLR2004  # PRI+VERSION TS HOST APP PROCID MSGID SD
            continue
        try:
            msg = json.loads(rest)
        except json.JSONDecodeError:
            msg = None
        out.append(
            {
                "pri_version": parts[0],
                "hostname": parts[2],
                "appname": parts[3],
                "msgid": parts[5],
                "sd": parts[6] + "]",
                "msg": msg,
                "raw": line,
            }
        )
    return out


# --- the emitting app (run in a subprocess) ------------------------------------------------------


def _emit_main() -> int:
    """Emit the records described on stdin through otel_audit, print ids as JSON lines."""
    import logging  # noqa: PLC0415  # only the emitter needs these

    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry._logs import SeverityNumber  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    import otel_audit  # noqa: PLC0415

    trace.set_tracer_provider(TracerProvider())
    tracer = trace.get_tracer("e2e-emitter")
    otel_audit.configure()
    raw_provider = _raw_provider()
    app_logger = logging.getLogger("payments.app")
    app_logger.setLevel(logging.INFO)
    records = json.load(sys.stdin)
    for index, spec in enumerate(records):
        untraced = spec.get("untraced", False)  # e.g. a background job: no active span
        span_cm = nullcontext() if untraced else tracer.start_as_current_span(f"request-{index}")
        with span_cm as span:
            trace_id = "" if span is None else format(span.get_span_context().trace_id, "032x")
            if spec["kind"] == "security":
                event_id = otel_audit.security_event(
                    spec["name"],
                    actor=spec.get("actor"),
                    reason=spec.get("reason"),
                    message=spec.get("message"),
                    **spec.get("details", {}),
                )
            elif spec["kind"] == "raw_security":
                # a misbehaving app that bypasses otel-audit (no tier-1 redaction): only the
                # collector's second line stands between these attributes and the SIEM
                event_id = spec["details"]["event.id"]
                raw_provider.get_logger("raw-app").emit(
                    severity_number=SeverityNumber.WARN,
                    severity_text="WARN",
                    body=spec.get("message", spec["name"]),
                    attributes={"audit.event.name": spec["name"], **spec["details"]},
                    event_name=spec["name"],
                )
            else:
                event_id = None
                app_logger.info(spec["message"], extra=spec.get("details", {}))
        print(json.dumps({"index": index, "event_id": event_id, "trace_id": trace_id}))
    otel_audit.shutdown()
    raw_provider.shutdown()
    return 0


def _raw_provider() -> Any:
    """A plain OpenTelemetry SDK LoggerProvider exporting OTLP/gRPC, without otel-audit."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (  # noqa: PLC0415
        OTLPLogExporter,
    )
    from opentelemetry.sdk._logs import LoggerProvider  # noqa: PLC0415
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: PLC0415
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

    provider = LoggerProvider(resource=Resource.create({"service.name": "legacy-app"}))
    exporter = OTLPLogExporter(endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"], insecure=True)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return provider


if __name__ == "__main__":
    if sys.argv[1:] == ["emit"]:
        sys.exit(_emit_main())
    sys.stderr.write("usage: _siem_stack.py emit < records.json\n")
    sys.exit(2)
