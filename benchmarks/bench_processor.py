"""
App-thread cost of otel-audit per logging call, against the plain SDK path.

(a) stdlib logger -> OTel logging handler -> BatchLogRecordProcessor -> discarding exporter
(b) the same with the AuditProcessor first (classification, tagging, enrichment)
(c) (b) plus tier-1 redaction, when the redaction engine is installed

Run: .venv/bin/python benchmarks/bench_processor.py [--calls N] [--rounds N]
Budget (issue 2): (b)/(a) <= 1.3 for security events.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
)
from opentelemetry.sdk.trace import TracerProvider

sys.path.insert(0, str(Path(__file__).parent))

from _harness import Discard, compare, report

from otel_audit import AuditProcessor, AuditSettings, request_context
from otel_audit._handler import AuditLoggingHandler


def pipeline(
    name: str, first: LogRecordProcessor | None, *, ours: bool = True
) -> tuple[logging.Logger, LoggerProvider]:
    provider = LoggerProvider(shutdown_on_exit=False)
    if first is not None:
        provider.add_log_record_processor(first)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(Discard(), max_queue_size=1 << 20, max_export_batch_size=512)
    )
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    # A second pipeline under the same name replaces the first: a handler left from an
    # earlier run would still redact (or translate) every record and skew the timing.
    for stale in list(logger.handlers):
        logger.removeHandler(stale)
        stale.close()
    handler_class = AuditLoggingHandler if ours else LoggingHandler
    logger.addHandler(handler_class(logger_provider=provider))
    return logger, provider


KINDS = ("security events", "security events with a request body", "ordinary records")


def caller(logger: logging.Logger, kind: str) -> Callable[[int], None]:
    extra_sec = {
        "otel.event.name": "authentication.failure",
        "user.name": "alice",
        "audit.reason": "bad_password",
    }
    extra_plain = {"user.name": "alice", "cache": "miss"}
    body = {"username": "alice", "password": "guess-Hunter2-bench"}

    def run(n: int) -> None:
        if kind == KINDS[0]:
            for _ in range(n):
                logger.warning("login failed for user alice", extra=extra_sec)
        elif kind == KINDS[1]:
            # The example app's careless line: a nested value (the SDK's cleaner and the
            # full redaction walk run) holding a password.
            for _ in range(n):
                logger.warning("login failed", extra={**extra_sec, "request.body": dict(body)})
        else:
            for _ in range(n):
                logger.warning("cache miss for key user:42", extra=extra_plain)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    tracer = TracerProvider().get_tracer("bench")
    settings = AuditSettings()
    redactor = None
    try:
        from otel_audit.redaction import RedactionEngine

        redactor = RedactionEngine.from_settings(settings)
    except ImportError:
        print("(tier-1 redaction engine not installed; skipping variant c)")

    for kind in KINDS:
        security = kind != "ordinary records"
        variants: dict[str, Callable[[int], None]] = {}
        providers = []
        base_logger, p = pipeline(f"bench.sdk.{kind}", None, ours=False)
        providers.append(p)
        variants["(a) OTel logging handler + batch"] = caller(base_logger, kind)
        audit_logger, p = pipeline(
            f"security.bench.{kind}" if security else f"bench.audit.{kind}",
            AuditProcessor(settings),
        )
        providers.append(p)
        variants["(b) + AuditProcessor"] = caller(audit_logger, kind)
        if redactor is not None:
            red_logger, p = pipeline(
                f"security.bench.red.{kind}" if security else f"bench.red.{kind}",
                AuditProcessor(settings, redactor=redactor),
            )
            providers.append(p)
            variants["(c) + AuditProcessor + tier-1 redaction"] = caller(red_logger, kind)
        with (
            tracer.start_as_current_span("request"),
            request_context(client_address="203.0.113.9", request_id="r-1", route="/login"),
        ):
            results = compare(variants, calls=args.calls, rounds=args.rounds)
        report(f"Per-call cost, {kind} (inside a span and a request context)", results,
               "(a) OTel logging handler + batch")  # fmt: skip
        for provider in providers:
            provider.shutdown()


if __name__ == "__main__":
    main()
