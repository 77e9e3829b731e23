"""
Real OTLP receivers on 127.0.0.1 for the export tests, with fault injection.

``HttpReceiver`` is a threading HTTP server that decodes ``ExportLogsServiceRequest``
protobuf (gzip/deflate aware). ``GrpcReceiver`` serves ``LogsService/Export``. Both keep
every received log record and can be told to misbehave for the next N requests:
answer 503 / 429 with ``Retry-After``, hang longer than the client's timeout, close the
connection without answering, or accept with ``partial_success``.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbLogRecord


@dataclass
class Fault:
    """What to do instead of a clean 200 for the next ``times`` requests."""

    kind: str  # "status", "slow", "close", "partial"
    times: int = 1
    status: int = 503
    retry_after: str | None = None
    delay_s: float = 0.0
    rejected: int = 1


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 30.0, interval_s: float = 0.02
) -> bool:
    """Poll ``predicate`` until true or the deadline; never asserts on timing."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[ExportLogsServiceRequest] = []
        self.attempts = 0
        self.faults: list[Fault] = []
        self.fault_log: list[str] = []

    def next_fault(self) -> Fault | None:
        with self.lock:
            self.attempts += 1
            while self.faults:
                fault = self.faults[0]
                if fault.times <= 0:
                    self.faults.pop(0)
                    continue
                fault.times -= 1
                self.fault_log.append(fault.kind)
                return fault
            return None

    def add(self, request: ExportLogsServiceRequest) -> None:
        with self.lock:
            self.requests.append(request)


class _ReceiverBase:
    def __init__(self) -> None:
        self._store = _Store()

    def inject(self, fault: Fault) -> None:
        """Misbehave for the next ``fault.times`` requests (faults queue up in order)."""
        with self._store.lock:
            self._store.faults.append(fault)

    @property
    def attempts(self) -> int:
        """Requests seen, including faulted ones."""
        return self._store.attempts

    @property
    def fault_log(self) -> list[str]:
        """Kinds of the faults served so far."""
        with self._store.lock:
            return list(self._store.fault_log)

    @property
    def requests(self) -> list[ExportLogsServiceRequest]:
        """Requests accepted (a copy of the list)."""
        with self._store.lock:
            return list(self._store.requests)

    def records(self) -> list[PbLogRecord]:
        """Every accepted log record, in arrival order."""
        out: list[PbLogRecord] = []
        for request in self.requests:
            for rl in request.resource_logs:
                for sl in rl.scope_logs:
                    out.extend(sl.log_records)
        return out

    def attribute_values(self, key: str) -> list[Any]:
        """The values of one attribute over all records (missing ones skipped)."""
        out = []
        for record in self.records():
            for kv in record.attributes:
                if kv.key == key:
                    kind = kv.value.WhichOneof("value")
                    out.append(getattr(kv.value, kind) if kind else None)
        return out

    def event_ids(self) -> list[str]:
        """``event.id`` of every record, duplicates included."""
        return [str(v) for v in self.attribute_values("event.id")]

    def count(self) -> int:
        """Records accepted so far."""
        return len(self.records())

    def write_otlp_json(self, path: Path) -> None:
        """Write what arrived like the collector's file exporter: one OTLP JSON request per line."""
        with path.open("w", encoding="utf-8") as fh:
            for request in self.requests:
                fh.write(json.dumps(to_otlp_json(request), separators=(",", ":")) + "\n")


def to_otlp_json(request: ExportLogsServiceRequest) -> dict[str, Any]:
    """OTLP/JSON: protobuf JSON mapping, but trace and span ids as hex (spec deviation)."""
    obj = json_format.MessageToDict(request)
    for rl in obj.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            for lr in sl.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in lr:
                        lr[key] = base64.b64decode(lr[key]).hex()
    return obj


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Injected connection faults raise in the handler; that is the point."""


class HttpReceiver(_ReceiverBase):
    """An OTLP/HTTP protobuf receiver; ``port=0`` picks a free one."""

    def __init__(self, port: int = 0) -> None:  # noqa: C901  # the handler lives inside
        super().__init__()
        store = self._store

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                encoding = (self.headers.get("content-encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                fault = store.next_fault()
                if fault is not None and fault.kind == "close":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None and fault.kind == "slow":
                    time.sleep(fault.delay_s)
                    self._reply(503, b"")
                    return
                if fault is not None and fault.kind == "status":
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    self._reply(fault.status, b"", headers)
                    return
                request = ExportLogsServiceRequest.FromString(body)
                store.add(request)
                response = ExportLogsServiceResponse()
                if fault is not None and fault.kind == "partial":
                    response.partial_success.CopyFrom(
                        ExportLogsPartialSuccess(
                            rejected_log_records=fault.rejected, error_message="rejected by test"
                        )
                    )
                self._reply(200, response.SerializeToString())

            def _reply(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self._server = _QuietServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.endpoint = f"http://127.0.0.1:{self.port}/v1/logs"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> HttpReceiver:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (if started) and close the listening socket."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class GrpcReceiver(_ReceiverBase):
    """An OTLP/gRPC receiver; faults map to status codes (``status`` 503 → UNAVAILABLE)."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        from concurrent import futures  # noqa: PLC0415

        import grpc  # noqa: PLC0415
        from google.rpc import code_pb2, error_details_pb2, status_pb2  # noqa: PLC0415

        store = self._store

        def export(request: ExportLogsServiceRequest, context: Any) -> ExportLogsServiceResponse:
            fault = store.next_fault()
            if fault is not None and fault.kind in {"status", "slow"}:
                if fault.kind == "slow":
                    time.sleep(fault.delay_s)
                code = (
                    grpc.StatusCode.RESOURCE_EXHAUSTED
                    if fault.status == 429
                    else grpc.StatusCode.UNAVAILABLE
                )
                if fault.status == 400:
                    code = grpc.StatusCode.INVALID_ARGUMENT
                if fault.retry_after:
                    info = error_details_pb2.RetryInfo()
                    info.retry_delay.seconds = int(float(fault.retry_after))
                    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="busy")
                    status.details.add().Pack(info)
                    context.set_trailing_metadata(
                        (("grpc-status-details-bin", status.SerializeToString()),)
                    )
                context.abort(code, "fault injected")
            store.add(request)
            response = ExportLogsServiceResponse()
            if fault is not None and fault.kind == "partial":
                response.partial_success.rejected_log_records = fault.rejected
            return response

        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.logs.v1.LogsService",
            {
                "Export": grpc.unary_unary_rpc_method_handler(
                    export,
                    request_deserializer=ExportLogsServiceRequest.FromString,
                    response_serializer=ExportLogsServiceResponse.SerializeToString,
                )
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((handler,))
        self.port = int(self._server.add_insecure_port(f"127.0.0.1:{port}"))
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> GrpcReceiver:
        """Start serving."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop at once."""
        self._server.stop(grace=None).wait()

    def __enter__(self) -> GrpcReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(receiver: HttpReceiver | GrpcReceiver) -> Iterator[HttpReceiver | GrpcReceiver]:
    """Start, yield, always stop."""
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
