"""The stdlib bridge gives what the upstream OpenTelemetry handler gives, only cheaper.

``AuditLoggingHandler`` re-implements the translation of
``opentelemetry-instrumentation-logging``'s ``LoggingHandler`` (for speed on the app
thread); these tests send the same records through both into real SDK providers and
compare the exported records field by field, then check the places where ours takes a
shortcut (cached SDK loggers, attributes written past the SDK's cleaner) still honour the
SDK's limits and switches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from otel_audit._handler import AuditLoggingHandler
from otel_audit._records import attribute_dict, direct_dict


def _capture(
    handler_class: type[logging.Handler],
    name: str,
    emit: Any,
    *,
    limits: LogRecordLimits | None = None,
    formatter: logging.Formatter | None = None,
) -> list[Any]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False, log_record_limits=limits)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = handler_class(logger_provider=provider)
    if formatter is not None:
        handler.setFormatter(formatter)
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    return [item.log_record for item in exporter.get_finished_logs()]


def _fields(record: Any) -> dict[str, Any]:
    return {
        "body": record.body,
        "attributes": list(record.attributes.items()),
        "event_name": record.event_name,
        "severity_number": record.severity_number,
        "severity_text": record.severity_text,
        "trace_id": record.trace_id,
        "span_id": record.span_id,
    }


def _fail() -> None:
    raise ValueError("bad input", 42)


def _throw(exc: Exception) -> None:
    raise exc


def _log_exception(logger: logging.Logger, exc: Exception) -> None:
    try:
        _throw(exc)
    except Exception:
        logger.exception("failed")


def _raise_and_log(logger: logging.Logger) -> None:
    try:
        _fail()
    except ValueError:
        logger.exception("it failed", extra={"user.id": "u-1"})


SCENARIOS: dict[str, Any] = {
    "no extra": lambda lg: lg.info("plain %s", "message"),
    "one extra": lambda lg: lg.warning("x", extra={"user.name": "alice"}),
    "several extras keep their order": lambda lg: lg.warning(
        "x", extra={"b": 1, "a": 2.5, "c": True, "d": None, "e": "text"}
    ),
    "otel.event.name promoted": lambda lg: lg.warning(
        "x", extra={"otel.event.name": "authentication.failure", "user.name": "bob"}
    ),
    "deprecated event.name promoted": lambda lg: lg.warning(
        "x", extra={"event.name": "authorization.denied"}
    ),
    "both names: otel.event.name wins": lambda lg: lg.warning(
        "x", extra={"event.name": "old", "otel.event.name": "new"}
    ),
    "list and dict values": lambda lg: lg.error(
        "x", extra={"roles": ["a", "b"], "nested": {"k": [1, 2]}}
    ),
    "nested empty key, tuples and lists (bounded, then the SDK's pass skipped)": lambda lg: (
        lg.error("x", extra={"body": {"": 1, "user": "bob", "tags": ("x", ["y", {"z": []}])}})
    ),
    "bytes value": lambda lg: lg.error("x", extra={"raw": b"\x00\x01"}),
    "exception": _raise_and_log,
    "critical maps to FATAL": lambda lg: lg.critical("down"),
    "non-string key": lambda lg: lg.warning("x", extra={5: "v", "k": "w"}),
    "empty key": lambda lg: lg.warning("x", extra={"": "v", "k": "w"}),
    "exception without args": lambda lg: _log_exception(lg, KeyError()),
    "debug": lambda lg: lg.debug("details"),
}


@pytest.fixture
def span() -> Iterator[None]:
    with TracerProvider().get_tracer("test").start_as_current_span("request"):
        yield


@pytest.mark.filterwarnings("ignore::opentelemetry.sdk._logs.LogRecordDroppedAttributesWarning")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_same_records_as_the_upstream_handler(scenario: str, span: None) -> None:
    emit = SCENARIOS[scenario]
    theirs = _capture(LoggingHandler, f"cmp.upstream.{scenario}", emit)
    ours = _capture(AuditLoggingHandler, f"cmp.ours.{scenario}", emit)
    assert len(theirs) == len(ours) == 1
    expected, got = _fields(theirs[0]), _fields(ours[0])
    if scenario == "bytes value":
        # The one deliberate difference: bytes are decoded at ingress so redaction can
        # scan them (see otel_audit._bounded).
        assert dict(got.pop("attributes")) == {"raw": "\x00\x01"}
        expected.pop("attributes")
    assert got == expected
    assert ours[0].trace_id  # the span's context reached the record
    assert ours[0].attributes.dropped == theirs[0].attributes.dropped


def test_huge_values_are_bounded_before_the_sdk() -> None:
    """Strings over 64 KiB, in extra= or in an exception's message and trace, are cut."""

    def emit(lg: logging.Logger) -> None:
        try:
            _throw(ValueError("m" * 100_000))
        except ValueError:
            lg.exception("failed", extra={"big": "b" * 100_000})

    (record,) = _capture(AuditLoggingHandler, "cmp.huge", emit)
    attributes = record.attributes
    assert len(attributes["big"]) == 64 * 1024
    assert len(attributes["exception.message"]) == 64 * 1024
    assert len(attributes["exception.stacktrace"]) <= 64 * 1024


