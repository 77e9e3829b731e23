"""Deferred security events: built off the caller's thread, never lost, never reordered."""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, get_current_span

import otel_audit
from otel_audit import Actor, audit_scope, request_context, semconv
from otel_audit._context import RequestContext
from otel_audit._deferred import DeferredEmitter


class _Spy(LogRecordProcessor):
    """Records each record with the thread that emitted it."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, ReadWriteLogRecord]] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.seen.append((threading.get_ident(), log_record))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def names(self) -> list[str | None]:
        return [rw.log_record.event_name for _, rw in self.seen]


def _configured(
    request: pytest.FixtureRequest, **options: Any
) -> Iterator[tuple[LoggerProvider, _Spy]]:
    """configure() on a private provider, with a spy after the AuditProcessor."""
    otel_audit.shutdown()
    provider = LoggerProvider(shutdown_on_exit=False)
    otel_audit.configure(
        environ={},
        logger_provider=provider,
        exporters=[],
        set_global=False,
        **{**options, **getattr(request, "param", {})},
    )
    spy = _Spy()
    provider.add_log_record_processor(spy)
    try:
        yield provider, spy
    finally:
        otel_audit.shutdown()


@pytest.fixture
def pipeline(request: pytest.FixtureRequest) -> Iterator[tuple[LoggerProvider, _Spy]]:
    """The pipeline without the stdlib bridge."""
    yield from _configured(request, bridge_logging=False)


_FRAMEWORK_REQUEST: contextvars.ContextVar[object] = contextvars.ContextVar("framework_request")


class _Blocker:
    """A job that holds the emitter thread until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> None:
        self.started.set()
        self.release.wait(10)


