"""
Real OTLP receivers for tests: HTTP/protobuf (logs and traces) and gRPC (logs), on 127.0.0.1.

They decode ``ExportLogsServiceRequest`` / ``ExportTraceServiceRequest`` exactly as a
collector would and keep both the raw request bytes (to prove that no secret crossed the
wire) and the decoded records and spans.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def any_value(value: AnyValue) -> Any:
    """Convert an OTLP AnyValue to Python."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in pairs}


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


@dataclass(frozen=True)
class ReceivedSpan:
    """One decoded span."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]


def _decode_logs(request: logs_service_pb2.ExportLogsServiceRequest) -> list[ReceivedLog]:
    return [
        ReceivedLog(
            body=any_value(lr.body),
            attributes=_attributes(lr.attributes),
            resource=_attributes(rl.resource.attributes),
            scope=sl.scope.name,
            event_name=lr.event_name,
            severity_number=lr.severity_number,
            severity_text=lr.severity_text,
            trace_id=lr.trace_id.hex(),
            span_id=lr.span_id.hex(),
            time_unix_nano=lr.time_unix_nano,
        )
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for lr in sl.log_records
    ]


def _decode_spans(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    return [
        ReceivedSpan(
            name=span.name,
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_span_id=span.parent_span_id.hex(),
            kind=span.kind,
            attributes=_attributes(span.attributes),
        )
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


class _Receiver:
    """What every receiver keeps: raw bodies, decoded logs and spans, and a way to wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()  # re-entrant: predicates may read the properties
        self._raw: list[bytes] = []
        self._logs: list[ReceivedLog] = []
        self._spans: list[ReceivedSpan] = []

    def _add(
        self, raw: bytes, logs: Sequence[ReceivedLog] = (), spans: Sequence[ReceivedSpan] = ()
    ) -> None:
        with self._cond:
            self._raw.append(raw)
            self._logs.extend(logs)
            self._spans.extend(spans)
            self._cond.notify_all()

    @property
    def raw(self) -> bytes:
        """Every request body received so far (decompressed), concatenated."""
        with self._cond:
            return b"".join(self._raw)

    @property
    def logs(self) -> list[ReceivedLog]:
        """Records decoded so far."""
        with self._cond:
            return list(self._logs)

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Spans decoded so far (OTLP/HTTP only)."""
        with self._cond:
            return list(self._spans)

    def wait_until(self, predicate: Callable[[Self], bool], timeout: float = 20.0) -> bool:
        """Block until ``predicate(self)`` holds or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wait_for(self, count: int, timeout: float = 20.0) -> list[ReceivedLog]:
        """Block until ``count`` records arrived or ``timeout`` passed; return them."""
        self.wait_until(lambda r: len(r._logs) >= count, timeout)
        return self.logs


class OTLPHttpReceiver(_Receiver):
    """OTLP/HTTP protobuf on 127.0.0.1: ``POST /v1/logs`` and ``POST /v1/traces``."""

    def __init__(self) -> None:
        super().__init__()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                reply: bytes
                if self.path == "/v1/logs":
                    logs = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
                    receiver._add(body, logs=_decode_logs(logs))
                    reply = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
                elif self.path == "/v1/traces":
                    traces = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                    receiver._add(body, spans=_decode_spans(traces))
                    reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
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
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT``, e.g. ``http://127.0.0.1:4318``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def logs_url(self) -> str:
        """The full logs URL."""
        return f"{self.endpoint}/v1/logs"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class OTLPGrpcReceiver(_Receiver):
    """An OTLP/gRPC logs endpoint on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__()
        receiver = self

        class Servicer(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(  # gRPC method name
                self, request: logs_service_pb2.ExportLogsServiceRequest, context: Any
            ) -> logs_service_pb2.ExportLogsServiceResponse:
                receiver._add(request.SerializeToString(), logs=_decode_logs(request))
                return logs_service_pb2.ExportLogsServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Servicer(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>`` as OTEL_EXPORTER_OTLP_ENDPOINT expects."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=1).wait(5)