def test_formatter_is_used_for_the_body() -> None:
    formatter = logging.Formatter("%(levelname)s:%(message)s")
    ours = _capture(AuditLoggingHandler, "cmp.fmt", lambda lg: lg.info("hi"), formatter=formatter)
    assert ours[0].body == "INFO:hi"


def test_attribute_length_limit_still_truncates() -> None:
    limits = LogRecordLimits(max_log_record_attribute_length=4)
    emit = lambda lg: lg.info("x", extra={"k": "abcdefgh"})  # noqa: E731
    ours = _capture(AuditLoggingHandler, "cmp.len", emit, limits=limits)
    assert ours[0].attributes["k"] == "abcd"


@pytest.mark.filterwarnings("ignore::opentelemetry.sdk._logs.LogRecordDroppedAttributesWarning")
def test_attribute_count_limit_still_applies() -> None:
    limits = LogRecordLimits(max_log_record_attributes=2)
    ours = _capture(
        AuditLoggingHandler,
        "cmp.count",
        lambda lg: lg.info("x", extra={"a": 1, "b": 2, "c": 3}),
        limits=limits,
    )
    attributes = ours[0].attributes
    assert len(attributes) == 2
    assert attributes.dropped == 1


def test_attributes_stay_bounded_for_later_processors() -> None:
    """Values set after the shortcut still go through the SDK's BoundedAttributes."""
    ours = _capture(AuditLoggingHandler, "cmp.guard", lambda lg: lg.info("x", extra={"a": 1}))
    attributes = ours[0].attributes
    assert isinstance(attributes, BoundedAttributes)
    attributes["b"] = ["x", "y"]
    assert attributes["b"] == ("x", "y")  # cleaned by the SDK, as on its own path


def test_disabled_sdk_emits_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    ours = _capture(AuditLoggingHandler, "cmp.disabled", lambda lg: lg.warning("x"))
    assert ours == []


def test_loggers_are_cached_per_name() -> None:
    calls: list[str] = []
    provider = LoggerProvider(shutdown_on_exit=False)
    original = provider.get_logger

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return original(name, *args, **kwargs)

    provider.get_logger = counting  # type: ignore[method-assign]
    handler = AuditLoggingHandler(logger_provider=provider)
    for name in ("svc.a", "svc.a", "svc.b", "svc.a"):
        handler.emit(logging.LogRecord(name, logging.INFO, __file__, 1, "m", None, None))
    assert calls == ["svc.a", "svc.b"]
    assert handler.errors == 0
    provider.shutdown()


def test_recursive_logging_is_skipped_not_looped() -> None:
    """A record logged while one is being translated is dropped, never re-entered."""
    seen: list[str] = []

    class Reentrant:
        def __str__(self) -> str:
            logging.getLogger("cmp.reentrant").warning("inner")
            seen.append("str")
            return "outer-value"

    ours = _capture(AuditLoggingHandler, "cmp.reentrant", lambda lg: lg.warning("%s", Reentrant()))
    assert seen == ["str"]
    assert [record.body for record in ours] == ["outer-value"]


class TestDirectDict:
    """Where otel-audit may write past BoundedAttributes.__setitem__, and where it may not."""

    def test_a_mutable_mapping_without_limits_is_written_directly(self) -> None:
        attributes = BoundedAttributes(attributes={"a": 1}, immutable=False)
        assert direct_dict(attributes) is attributes._dict

    @pytest.mark.parametrize(
        "attributes",
        [
            BoundedAttributes(attributes={"a": 1}),  # immutable: its __setitem__ raises
            BoundedAttributes(attributes={"a": 1}, immutable=False, max_value_len=8),
            BoundedAttributes(maxlen=2, attributes={"a": 1, "b": 2}, immutable=False),
            {"a": 1},  # not the SDK's mapping
        ],
        ids=["immutable", "value-length limit", "no room", "plain dict"],
    )
    def test_otherwise_the_sdk_writes(self, attributes: Any) -> None:
        assert direct_dict(attributes) is None

    def test_room_is_counted(self) -> None:
        attributes = BoundedAttributes(maxlen=3, attributes={"a": 1}, immutable=False)
        assert direct_dict(attributes, room=2) is not None
        assert direct_dict(attributes, room=3) is None

    def test_reads_see_the_same_items(self) -> None:
        attributes = BoundedAttributes(attributes={"a": 1, "b": (2,)}, immutable=False)
        assert dict(attribute_dict(attributes)) == dict(attributes)
        assert attribute_dict({"a": 1}) == {"a": 1}