class TestThroughConfigure:
    def test_built_on_another_thread_with_the_callers_context(self, pipeline):
        """Span, request context, audit scope and timestamp are the call's, not the emit's."""
        provider, spy = pipeline
        tracer = TracerProvider().get_tracer("t")
        ctx = RequestContext(client_address="192.0.2.7", request_id="req-1", path="/login")
        before = time.time_ns()
        with (
            tracer.start_as_current_span("request") as span,
            request_context(ctx),
            audit_scope(target="tenant:9"),
        ):
            event_id = otel_audit.security_event("authentication.failure", actor="alice")
        after = time.time_ns()
        time.sleep(0.05)  # the context is gone and the clock has moved on
        provider.force_flush()
        ((thread, rw),) = spy.seen
        record = rw.log_record
        assert thread != threading.get_ident()
        assert record.attributes[semconv.EVENT_ID] == event_id
        assert record.trace_id == span.get_span_context().trace_id
        assert record.span_id == span.get_span_context().span_id
        assert record.attributes[semconv.CLIENT_ADDRESS] == "192.0.2.7"
        assert record.attributes[semconv.AUDIT_TARGET] == "tenant:9"
        assert record.attributes[semconv.USER_ID] == "alice"
        assert before <= record.timestamp <= after
        assert record.observed_timestamp == record.timestamp

    def test_the_record_keeps_the_spans_identity_not_the_span_or_the_callers_context(
        self, pipeline
    ):
        """
        Only what the record is built from is captured, and the span only by its ids.

        The record waits in the export queue with its context; the live span, or every
        context variable of the request (a web framework's request object), waiting with
        it made full garbage collections three times as frequent in the example app.
        """
        provider, spy = pipeline
        seen_by_processors: list[object] = []

        class _Reader(_Spy):
            def on_emit(self, log_record: ReadWriteLogRecord) -> None:
                seen_by_processors.append(_FRAMEWORK_REQUEST.get(None))

        provider.add_log_record_processor(_Reader())
        tracer = TracerProvider().get_tracer("t")
        with tracer.start_as_current_span("request") as span:
            token = _FRAMEWORK_REQUEST.set(object())
            try:
                otel_audit.security_event("authentication.failure", actor="alice")
            finally:
                _FRAMEWORK_REQUEST.reset(token)
        provider.force_flush()
        ((_, rw),) = spy.seen
        kept = get_current_span(rw.log_record.context)
        assert type(kept) is NonRecordingSpan
        assert kept.get_span_context() == span.get_span_context()
        assert seen_by_processors == [None]

    def test_roles_and_extra_are_those_of_the_call(self, pipeline):
        """Lists and dicts the caller keeps cannot change a deferred event (review)."""
        provider, spy = pipeline
        roles = ["viewer"]
        extra = {"tenant.id": "t1"}
        with request_context(RequestContext(actor=Actor(id="u1", roles=roles), extra=extra)):
            otel_audit.security_event("authorization.denied", actor=Actor(id="u2", roles=roles))
            roles.append("admin")
            extra["tenant.id"] = "t2"
        provider.force_flush()
        ((_, rw),) = spy.seen
        assert rw.log_record.attributes[semconv.USER_ROLES] == ("viewer",)
        assert rw.log_record.attributes["tenant.id"] == "t1"

    def test_runs_without_a_flush(self, pipeline):
        """A sleeping emitter is woken by the first event; nobody has to flush."""
        _, spy = pipeline
        otel_audit.security_event("session.created", actor="bob")
        deadline = time.monotonic() + 5
        while not spy.seen and time.monotonic() < deadline:
            time.sleep(0.005)
        assert spy.names() == ["session.created"]

    def test_mutable_arguments_are_snapshotted_at_the_call(self, pipeline):
        """Changing the actor, target or a detail after the call changes nothing recorded."""
        provider, spy = pipeline
        actor = {"id": "u1", "roles": ["viewer"]}
        target = {"kind": "report", "id": "r1"}
        columns = ["name"]
        otel_audit.security_event("data.export", actor=actor, target=target, columns=columns)
        actor["id"] = "someone-else"
        target["id"] = "r2"
        columns.append("salary")
        provider.force_flush()
        ((_, rw),) = spy.seen
        attrs = rw.log_record.attributes
        assert attrs[semconv.USER_ID] == "u1"
        assert attrs[f"{semconv.AUDIT_TARGET}.id"] == "r1"
        assert tuple(attrs["columns"]) == ("name",)

    def test_order_is_kept(self, pipeline):
        provider, spy = pipeline
        ids = [otel_audit.security_event("session.created", actor=f"u{i}") for i in range(300)]
        provider.force_flush()
        assert [rw.log_record.attributes[semconv.EVENT_ID] for _, rw in spy.seen] == ids

    def test_shutdown_emits_what_is_pending(self, pipeline):
        """otel_audit.shutdown() (also at exit) runs the queue before the exporters stop."""
        _, spy = pipeline
        blocker = _Blocker()
        emitter = otel_audit.get_audit_processor()._deferred
        emitter.submit(blocker)
        assert blocker.started.wait(5)
        otel_audit.security_event("authentication.success", actor="carol")
        assert spy.seen == []
        threading.Timer(0.1, blocker.release.set).start()
        otel_audit.shutdown()
        assert spy.names() == ["authentication.success"]
        # after shutdown the emitter runs calls on the caller's thread
        ran: list[int] = []
        assert emitter.submit(ran.append, 1) is False
        assert ran == [1]

    def test_app_event_suppresses_the_automatic_401_before_it_is_built(self, pipeline):
        """The request context learns the category at the call, not when the record is built."""
        ctx = RequestContext(path="/login")
        with request_context(ctx):
            otel_audit.security_event("authentication.failure", actor="dave")
            assert "authentication" in ctx.emitted.categories

    @pytest.mark.parametrize("pipeline", [{"defer_events": False}], indirect=True)
    def test_off_emits_on_the_callers_thread(self, pipeline):
        _, spy = pipeline
        otel_audit.security_event("authentication.failure", actor=Actor(id="erin"))
        ((thread, _),) = spy.seen
        assert thread == threading.get_ident()
        assert otel_audit.get_audit_processor()._deferred is None

    def test_without_configure_events_are_not_deferred(self):
        """A hand-built pipeline (no configure()) gets no background thread."""
        otel_audit.shutdown()
        provider = LoggerProvider(shutdown_on_exit=False)
        spy = _Spy()
        provider.add_log_record_processor(spy)
        from otel_audit import _api  # noqa: PLC0415

        _api._set_provider(provider)
        try:
            otel_audit.security_event("authentication.failure", actor="frank")
        finally:
            _api._set_provider(None)
        ((thread, _),) = spy.seen
        assert thread == threading.get_ident()


