"""
Send pre-encoded OTLP log requests and report *why* a send failed.

Why not just wrap the SDK's ``OTLPLogExporter``: its ``export()`` returns only
``SUCCESS``/``FAILURE``. It retries internally (blocking the caller for up to its whole
timeout), then throws the batch away; the ``Retry-After`` it honoured, the difference
between "collector down" (retry later) and "400 bad request" (retrying is pointless) and
the OTLP ``partial_success`` count never reach the caller. The HTTP exporter treats any
2xx as success without reading the body at all. A durable path needs all three to decide
between *retry later from the spool*, *dead-letter* and *done*, and it needs to send the
exact bytes it spooled, so that replay after a restart does not depend on decoding.

So these exporters do one attempt per call and return an :class:`ExportOutcome`; the
durable processor owns retries, backoff and the spool. They still implement
``LogRecordExporter.export()`` (encode, then one attempt) so that they can be handed to
the SDK's own processors, and so that a benchmark can compare both processors with the
*same* exporter.

Configuration follows the standard variables, signal-specific first:
``OTEL_EXPORTER_OTLP_[LOGS_]{ENDPOINT,PROTOCOL,HEADERS,CERTIFICATE,CLIENT_KEY,
CLIENT_CERTIFICATE,COMPRESSION,TIMEOUT,INSECURE}``. ``TIMEOUT`` is read in seconds, as
the Python SDK does (the specification says milliseconds; matching the SDK keeps one
value meaning one thing within a Python deployment). HTTP uses ``httpx`` (typed, keeps
connections alive, no retries of its own); gRPC uses ``grpcio`` with an identity
serializer so the spooled bytes go on the wire unchanged.
"""

from __future__ import annotations

import enum
import gzip
import math
import os
import ssl
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final, Protocol, runtime_checkable

import httpx
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.util.re import parse_env_headers

from otel_audit.exceptions import ConfigurationError

_DEFAULT_HTTP_ENDPOINT: Final = "http://localhost:4318"
_DEFAULT_GRPC_ENDPOINT: Final = "http://localhost:4317"
_DEFAULT_TIMEOUT_S: Final = 10.0
_RETRYABLE_HTTP: Final = frozenset({429, 502, 503, 504})
_MAX_RETRY_AFTER_S: Final = 600.0
_USER_AGENT: Final = "otel-audit"
_TIMEOUT_VAR: Final = "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"
_COMPRESSION_VAR: Final = "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION"
_PROTOCOL_VAR: Final = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"
_GRPC_METHOD: Final = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


class Disposition(enum.Enum):
    """What the caller should do with a batch after one attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    """
    The result of one send attempt, as data.

    ``rejected`` is the receiver's ``partial_success.rejected_log_records``: the batch was
    accepted but that many records were refused for good (OTLP forbids retrying them).
    """

    disposition: Disposition
    retry_after_s: float | None = None
    rejected: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the receiver took the batch (possibly with rejected records)."""
        return self.disposition is Disposition.DELIVERED


DELIVERED: Final = ExportOutcome(Disposition.DELIVERED)


@runtime_checkable
class EncodedLogExporter(Protocol):
    """An exporter that can send an already-encoded ``ExportLogsServiceRequest``."""

    def export_encoded(self, payload: bytes, timeout_s: float | None = None) -> ExportOutcome:
        """Send ``payload`` once and classify the result; never raises."""

    def shutdown(self) -> None:
        """Release connections."""


def _env(environ: Mapping[str, str], suffix: str) -> str | None:
    value = environ.get(f"OTEL_EXPORTER_OTLP_LOGS_{suffix}") or environ.get(
        f"OTEL_EXPORTER_OTLP_{suffix}"
    )
    return value.strip() if value and value.strip() else None


def _timeout(environ: Mapping[str, str]) -> float:
    raw = _env(environ, "TIMEOUT")
    if raw is None:
        return _DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(_TIMEOUT_VAR, raw, "seconds > 0") from None
    if not value > 0 or not math.isfinite(value):
        raise ConfigurationError(_TIMEOUT_VAR, raw, "seconds > 0")
    return value


def _compression(environ: Mapping[str, str]) -> str:
    raw = (_env(environ, "COMPRESSION") or "none").lower()
    if raw not in {"none", "gzip", "deflate"}:
        raise ConfigurationError(_COMPRESSION_VAR, raw, "none, gzip, deflate")
    return raw


def _headers(environ: Mapping[str, str], extra: Mapping[str, str] | None) -> dict[str, str]:
    """The environment's headers, then ``extra`` over them; names lower-cased."""
    raw = _env(environ, "HEADERS") or ""
    merged = {k.lower(): v for k, v in parse_env_headers(raw, liberal=True).items()}
    merged.update((k.lower(), v) for k, v in (extra or {}).items())
    return merged


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date)."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


