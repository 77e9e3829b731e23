"""
The optional accelerator (native/re2hold): same verdicts as google-re2, and the GIL kept.

``make venv`` builds it (scripts/build-re2hold.sh). On a machine where it could not be
built the engine falls back to google-re2 and this module is skipped, except under
``OTEL_AUDIT_REQUIRE_RE2HOLD=1`` (set by .ci/run), where a missing module fails.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from corpus import generate
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_audit.redaction import RedactionEngine
from otel_audit.redaction._catalogue import CATALOGUE
from otel_audit.redaction._detectors import DetectorRegistry

if os.environ.get("OTEL_AUDIT_REQUIRE_RE2HOLD") == "1":
    import otel_audit_re2hold as re2hold
else:
    re2hold = pytest.importorskip("otel_audit_re2hold")
pytest.importorskip("re2")

HOLDING = DetectorRegistry(CATALOGUE, hold_gil=True)
RELEASING = DetectorRegistry(CATALOGUE, hold_gil=False)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)
    elif value is not None:
        yield json.dumps(value, default=str)


def test_the_engine_uses_it():
    assert HOLDING.prefilter_holds_gil
    assert not RELEASING.prefilter_holds_gil
    assert RedactionEngine().prefilter_holds_gil


def test_same_triggers_as_google_re2_on_the_corpus():
    """Every string of the labelled corpus wakes the same detectors on both engines."""
    checked = 0
    for sample in generate(600, seed=7, secret_ratio=0.5):
        for text in (*_texts(sample.body), *_texts(sample.attributes)):
            assert HOLDING.triggered_rules(text) == RELEASING.triggered_rules(text), text
            checked += 1
    assert checked > 2000


_FRAGMENTS = st.sampled_from(
    [
        "password", "passwd=", "token: ", "Bearer ", "Basic ", "ghp_", "AKIA", "sk-", "xoxb-",
        "eyJ", "-----BEGIN", "://user:", "@", ".com", "4111 1111 1111 1111", "123-45-6789",
        "DE89 3704 0044 0532 0130 00", "+1 555 0100", "phone", "key=", "session_id",
        "secret", " ", "\n", "\t", "é", "\u2028", "0", "9", "-", "_", "/", ":", "=", '"',
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=12)), max_size=30))
def test_same_triggers_on_generated_text(parts: list[str]) -> None:
    text = "".join(parts)
    assert HOLDING.triggered_rules(text) == RELEASING.triggered_rules(text)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="pattern 1 is not valid RE2 syntax"):
        re2hold.Set(["ok", "(unclosed"])
    with pytest.raises(TypeError, match="patterns must be str"):
        re2hold.Set(["ok", b"bytes"])
    matcher = re2hold.Set(["ok"])
    with pytest.raises(TypeError, match="takes a str"):
        matcher.match(b"ok")
    with pytest.raises(UnicodeEncodeError):
        matcher.match("ok \udcff")  # a lone surrogate has no UTF-8 form
    assert matcher.pattern_count() == 1
    assert matcher.match("") == []


def test_a_lone_surrogate_fails_closed_in_the_engine():
    """The prefilter cannot read the text, so the value is replaced, never passed on."""
    engine = RedactionEngine()
    assert engine.redact_text("token=\udcffabcdef0123456789abcdef") == "[REDACTED:error.exception]"


def _spinner_runs_during(call: Callable[[str], object], texts: list[str]) -> int:
    """
    How often another thread ran while ``call`` went over ``texts``.

    The switch interval is lifted out of reach, so the only way for the spinner to run is
    for this thread to give up the GIL itself.
    """
    count = 0
    stop = False

    def spin() -> None:
        nonlocal count
        while not stop:
            count += 1
            time.sleep(0)  # gives the GIL back at once

    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        time.sleep(0.05)  # the spinner is running and yielding
        before = count
        for text in texts:
            call(text)
        return count - before
    finally:
        stop = True
        sys.setswitchinterval(old)
        thread.join(5)


def test_short_texts_keep_the_gil_long_ones_release_it():
    """The point of the module; the long-text half shows that the probe can see a release."""
    matcher = re2hold.Set(["password", r"\d{3}-\d\d-\d{4}"])
    short = [f"user alice logged in from 10.0.0.1 request {i}" for i in range(2000)]
    just_under = ["y" * 511] * 200
    long = ["x" * (70 * 1024) + str(i) for i in range(50)]
    assert _spinner_runs_during(matcher.match, short) == 0
    assert _spinner_runs_during(matcher.match, just_under) == 0
    assert _spinner_runs_during(matcher.match, long) > 0


def _dfa_thrashing_text(size: int, seed: int) -> str:
    """Secret keywords between characters in and out of the digit/token classes."""
    rng = random.Random(seed)
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        parts.append(
            "token"
            if rng.random() < 0.15
            else rng.choice("abcdefghijklmnopqrstuvwxyz0123456789+/_.- !,;:")
        )
    return "".join(parts)[:size]


def test_a_text_built_to_be_slow_does_not_hold_the_gil():
    """
    Such a text costs RE2 2-3.5 us a byte (a log line a few ns): from 512 bytes on the GIL
    is released, so another thread waits at most a couple of milliseconds, not 150.
    """
    slow = [_dfa_thrashing_text(8 * 1024, seed) for seed in range(20)]
    assert _spinner_runs_during(HOLDING.prefilter.triggered, slow) > 0