class TestEmitter:
    def test_full_queue_runs_on_the_caller_without_loss_or_reordering(self):
        """The overflowing call runs on the caller, after what was queued before it."""
        emitter = DeferredEmitter(2)
        ran: list[tuple[str, int]] = []
        blocker = _Blocker()
        try:
            assert emitter.submit(blocker) is True
            assert blocker.started.wait(5)
            me = threading.get_ident()
            assert emitter.submit(lambda: ran.append(("a", threading.get_ident()))) is True
            assert emitter.submit(lambda: ran.append(("b", threading.get_ident()))) is True
            threading.Timer(0.2, blocker.release.set).start()
            assert emitter.submit(lambda: ran.append(("c", threading.get_ident()))) is False
            assert [name for name, _ in ran] == ["a", "b", "c"]
            assert ran[-1] == ("c", me)
            assert emitter.stats.snapshot()["inline.full"] == 1
        finally:
            blocker.release.set()
            emitter.close()

    def test_flush_returns_although_producers_keep_the_queue_busy(self):
        """It waits for what was queued before it, not for an empty queue (review)."""
        emitter = DeferredEmitter(64, linger_s=0)
        stop = threading.Event()

        def produce() -> None:
            while not stop.is_set():
                emitter.submit(time.sleep, 0.0005)

        producers = [threading.Thread(target=produce) for _ in range(4)]
        for thread in producers:
            thread.start()
        try:
            time.sleep(0.1)
            started = time.monotonic()
            assert emitter.flush(5.0) is True
            assert time.monotonic() - started < 5.0
        finally:
            stop.set()
            for thread in producers:
                thread.join()
            emitter.close()

    def test_a_call_made_by_a_call_that_a_flush_runs_is_flushed_too(self):
        """An alert raised while flush() runs its event (the demo lost its export alert)."""
        emitter = DeferredEmitter(8)
        ran: list[str] = []

        def event() -> None:
            ran.append("event")
            emitter.submit(ran.append, "alert")

        blocker = _Blocker()
        try:
            emitter.submit(blocker)
            assert blocker.started.wait(5)
            emitter.submit(event)
            threading.Timer(0.1, blocker.release.set).start()
            assert emitter.flush(5.0) is True
            assert ran == ["event", "alert"]
        finally:
            blocker.release.set()
            emitter.close()

    def test_a_call_made_by_a_call_runs_right_after_it_also_while_closing(self):
        """Not after the rest of the queue run nested inside it (the demo lost an alert)."""
        emitter = DeferredEmitter(8, linger_s=1.0)  # the thread lingers: close() runs the queue
        order: list[str] = []
        runners: set[int] = set()

        def grant() -> None:
            runners.add(threading.get_ident())
            order.append("grant")
            emitter.submit(order.append, "alert")

        emitter.submit(grant)
        emitter.submit(order.append, "export")
        emitter.close()
        assert runners == {threading.get_ident()}
        assert order == ["grant", "alert", "export"]

    def test_flush_times_out(self):
        emitter = DeferredEmitter(8)
        blocker = _Blocker()
        try:
            emitter.submit(blocker)
            assert blocker.started.wait(5)
            emitter.submit(lambda: None)
            assert emitter.flush(0.1) is False
        finally:
            blocker.release.set()
            emitter.close()

    def test_a_flush_from_a_call_on_the_emitter_does_not_reorder(self):
        emitter = DeferredEmitter(16)
        order: list[str] = []

        def first() -> None:
            order.append("first")
            assert emitter.flush() is True  # a processor that flushes

        blocker = _Blocker()
        try:
            emitter.submit(blocker)
            assert blocker.started.wait(5)
            emitter.submit(first)
            emitter.submit(order.append, "second")
            blocker.release.set()
            assert emitter.flush(5.0) is True
        finally:
            emitter.close()
        assert order == ["first", "second"]

    def test_a_thread_that_cannot_start_runs_the_call_inline(self, monkeypatch):
        """Python 3.12+ refuses new threads in atexit handlers (review)."""
        emitter = DeferredEmitter(8)
        monkeypatch.setattr(threading.Thread, "start", _refuse_start)
        ran: list[int] = []
        assert emitter.submit(ran.append, 1) is False
        assert ran == [1]
        assert emitter.stats.snapshot()["inline.no_thread"] == 1
        emitter.close()  # no "cannot join thread before it is started"

    def test_a_system_exit_from_a_call_does_not_end_the_thread(self):
        emitter = DeferredEmitter(8, linger_s=0)
        ran: list[int] = []
        try:
            emitter.submit(_raise_system_exit)  # caught per job: the thread lives on
            emitter.submit(ran.append, 1)
            assert emitter.flush(5.0) is True
            assert ran == [1]
            assert emitter.stats.snapshot()["errors"] == 1
        finally:
            emitter.close()

    def test_a_signal_handler_that_records_an_event_does_not_deadlock(self):
        """A handler interrupting submit() on the same thread (plain locks deadlocked)."""
        emitter = DeferredEmitter(8)
        ran: list[str] = []
        try:
            with emitter._wake:  # as if interrupted inside submit()
                emitter.submit(ran.append, "from the handler")
                emitter.stats.incr("x")
                with emitter.stats._lock:
                    emitter.stats.incr("y")
            assert emitter.flush(5.0) is True
        finally:
            emitter.close()
        assert ran == ["from the handler"]

    def test_a_call_from_the_emitter_thread_runs_there(self):
        """An alert raised while an event is processed must not wait for its own thread."""
        emitter = DeferredEmitter(8)
        inner: list[bool] = []
        try:
            emitter.submit(lambda: inner.append(emitter.submit(inner.append, True)))
            deadline = time.monotonic() + 5  # no flush(): that would run it on this thread
            while len(inner) < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            emitter.close()
        assert inner == [True, False]  # ran at once (True), then submit() said "not queued"
        assert emitter.stats.snapshot()["inline.reentrant"] == 1

    def test_a_failing_call_is_counted_and_the_next_still_runs(self):
        emitter = DeferredEmitter(8)
        ran: list[int] = []
        try:
            emitter.submit(lambda: 1 / 0)
            emitter.submit(ran.append, 1)
            deadline = time.monotonic() + 5
            while not ran and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            emitter.close()
        assert ran == [1]
        assert emitter.stats.snapshot()["errors"] == 1

    def test_close_joins_the_thread(self):
        emitter = DeferredEmitter(8)
        emitter.submit(lambda: None)
        thread = emitter._thread
        emitter.close()
        emitter.close()
        assert thread is not None
        assert not thread.is_alive()

    def test_capacity_must_be_positive(self):
        with pytest.raises(ValueError, match="capacity"):
            DeferredEmitter(0)

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
    def test_a_forked_child_does_not_repeat_the_parents_queue(self):
        """What the parent had queued is the parent's; the child starts its own thread."""
        emitter = DeferredEmitter(8)
        blocker = _Blocker()
        read_end, write_end = os.pipe()
        try:
            emitter.submit(blocker)
            assert blocker.started.wait(5)
            emitter.submit(os.write, write_end, b"p")
            pid = os.fork()
            if pid == 0:  # the child
                code = 1
                try:
                    if emitter.pending == 0:
                        emitter.submit(os.write, write_end, b"c")
                        emitter.flush()
                        code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            blocker.release.set()
            emitter.flush()
        finally:
            blocker.release.set()
            emitter.close()
            os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            assert sorted(pipe.read()) == sorted(b"cp")


