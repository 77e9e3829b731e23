"""Build log exporters from the standard ``OTEL_*`` variables, and check those variables.

The OTLP exporters read ``OTEL_EXPORTER_OTLP_[LOGS_]*`` (endpoint, headers, certificate,
client key/cert, compression, timeout) themselves; we choose the exporter class from
``OTEL_LOGS_EXPORTER`` and the protocol, and reject values the SDK would silently
replace by a default, because a mistyped exporter setting is a silent audit-log loss.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter

from otel_audit.exceptions import ConfigurationError

ExporterFactory = Callable[[], LogRecordExporter]

_OTEL_LOGS_EXPORTER = "OTEL_LOGS_EXPORTER"
_LOGS_EXPORTERS = ("otlp", "console", "none")
_PROTOCOLS = ("grpc", "http/protobuf")
_COMPRESSION = ("gzip", "deflate", "none")


def _get(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        value = env.get(name)
        if value is not None and value.strip():
            return name, value.strip()
    return None


def otlp_protocol(env: Mapping[str, str]) -> str:
    """The OTLP protocol for logs; the Python SDK's default is ``grpc``."""
    found = _get(env, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    if found is None:
        return "grpc"
    name, value = found
    if value not in _PROTOCOLS:
        raise ConfigurationError(name, value, _PROTOCOLS)
    return value


def validate_otel_environment(env: Mapping[str, str]) -> None:
    """Check the standard variables that decide whether audit logs leave the process.

    Raises:
        ConfigurationError: naming the first bad variable.
    """
    exporter_names(env)
    otlp_protocol(env)
    for name in ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"):
        value = env.get(name)
        if value and value.strip().lower() not in _COMPRESSION:
            raise ConfigurationError(name, value, _COMPRESSION)
    for name in ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        value = env.get(name)
        if value and not _is_positive_number(value):
            raise ConfigurationError(name, value, "a positive number of milliseconds")
    for name in (
        "OTEL_BLRP_SCHEDULE_DELAY",
        "OTEL_BLRP_EXPORT_TIMEOUT",
        "OTEL_BLRP_MAX_QUEUE_SIZE",
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
    ):
        value = env.get(name)
        if value and not (value.strip().isdigit() and int(value) > 0):
            raise ConfigurationError(name, value, "a positive integer")
    queue, batch = env.get("OTEL_BLRP_MAX_QUEUE_SIZE"), env.get("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE")
    if queue and batch and int(batch) > int(queue):
        variable = "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"
        raise ConfigurationError(variable, batch, f"at most OTEL_BLRP_MAX_QUEUE_SIZE ({queue})")
    for name in (
        "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    ):
        value = env.get(name)
        if value and not Path(value).is_file():
            raise ConfigurationError(name, value, "the path of a readable PEM file")


def _is_positive_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def exporter_names(env: Mapping[str, str]) -> tuple[str, ...]:
    """``OTEL_LOGS_EXPORTER`` as a tuple; default ``otlp``; ``none`` means no export."""
    raw = env.get("OTEL_LOGS_EXPORTER", "").strip() or "otlp"
    names = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    for name in names:
        if name not in _LOGS_EXPORTERS:
            raise ConfigurationError(_OTEL_LOGS_EXPORTER, raw, _LOGS_EXPORTERS)
    if "none" in names:
        if len(names) > 1:
            accepted = "none alone, or a list of otlp, console"
            raise ConfigurationError(_OTEL_LOGS_EXPORTER, raw, accepted)
        return ()
    return tuple(dict.fromkeys(names))


def exporter_factories(env: Mapping[str, str] | None = None) -> dict[str, ExporterFactory]:
    """One factory per configured exporter, so each delivery path gets its own instance.

    Raises:
        ConfigurationError: an ``OTEL_*`` variable has a value that is not accepted.
    """
    env = os.environ if env is None else env
    validate_otel_environment(env)
    factories: dict[str, ExporterFactory] = {}
    for name in exporter_names(env):
        if name == "console":
            factories[name] = ConsoleLogRecordExporter
        elif otlp_protocol(env) == "grpc":
            factories[name] = _grpc_exporter
        else:
            factories[name] = _http_exporter
    return factories


def _grpc_exporter() -> LogRecordExporter:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (  # noqa: PLC0415
        OTLPLogExporter,  # imported lazily: grpc is slow to import
    )

    return OTLPLogExporter()


def _http_exporter() -> LogRecordExporter:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
        OTLPLogExporter,  # imported lazily like the gRPC one
    )

    return OTLPLogExporter()
