"""Planted secrets never reach an OTLP receiver's bytes, through the real SDK pipeline."""

from __future__ import annotations

import importlib.util
import json
import logging

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter

from helpers.otlp_receiver import OTLPHttpReceiver
from otel_audit import AuditProcessor
from otel_audit._settings import AuditSettings
from otel_audit.redaction import RedactionEngine

GH = "ghp_" + "Mm1Nn2Bb3Vv4Cc5Xx6Zz7Ll8Kk9Jj0Hh1Gg2Ff3"
AWS = "AKIA" + "ZZ3EGZ5KX7TPLM2W"
PASSWORD = "Corr3ct-H0rse-Battery"
CARD = "4012888888881881"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)
EMAIL = "victim.person@example.org"
SECRETS = [GH, AWS, PASSWORD, CARD, JWT, EMAIL, "s3cr3t-dsn-pw", "hunter2-sql"]
KEPT = ["4bf92f3577b34da6a3ce929d0e0e4736", "/orders/{id}", "198.51.100.23"]

HAS_PRESIDIO = importlib.util.find_spec("presidio_analyzer") is not None


def _emit(provider: LoggerProvider) -> None:
    logger = logging.getLogger("security.e2e")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        logger.warning(
            "login failed for %s with password=%s",
            EMAIL,
            PASSWORD,
            extra={
                "password": PASSWORD,
                "http.request.header.authorization": f"Bearer {JWT}",
                "detail": {"nested": [{"token": GH}, f"card {CARD}"]},
                "payload": json.dumps({"aws_key": AWS, "user": "bob"}),
                "url.full": "https://app:s3cr3t-dsn-pw@db.example.com/x?token=" + GH,
                "db.statement": "INSERT INTO users (name, password) VALUES ('bob', 'hunter2-sql')",
                "bytes_value": f"key {AWS}".encode(),
                "trace_ref": KEPT[0],
                "http.route": KEPT[1],
                "client.address": KEPT[2],
            },
        )
        try:
            raise ValueError(f"cannot connect with token {GH} and card {CARD}")  # noqa: TRY301 - a real traceback is the point
        except ValueError:
            logger.exception("connection error for %s", EMAIL)
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    "tier2",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.skipif(not HAS_PRESIDIO, reason="presidio-analyzer not installed"),
        ),
    ],
)
def test_no_planted_secret_reaches_the_wire(tier2):
    """Body, attributes, nested values, JSON strings, URLs, SQL, bytes, exceptions: all clean."""
    settings = AuditSettings(redaction_tier2="presidio" if tier2 else "off")
    with OTLPHttpReceiver() as receiver:
        exporter: LogRecordExporter = OTLPLogExporter(
            endpoint=receiver.logs_url, compression=Compression.NoCompression
        )
        if tier2:
            from otel_audit.redaction import PresidioRedactingExporter  # noqa: PLC0415

            exporter = PresidioRedactingExporter(exporter, settings)
        provider = LoggerProvider(shutdown_on_exit=False)
        provider.add_log_record_processor(
            AuditProcessor(settings, redactor=RedactionEngine.from_settings(settings))
        )
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        _emit(provider)
        provider.shutdown()
        received = receiver.wait_for(2)
        raw = receiver.raw
    assert len(received) == 2
    for secret in SECRETS:
        assert secret.encode() not in raw, secret
    for kept in KEPT:
        assert kept.encode() in raw, kept
    assert b"audit.redaction" in raw
