"""``configure()``: one call that wires the whole pipeline in the only safe order.

The AuditProcessor must run before any exporting processor, security events must take
the durable path and ordinary logs the SDK batch path, and stdlib logging must be bridged
once. Getting any of that wrong by hand leaks secrets or loses events, so users call this
(or rely on the zero-code hook, which calls it too).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import (
    LoggerProvider,
    LogRecordProcessor,
    ReadableLogRecord,
)
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource

from otel_audit import _api
from otel_audit._deferred import DeferredEmitter
from otel_audit._exporters import exporter_factories
from otel_audit._handler import AuditLoggingHandler
from otel_audit._processor import AuditProcessor, EventObserver, Redactor
from otel_audit._settings import AuditSettings, load_settings

_lock = threading.RLock()


@dataclass
class _State:
    provider: LoggerProvider
    processor: AuditProcessor
    handler: AuditLoggingHandler | None
    owns_provider: bool
    tuned_loggers: tuple[logging.Logger, ...]


_state: _State | None = None


def build_redactor(settings: AuditSettings) -> Redactor | None:
    """The tier-1 engine for these settings (``None`` only when redaction is off)."""
    if settings.redaction == "off":
        return None
    from otel_audit.redaction import RedactionEngine  # noqa: PLC0415  # avoid import cycle

    engine: Redactor = RedactionEngine.from_settings(settings)
    return engine


def build_observers(settings: AuditSettings) -> list[EventObserver]:
    """The in-process detections, when switched on."""
    if not settings.detections:
        return []
    from otel_audit.detect import AnomalyDetector  # noqa: PLC0415  # optional feature

    return [AnomalyDetector.from_settings(settings)]


def _tier2(exporter: LogRecordExporter, settings: AuditSettings) -> LogRecordExporter:
    if settings.redaction_tier2 == "off":
        return exporter
    from otel_audit.redaction import PresidioRedactingExporter  # noqa: PLC0415  # optional

    wrapped: LogRecordExporter = PresidioRedactingExporter(exporter, settings)
    return wrapped


class _Discard(LogRecordExporter):
    """Inner exporter of the tier-2 hook: the durable path sends the records itself."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:  # noqa: ARG002
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:  # noqa: ARG002  # interface
        """Nothing buffered."""
        return True


def _tier2_hook(
    settings: AuditSettings,
) -> Callable[[Sequence[ReadableLogRecord]], None] | None:
    """
    Tier-2 redaction as the durable path's ``pre_export`` step.

    It runs on the export thread before the integrity chain and the spool, so the chain
    covers the fully redacted record and no PII that tier 2 finds is written to disk.
    """
    if settings.redaction_tier2 == "off":
        return None
    redacting = _tier2(_Discard(), settings)

    def hook(batch: Sequence[ReadableLogRecord]) -> None:
        redacting.export(batch)  # redacts in place; _Discard sends nothing

    return hook


def build_export_processors(
    settings: AuditSettings,
    factories: Mapping[str, Callable[[], LogRecordExporter]],
    *,
    from_environment: bool = False,
) -> list[LogRecordProcessor]:
    """
    The exporting processors, in order, for each configured exporter.

    Security events go through the durable processor (or the SDK batch processor when
    ``OTEL_PYTHON_AUDIT_DELIVERY=batch``); ordinary records through the SDK batch
    processor with every drop counted. Each path gets its own exporter instance. For
    ``OTEL_LOGS_EXPORTER=otlp`` the durable path uses its own OTLP sender built from the
    same ``OTEL_EXPORTER_OTLP_*`` variables, because it needs the server's answer
    (Retry-After, partial success) that the SDK exporter does not expose.
    """
    processors: list[LogRecordProcessor] = []
    for name, factory in factories.items():
        if name == "console":
            processors.append(SimpleLogRecordProcessor(factory()))
        elif settings.delivery == "batch":
            processors.append(BatchLogRecordProcessor(_tier2(factory(), settings)))
        else:
            from otel_audit.export import (  # noqa: PLC0415  # avoid import cycle
                CountingBatchLogRecordProcessor,
                DurableLogRecordProcessor,
            )

            # For OTEL_LOGS_EXPORTER=otlp the durable path builds its own sender (None).
            exporter = None if from_environment else factory()
            processors.append(
                DurableLogRecordProcessor.from_settings(
                    exporter, settings, pre_export=_tier2_hook(settings)
                )
            )
            ordinary = factory() if exporter is None else exporter
            # CountingBatchLogRecordProcessor takes only records that are not security events.
            processors.append(CountingBatchLogRecordProcessor(_tier2(ordinary, settings)))
    return processors


def _replace_processors(provider: LoggerProvider, processors: Sequence[LogRecordProcessor]) -> None:
    """Swap a provider's processors for ours (the zero-code path; see _autoinstrument)."""
    multi = provider._multi_log_record_processor  # noqa: SLF001  # no public API to reorder
    with multi._lock:  # noqa: SLF001
        old = multi._log_record_processors  # noqa: SLF001
        multi._log_record_processors = tuple(processors)  # noqa: SLF001
    for processor in old:
        with contextlib.suppress(Exception):  # the old exporters are being discarded
            processor.shutdown()