def _partial(body: bytes) -> tuple[int, str]:
    if not body:
        return 0, ""
    try:
        response = ExportLogsServiceResponse.FromString(body)
    except Exception:
        return 0, ""
    partial = response.partial_success
    return int(partial.rejected_log_records), partial.error_message


class _ExportViaEncoded:
    """``LogRecordExporter.export`` on top of ``export_encoded``."""

    def export_encoded(self, payload: bytes, timeout_s: float | None = None) -> ExportOutcome:
        raise NotImplementedError

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """One attempt, no retries: for use under the SDK's processors (and benchmarks)."""
        try:
            payload = encode_logs(batch).SerializeToString()
        except Exception:
            return LogRecordExportResult.FAILURE
        outcome = self.export_encoded(payload)
        return LogRecordExportResult.SUCCESS if outcome.ok else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:  # noqa: ARG002  # nothing buffered
        """Nothing is buffered here."""
        return True


def _ssl_context(
    certificate: str | None, client_cert: str | None, client_key: str | None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certificate)
    if client_cert:
        context.load_cert_chain(client_cert, client_key)
    return context


class OTLPHttpLogExporter(_ExportViaEncoded, LogRecordExporter):
    """
    OTLP/HTTP (protobuf) sender: one attempt per call, every outcome classified.

    Args:
        endpoint: full URL including ``/v1/logs``; default from the environment.
        headers: extra request headers (override the environment's).
        timeout_s: per-request timeout.
        compression: ``none``, ``gzip`` or ``deflate``.
        environ: the environment to read (tests pass a dict).
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        compression: str | None = None,
        certificate_file: str | None = None,
        client_certificate_file: str | None = None,
        client_key_file: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        if endpoint is None:
            endpoint = env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "").strip() or None
        if endpoint is None:
            base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or _DEFAULT_HTTP_ENDPOINT
            endpoint = base.removesuffix("/") + "/v1/logs"
        self.endpoint = endpoint
        self._timeout = timeout_s if timeout_s is not None else _timeout(env)
        self._compression = (compression or _compression(env)).lower()
        self._headers = {
            "content-type": "application/x-protobuf",
            "user-agent": _USER_AGENT,
            **_headers(env, headers),
        }
        if self._compression != "none":
            self._headers["content-encoding"] = self._compression
        verify: ssl.SSLContext | bool = True
        if endpoint.startswith("https"):
            verify = _ssl_context(
                certificate_file or _env(env, "CERTIFICATE"),
                client_certificate_file or _env(env, "CLIENT_CERTIFICATE"),
                client_key_file or _env(env, "CLIENT_KEY"),
            )
        self._client = httpx.Client(verify=verify, timeout=self._timeout, trust_env=False)
        self._closed = False

    def _body(self, payload: bytes) -> bytes:
        if self._compression == "gzip":
            return gzip.compress(payload, compresslevel=6)
        if self._compression == "deflate":
            return zlib.compress(payload)
        return payload

    def export_encoded(  # noqa: PLR0911  # one return per outcome class reads best
        self, payload: bytes, timeout_s: float | None = None
    ) -> ExportOutcome:
        """POST ``payload`` once and classify the answer."""
        if self._closed:
            return ExportOutcome(Disposition.RETRY, detail="exporter shut down")
        try:
            response = self._client.post(
                self.endpoint,
                content=self._body(payload),
                headers=self._headers,
                timeout=timeout_s if timeout_s is not None else self._timeout,
            )
        except httpx.TimeoutException as exc:
            return ExportOutcome(Disposition.RETRY, detail=f"timeout: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return ExportOutcome(Disposition.RETRY, detail=f"transport: {type(exc).__name__}")
        except Exception as exc:
            return ExportOutcome(Disposition.RETRY, detail=f"error: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:  # noqa: PLR2004  # the 2xx range
            rejected, message = _partial(response.content)
            if rejected:
                return ExportOutcome(Disposition.DELIVERED, rejected=rejected, detail=message)
            return DELIVERED
        detail = f"HTTP {status}"
        if status in _RETRYABLE_HTTP:
            return ExportOutcome(
                Disposition.RETRY,
                retry_after_s=parse_retry_after(response.headers.get("retry-after")),
                detail=detail,
            )
        return ExportOutcome(Disposition.PERMANENT, detail=detail)

    def shutdown(self) -> None:
        """Close the connection pool."""
        self._closed = True
        self._client.close()


class OTLPGrpcLogExporter(_ExportViaEncoded, LogRecordExporter):
    """
    OTLP/gRPC sender of pre-encoded bytes: one attempt per call, every status classified.

    ``UNAVAILABLE``, ``RESOURCE_EXHAUSTED``, ``DEADLINE_EXCEEDED``, ``ABORTED``,
    ``CANCELLED``, ``OUT_OF_RANGE`` and ``DATA_LOSS`` are retryable (the OTLP list);
    a ``google.rpc.RetryInfo`` in the status details sets the delay.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        compression: str | None = None,
        insecure: bool | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        import grpc  # noqa: PLC0415  # only gRPC users pay for the import

        env = os.environ if environ is None else environ
        target = endpoint or _env(env, "ENDPOINT") or _DEFAULT_GRPC_ENDPOINT
        if insecure is None:
            raw = (_env(env, "INSECURE") or "").lower()
            insecure = target.startswith("http://") or ("://" not in target and raw == "true")
        host = target.split("://", 1)[-1].rstrip("/")
        self.endpoint = host
        self._timeout = timeout_s if timeout_s is not None else _timeout(env)
        self._metadata = tuple(_headers(env, headers).items())
        grpc_compression = {
            "gzip": grpc.Compression.Gzip,
            "deflate": grpc.Compression.Deflate,
        }.get((compression or _compression(env)).lower(), grpc.Compression.NoCompression)
        if insecure:
            self._channel = grpc.insecure_channel(host, compression=grpc_compression)
        else:

            def _read(path: str | None) -> bytes | None:
                if not path:
                    return None
                with open(path, "rb") as fh:  # noqa: PTH123  # plain bytes of a PEM file
                    return fh.read()

            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(_env(env, "CERTIFICATE")),
                private_key=_read(_env(env, "CLIENT_KEY")),
                certificate_chain=_read(_env(env, "CLIENT_CERTIFICATE")),
            )
            self._channel = grpc.secure_channel(host, credentials, compression=grpc_compression)
        self._call = self._channel.unary_unary(
            _GRPC_METHOD,
            request_serializer=lambda payload: payload,
            response_deserializer=ExportLogsServiceResponse.FromString,
        )
        self._grpc = grpc
        self._closed = False

    def export_encoded(self, payload: bytes, timeout_s: float | None = None) -> ExportOutcome:
        """Call ``LogsService/Export`` once and classify the status."""
        grpc = self._grpc
        if self._closed:
            return ExportOutcome(Disposition.RETRY, detail="exporter shut down")
        try:
            response = self._call(
                payload,
                timeout=timeout_s if timeout_s is not None else self._timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            return _classify_grpc_error(exc)
        except Exception as exc:
            return ExportOutcome(Disposition.RETRY, detail=f"error: {type(exc).__name__}")
        partial = response.partial_success
        if partial.rejected_log_records:
            return ExportOutcome(
                Disposition.DELIVERED,
                rejected=int(partial.rejected_log_records),
                detail=partial.error_message,
            )
        return DELIVERED

    def shutdown(self) -> None:
        """Close the channel."""
        self._closed = True
        self._channel.close()


_RETRYABLE_GRPC: Final = frozenset(
    {
        "UNAVAILABLE",
        "RESOURCE_EXHAUSTED",
        "DEADLINE_EXCEEDED",
        "ABORTED",
        "CANCELLED",
        "OUT_OF_RANGE",
        "DATA_LOSS",
    }
)


def _classify_grpc_error(exc: Any) -> ExportOutcome:
    try:
        code = exc.code()
        name = code.name if code is not None else "UNKNOWN"
    except Exception:
        name = "UNKNOWN"
    detail = f"gRPC {name}"
    if name not in _RETRYABLE_GRPC:
        return ExportOutcome(Disposition.PERMANENT, detail=detail)
    return ExportOutcome(Disposition.RETRY, retry_after_s=_grpc_retry_after(exc), detail=detail)


def _grpc_retry_after(exc: Any) -> float | None:
    try:
        from google.rpc import (  # type: ignore[import-untyped]  # noqa: PLC0415  # rare path
            error_details_pb2,
            status_pb2,
        )

        for key, value in exc.trailing_metadata() or ():
            if key != "grpc-status-details-bin":
                continue
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    delay = float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
                    return min(max(delay, 0.0), _MAX_RETRY_AFTER_S)
    except Exception:
        return None
    return None


def exporter_from_env(
    environ: Mapping[str, str] | None = None,
) -> OTLPHttpLogExporter | OTLPGrpcLogExporter:
    """
    The OTLP exporter the standard variables ask for (``http/protobuf`` by default).

    Raises:
        ConfigurationError: an unsupported protocol (``http/json`` is not supported: the
            spool stores protobuf bytes).
    """
    env = os.environ if environ is None else environ
    protocol = (_env(env, "PROTOCOL") or "http/protobuf").lower()
    if protocol == "http/protobuf":
        return OTLPHttpLogExporter(environ=env)
    if protocol == "grpc":
        return OTLPGrpcLogExporter(environ=env)
    raise ConfigurationError(_PROTOCOL_VAR, protocol, "http/protobuf, grpc")