def _refuse_start(self: threading.Thread) -> None:
    raise RuntimeError("can't create new thread at interpreter shutdown")


def _raise_system_exit() -> None:
    raise SystemExit(3)


@pytest.fixture
def bridged(request: pytest.FixtureRequest) -> Iterator[tuple[LoggerProvider, _Spy]]:
    """The pipeline with the stdlib bridge on the root logger."""
    yield from _configured(request, bridge_logging=True)


_SECURITY = logging.getLogger("security")


class TestStdlibRecords:
    def test_processed_on_the_emitter_in_call_order_with_security_event(self, bridged):
        """A `security` logger record no longer overtakes an earlier security_event()."""
        provider, spy = bridged
        blocker = _Blocker()
        otel_audit.get_audit_processor()._deferred.submit(blocker)
        assert blocker.started.wait(5)
        otel_audit.security_event("session.created", actor="amy")
        _SECURITY.warning("bad password", extra={"otel.event.name": "authentication.failure"})
        otel_audit.security_event("session.revoked", actor="amy")
        assert spy.seen == []  # the logging call did not run the processors
        blocker.release.set()
        provider.force_flush()
        assert spy.names() == ["session.created", "authentication.failure", "session.revoked"]

    def test_the_record_is_fixed_at_the_call(self, bridged):
        """Message, extra values and timestamps are taken when the caller logs."""
        provider, spy = bridged
        body = {"username": "bob", "tries": [1]}
        before = time.time_ns()
        _SECURITY.warning(
            "login failed for %s",
            "bob",
            extra={"otel.event.name": "authentication.failure", "request.body": body},
        )
        body["username"] = "changed"
        body["tries"].append(2)
        time.sleep(0.05)
        provider.force_flush()
        ((_, rw),) = spy.seen
        record = rw.log_record
        assert record.body == "login failed for bob"
        assert dict(record.attributes["request.body"]) == {"username": "bob", "tries": (1,)}
        assert before <= record.timestamp < before + 50_000_000

    def test_the_app_event_suppresses_the_automatic_401_before_it_is_processed(self, bridged):
        """The middleware learns the category on the caller's thread, as for security_event()."""
        ctx = RequestContext(path="/login")
        with request_context(ctx):
            _SECURITY.warning("bad password", extra={"otel.event.name": "authentication.failure"})
            assert "authentication" in ctx.emitted.categories
            logging.getLogger("app").warning("not a security event")
            assert ctx.emitted.categories == {"authentication"}

    def test_a_record_whose_processing_fails_is_counted_and_kept_as_a_fact(
        self, bridged, monkeypatch
    ):
        """The fallback record says something was logged; the handler counts the error."""
        provider, spy = bridged
        handler = otel_audit._configure._state.handler
        from otel_audit import _handler  # noqa: PLC0415

        def broken(logger, record, *, plain):
            raise RuntimeError("boom")

        monkeypatch.setattr(_handler, "writable", broken)
        _SECURITY.warning("bad password", extra={"otel.event.name": "authentication.failure"})
        provider.force_flush()
        assert handler.errors == 1
        ((_, rw),) = spy.seen
        assert rw.log_record.body == "[otel-audit: the log message could not be formatted]"
        assert rw.log_record.event_name == "authentication.failure"
        assert rw.log_record.attributes["otel_audit.handler_error"] == "RuntimeError"

    @pytest.mark.parametrize("bridged", [{"defer_events": False}], indirect=True)
    def test_off_processes_on_the_callers_thread(self, bridged):
        _, spy = bridged
        _SECURITY.warning("bad password", extra={"otel.event.name": "authentication.failure"})
        ((thread, _),) = spy.seen
        assert thread == threading.get_ident()