def configure(
    *,
    environ: Mapping[str, str] | None = None,
    logger_provider: LoggerProvider | None = None,
    exporters: Sequence[LogRecordExporter] | None = None,
    set_global: bool = True,
    bridge_logging: bool = True,
    replace_existing_processors: bool = False,
    **overrides: Any,
) -> LoggerProvider:
    """Set up audit logging on an OpenTelemetry ``LoggerProvider``.

    Reads the resource from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, the
    exporters from ``OTEL_LOGS_EXPORTER`` (``otlp``, ``console``, ``none``) with the
    ``OTEL_EXPORTER_OTLP_[LOGS_]*`` and ``OTEL_BLRP_*`` variables, and otel-audit's own
    ``OTEL_PYTHON_AUDIT_*`` settings; keyword ``overrides`` win over the environment.
    Adds the AuditProcessor first, then the exporting processors, and bridges stdlib
    logging (root logger) once. Calling it again returns the same provider.

    Args:
        environ: Environment to read (default ``os.environ``).
        logger_provider: Use this provider instead of creating one.
        exporters: Use these exporters instead of ``OTEL_LOGS_EXPORTER`` (tests, custom
            backends). Each is used by one delivery path.
        set_global: Make the provider the global OpenTelemetry one.
        bridge_logging: Attach a handler to the root logger.
        replace_existing_processors: Discard processors already on ``logger_provider``
            (the zero-code hook uses this to take over the distro's logs pipeline).
        **overrides: Settings by field name, e.g. ``redaction_scope="security"``.

    Returns:
        The configured provider.

    Raises:
        ConfigurationError: a variable or override has a value that is not accepted.

    .. versionadded:: 0.1.0
    """
    global _state  # noqa: PLW0603  # one pipeline per process, guarded by _lock
    env = os.environ if environ is None else environ
    with _lock:
        if _state is not None:
            return _state.provider
        settings = load_settings(env, **overrides)
        if exporters is not None:
            factories: dict[str, Callable[[], LogRecordExporter]] = {
                f"custom{index}": _single_use(exporter) for index, exporter in enumerate(exporters)
            }
        else:
            factories = exporter_factories(env)
        processors = build_export_processors(
            settings, factories, from_environment=exporters is None
        )
        deferred = DeferredEmitter(settings.queue_size) if settings.defer_events else None
        audit = AuditProcessor(
            settings,
            redactor=build_redactor(settings),
            observers=build_observers(settings),
            deferred=deferred,
        )
        owns = logger_provider is None
        # Resource.create() reads OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES (SDK detectors).
        provider = logger_provider or LoggerProvider(resource=Resource.create())
        if replace_existing_processors:
            _replace_processors(provider, [audit, *processors])
        else:
            provider.add_log_record_processor(audit)
            for processor in processors:
                provider.add_log_record_processor(processor)
        if set_global and owns:
            set_logger_provider(provider)
        _api._set_provider(provider, deferred)  # noqa: SLF001  # package-internal wiring
        handler = _bridge(provider, deferred, audit) if bridge_logging else None
        tuned = _tune_security_loggers(settings) if bridge_logging else ()
        _state = _State(provider, audit, handler, owns, tuned)
        return provider


def _single_use(exporter: LogRecordExporter) -> Callable[[], LogRecordExporter]:
    """A caller's exporter serves both delivery paths (it must be thread-safe)."""
    return lambda: exporter


def _bridge(
    provider: LoggerProvider, emitter: DeferredEmitter | None, audit: AuditProcessor
) -> AuditLoggingHandler:
    """Attach our handler to the root logger, replacing any OTel handler for this provider.

    Under ``opentelemetry-instrument`` the logging instrumentation attaches its own
    handler; ours is a subclass that also never raises and bounds odd ``extra=`` values,
    and two handlers would duplicate every record.
    """
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_logger_provider", None) is provider:
            root.removeHandler(existing)
    handler = AuditLoggingHandler(
        logger_provider=provider,
        emitter=emitter,
        note=audit.note_request_event if emitter is not None else None,
    )
    root.addHandler(handler)
    return handler


def _tune_security_loggers(settings: AuditSettings) -> tuple[logging.Logger, ...]:
    """Let INFO security events through.

    The root logger defaults to WARNING, which would silently drop "login succeeded".
    Only loggers whose level is unset are changed.
    """
    tuned = []
    for name in settings.security_loggers:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
            tuned.append(logger)
    return tuple(tuned)


def get_audit_processor() -> AuditProcessor | None:
    """The AuditProcessor installed by :func:`configure`, if any."""
    return None if _state is None else _state.processor


def shutdown(timeout_millis: int = 30000) -> None:
    """Flush and stop the pipeline set up by :func:`configure` and undo its global changes.

    Safe to call twice. After it, :func:`configure` may be called again (tests do).
    """
    global _state  # see configure()
    with _lock:
        state, _state = _state, None
    if state is None:
        return
    if state.handler is not None:
        logging.getLogger().removeHandler(state.handler)
    for logger in state.tuned_loggers:
        logger.setLevel(logging.NOTSET)
    try:
        # New events go straight to the provider; those already deferred follow them in
        # (also when we do not own the provider), then everything is flushed.
        _api._set_provider(state.provider, None)  # noqa: SLF001
        state.processor.shutdown()
        state.provider.force_flush(timeout_millis)
    finally:
        _api._set_provider(None)  # noqa: SLF001
        if state.owns_provider:
            state.provider.shutdown()


def report_startup_error(exc: BaseException) -> None:
    """Write a start-up failure to stderr (``opentelemetry-instrument`` swallows it)."""
    sys.stderr.write(f"otel-audit: configuration error: {exc}\n")
    sys.stderr.flush()
