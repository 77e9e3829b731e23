"""
An OTLP/HTTP receiver for logs *and* traces on 127.0.0.1.

``helpers.otlp_receiver`` decodes logs only; the example tests also need the server spans
to check that events carry their trace ids, so this one accepts ``/v1/traces`` too and
keeps every raw body to prove that no secret crossed the wire.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from helpers.otlp_receiver import ReceivedLog, any_value


@dataclass(frozen=True)
class ReceivedSpan:
    """One decoded span."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]


class OTLPLogsAndTracesReceiver:
    """``POST /v1/logs`` and ``POST /v1/traces`` (protobuf) on an ephemeral loopback port."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._raw: list[bytes] = []
        self.logs: list[ReceivedLog] = []
        self.spans: list[ReceivedSpan] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path == "/v1/logs":
                    reply = receiver._add_logs(body)
                elif self.path == "/v1/traces":
                    reply = receiver._add_spans(body)
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

    def _add_logs(self, raw: bytes) -> bytes:
        request = logs_service_pb2.ExportLogsServiceRequest()
        request.ParseFromString(raw)
        decoded = [
            ReceivedLog(
                body=any_value(lr.body),
                attributes={kv.key: any_value(kv.value) for kv in lr.attributes},
                resource={kv.key: any_value(kv.value) for kv in rl.resource.attributes},
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
        with self._cond:
            self._raw.append(raw)
            self.logs.extend(decoded)
            self._cond.notify_all()
        return logs_service_pb2.ExportLogsServiceResponse().SerializeToString()

    def _add_spans(self, raw: bytes) -> bytes:
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(raw)
        decoded = [
            ReceivedSpan(
                name=span.name,
                trace_id=span.trace_id.hex(),
                span_id=span.span_id.hex(),
                parent_span_id=span.parent_span_id.hex(),
                kind=span.kind,
                attributes={kv.key: any_value(kv.value) for kv in span.attributes},
            )
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]
        with self._cond:
            self._raw.append(raw)
            self.spans.extend(decoded)
            self._cond.notify_all()
        return trace_service_pb2.ExportTraceServiceResponse().SerializeToString()

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def raw(self) -> bytes:
        """Every request body received so far, decompressed, concatenated."""
        with self._cond:
            return b"".join(self._raw)

    def wait_until(
        self, predicate: Callable[[OTLPLogsAndTracesReceiver], bool], timeout: float
    ) -> bool:
        """Block until ``predicate(self)`` holds or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def __enter__(self) -> OTLPLogsAndTracesReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
