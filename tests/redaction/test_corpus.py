"""The labelled corpus: tier 1 removes every planted secret and keeps the kept strings."""

from __future__ import annotations

import json

import pytest
from corpus import generate, score

from otel_audit.redaction import RedactionEngine


def test_corpus_recall_and_precision():
    """On 600 seeded records, recall and kept-string precision are at least 0.99."""
    engine = RedactionEngine()
    samples = list(generate(600, seed=7))
    outputs = []
    for sample in samples:
        body, attrs, _ = engine.redact_parts(sample.body, sample.attributes)
        outputs.append(json.dumps([body, attrs]))
    result = score(samples, outputs)
    missed = [
        s.secrets for s, o in zip(samples, outputs, strict=True) if any(x in o for x in s.secrets)
    ]
    assert result["recall"] == 1.0, missed[:5]
    assert result["precision"] >= 0.99, result


def test_backends_agree_on_the_corpus():
    """The re2 prefilter and the pure-re fallback redact the corpus identically."""
    re2_engine, re_engine = RedactionEngine(), RedactionEngine(prefer_re2=False)
    if re2_engine.backend != "re2":
        pytest.skip("google-re2 not installed")
    for sample in generate(600, seed=11):
        expected = re_engine.redact_parts(sample.body, sample.attributes)[:2]
        assert re2_engine.redact_parts(sample.body, sample.attributes)[:2] == expected
