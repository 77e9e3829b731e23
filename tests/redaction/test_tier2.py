"""Tier 2: Presidio configured offline, quiet on benign lines, capped, fail closed."""

from __future__ import annotations

import importlib.util

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource

from otel_audit._settings import AuditSettings
from otel_audit.exceptions import ConfigurationError

pytest.importorskip("presidio_analyzer")

from otel_audit.redaction import PresidioRedactingExporter


def _has_spacy_model(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.fixture(name="exporter", scope="module")
def _exporter() -> PresidioRedactingExporter:
    return PresidioRedactingExporter(
        InMemoryLogRecordExporter(), AuditSettings(redaction_tier2="presidio")
    )


BENIGN = [
    "GET /api/v1/orders/42 200 in 35ms on 2024-05-01T12:00:00Z",
    "request 123e4567-e89b-12d3-a456-426614174000 from 10.0.0.7 via https://example.com/a",
    "deploy 9fceb02d0ae598e95dc970b74767f19372d61af8 version 2.31.0 build 20240501",
    "user 42 reset their password; next rotation in 90 days",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 epoch 1715000000123",
]


class TestPresidioTier:
    def test_no_model_needed(self, exporter):
        """Pattern mode builds without any spaCy pipeline and without a download."""
        assert "PERSON" not in exporter.entities
        assert "UK_NHS" in exporter.entities

    @pytest.mark.parametrize("text", BENIGN)
    def test_benign_lines_untouched(self, exporter, text):
        """Dates, URLs, UUIDs, IPs, SHAs and versions are not flagged."""
        assert exporter.redact_text(text) == (text, {})

    @pytest.mark.parametrize(
        ("text", "secret"),
        [("NHS number 943 476 5919 on file", "943 476 5919"), ("NINO AB123456C", "AB123456C")],
    )
    def test_entities_tier1_lacks(self, exporter, text, secret):
        """Presidio adds checksum-backed national identifiers."""
        out, counts = exporter.redact_text(text)
        assert secret not in out
        assert counts

    def test_export_redacts_then_delegates(self):
        """export() rewrites the batch, adds to the summary, then calls the inner exporter."""
        inner = InMemoryLogRecordExporter()
        exporter = PresidioRedactingExporter(inner, AuditSettings(redaction_tier2="presidio"))
        record = LogRecord(
            body="NHS 943 476 5919",
            attributes={"note": "nino AB123456C", "audit.redaction": ["email:1"]},
        )
        exporter.export([ReadableLogRecord(log_record=record, resource=Resource.create({}))])
        (out,) = inner.get_finished_logs()
        assert "943 476 5919" not in str(out.log_record.body)
        assert "AB123456C" not in str(out.log_record.attributes["note"])
        summary = list(out.log_record.attributes["audit.redaction"])
        assert "email:1" in summary
        assert any(s.startswith("presidio.") for s in summary)

    def test_oversized_value_fails_closed(self, exporter):
        """A value over the size cap is replaced, not exported unanalysed."""
        out, counts = exporter.redact_text("9" * 20_000)
        assert out == "[REDACTED:tier2.limit.size]"
        assert counts == {"tier2.limit.size": 1}

    def test_missing_ner_model_fails_at_start(self):
        """presidio-ner with a pipeline that is not installed refuses instead of downloading."""
        with pytest.raises(ConfigurationError, match="OTEL_PYTHON_AUDIT_SPACY_MODEL"):
            PresidioRedactingExporter(
                InMemoryLogRecordExporter(),
                AuditSettings(redaction_tier2="presidio-ner", spacy_model="no_such_pipeline_xx"),
            )

    @pytest.mark.skipif(not _has_spacy_model("en_core_web_sm"), reason="no spaCy pipeline")
    def test_ner_finds_names(self):
        """With an installed English pipeline, person names are removed."""
        exporter = PresidioRedactingExporter(
            InMemoryLogRecordExporter(), AuditSettings(redaction_tier2="presidio-ner")
        )
        out, _ = exporter.redact_text("Support call with John Smith about the invoice")
        assert "John Smith" not in out
