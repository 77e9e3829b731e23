"""
Real OTLP log receivers for tests: HTTP/protobuf and gRPC, bound to 127.0.0.1.

They decode ``ExportLogsServiceRequest`` exactly as a collector would and keep both the
raw request bytes (to prove that no secret crossed the wire) and the decoded records.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def any_value(value: AnyValue) -> Any:
    """Convert an OTLP AnyValue to Python."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


@dataclass(frozen=True)
class ReceivedLog:
    """One decoded log record with its resource and scope."""

    body: Any
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    event_name: str
    severity_number: int
    severity_text: str
    trace_id: str
    span_id: str
    time_unix_nano: int


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.raw: list[bytes] = []
        self.logs: list[ReceivedLog] = []

    def add(self, raw: bytes, request: logs_service_pb2.ExportLogsServiceRequest) -> None:
        decoded = []
        for rl in request.resource_logs:
            resource = {kv.key: any_value(kv.value) for kv in rl.resource.attributes}
            for sl in rl.scope_logs:
                decoded.extend(
                    ReceivedLog(
                        body=any_value(lr.body),
                        attributes={kv.key: any_value(kv.value) for kv in lr.attributes},
                        resource=resource,
                        scope=sl.scope.name,
                        event_name=lr.event_name,
                        severity_number=lr.severity_number,
                        severity_text=lr.severity_text,
                        trace_id=lr.trace_id.hex(),
                        span_id=lr.span_id.hex(),
                        time_unix_nano=lr.time_unix_nano,
                    )
                    for lr in sl.log_records
                )
        with self.lock:
            self.raw.append(raw)
            self.logs.extend(decoded)
            self.lock.notify_all()

    def wait_for(self, count: int, timeout: float) -> list[ReceivedLog]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.logs) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.lock.wait(remaining)
            return list(self.logs)


class OTLPHttpReceiver:
    """An OTLP/HTTP protobuf logs endpoint on 127.0.0.1 (``POST /v1/logs``)."""

    def __init__(self) -> None:
        self._store = _Store()
        store = self._store

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path != "/v1/logs":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = logs_service_pb2.ExportLogsServiceRequest()
                request.ParseFromString(body)
                store.add(body, request)
                reply = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:4318``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def logs_url(self) -> str:
        """The full logs URL."""
        return f"{self.endpoint}/v1/logs"

    @property
    def raw(self) -> bytes:
        """Every request body received so far, concatenated."""
        with self._store.lock:
            return b"".join(self._store.raw)

    @property
    def logs(self) -> list[ReceivedLog]:
        """Records decoded so far."""
        with self._store.lock:
            return list(self._store.logs)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[ReceivedLog]:
        """Block until ``count`` records arrived or ``timeout`` passed; return them."""
        return self._store.wait_for(count, timeout)

    def __enter__(self) -> OTLPHttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class OTLPGrpcReceiver:
    """An OTLP/gRPC logs endpoint on 127.0.0.1."""

    def __init__(self) -> None:
        self._store = _Store()
        store = self._store

        class Servicer(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(  # gRPC method name
                self, request: logs_service_pb2.ExportLogsServiceRequest, context: Any
            ) -> logs_service_pb2.ExportLogsServiceResponse:
                store.add(request.SerializeToString(), request)
                return logs_service_pb2.ExportLogsServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Servicer(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>`` as OTEL_EXPORTER_OTLP_ENDPOINT expects."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def raw(self) -> bytes:
        """Every request received so far, serialized, concatenated."""
        with self._store.lock:
            return b"".join(self._store.raw)

    @property
    def logs(self) -> list[ReceivedLog]:
        """Records decoded so far."""
        with self._store.lock:
            return list(self._store.logs)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[ReceivedLog]:
        """Block until ``count`` records arrived or ``timeout`` passed; return them."""
        return self._store.wait_for(count, timeout)

    def __enter__(self) -> OTLPGrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=1).wait(5)
