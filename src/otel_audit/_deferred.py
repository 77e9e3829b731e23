"""
Building security events off the application's thread.

A request that emits one security event pays for the whole record path on its own
thread: the SDK's ``LogRecord``, tagging, enrichment and tier-1 redaction, about 30 µs in
isolation and two to three times that on a busy threaded server (bench_http). On a
GIL-bound server the response cannot leave before that work is done. ``security_event()``
(and so the web middleware's automatic events) therefore only captures the call on the
application thread, with the parts of its context the record is built from (the
OpenTelemetry context with the active span and baggage, otel-audit's request context and
``audit_scope``) and its timestamp, and this module's thread emits it a few milliseconds
later, after the response has gone. The stdlib bridge (``AuditLoggingHandler``) does the
same with the record it has translated on the caller's thread, so both kinds of events
share one queue and leave in the order they were made.

Only those three are captured, not ``contextvars.copy_context()``: a copy keeps every
context variable of the request alive until the emitter runs (Flask's request context,
with the environ, the request, its headers and session), so each event held hundreds of
objects past a garbage collection, and they were promoted to the oldest generation. In
the example app that made full collections (about 50 ms each, holding the GIL) three
times as frequent, and garbage collection cost 80 instead of 30 µs per request. Other
context variables of the application are therefore not visible to log record processors
while a deferred event is built. For the same reason the span in the captured context is
replaced by a non-recording span with the same identity before the record is built: the
record keeps its context while it waits in the export queue, and the live span object
(its attributes, events, locks) would wait with it. The request's span has usually ended
by then anyway.

What makes that safe for an audit trail:

- **Nothing is dropped.** The queue is bounded; when it is full, when the emitter has
  been closed, or when the call comes from the emitter's own thread (an alert raised
  while processing an event), the event is emitted on the caller's thread, as if
  deferral were off. Each such fallback is counted in :attr:`DeferredEmitter.stats`.
- **Flush and shutdown see it.** ``LoggerProvider.force_flush()`` and ``shutdown()``
  reach :meth:`DeferredEmitter.flush` / :meth:`close` through the AuditProcessor, which
  is the first processor, so queued events enter the pipeline before the exporting
  processors flush. An ``atexit`` hook drains it too.
- **Order is kept.** One drainer at a time pops from one FIFO.
- **A fork does not duplicate.** The child forgets what the parent had queued (the parent
  emits it) and starts its own thread on first use.

The window in which a hard kill (``SIGKILL``, ``os._exit``) loses a queued event is the
linger time below, shorter than the durable processor's own in-memory window before its
spool write.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry.context import Context, attach, detach, get_current
from opentelemetry.trace import NonRecordingSpan, get_current_span, set_span_in_context

from otel_audit._context import _REQUEST, _SCOPE, RequestContext
from otel_audit._processor import ProcessorStats

LINGER_S: Final = 0.02
"""How long the thread lets events gather before it drains them (batching the wake-ups)."""

_HOLD_S: Final = 0.0002
"""Hold the GIL at most this long before letting request threads run (see ``_drain``)."""

_Job = tuple[
    Context | None,  # OpenTelemetry's (span, baggage, suppression); None: a flush marker
    RequestContext | None,
    Mapping[str, Any] | None,  # audit_scope
    Callable[..., Any],
    tuple[Any, ...],
]


class DeferredEmitter:
    """
    A bounded FIFO of captured calls and the one thread that runs them.

    Args:
        capacity: Calls held before :meth:`submit` runs them on the caller's thread.
        linger_s: How long queued calls may wait for company before the thread runs them.
    """

    def __init__(self, capacity: int, *, linger_s: float = LINGER_S) -> None:
        if capacity < 1:
            msg = f"capacity must be >= 1, got {capacity}"
            raise ValueError(msg)
        self._capacity = capacity
        self._linger_s = linger_s
        self.stats = ProcessorStats()
        """
        Calls run on the caller's thread (``inline.full``, ``inline.closed``,
        ``inline.reentrant``, ``inline.no_thread``) and calls that raised (``errors``).
        """
        self._closed = False
        self._reset_state()
        os.register_at_fork(after_in_child=_weak_call(self._reset_state))
        atexit.register(_weak_call(self.close))

    def _reset_state(self) -> None:
        # Also the at-fork hook: what the parent had queued is the parent's to emit.
        self._queue: deque[_Job] = deque()
        # Re-entrant: a signal handler that records an event may interrupt submit() on
        # the same thread while it holds this lock (a plain Lock deadlocked there).
        self._wake = threading.Condition(threading.RLock())
        self._drain_lock = threading.RLock()  # held while one job is popped and run
        self._sleeping = False
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._runner: int | None = None  # the thread running a queued call right now
        self._pid = os.getpid()

    @property
    def pending(self) -> int:
        """Calls captured and not yet run."""
        return len(self._queue)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> bool:
        """
        Run ``fn(*args)`` soon on the emitter thread, in the caller's current context.

        Returns True if it was queued, False if it ran on the caller's thread (full,
        closed, no thread could be started, or called from the emitter thread). Before a
        call runs on the caller's thread, what is queued runs first, so calls are
        processed in the order they were made. ``fn`` must not raise; if it does,
        ``errors`` counts it.
        """
        me = threading.get_ident()
        if me in (self._thread_id, self._runner):
            # From inside a queued call (an alert raised while an event is processed),
            # on the emitter or on a thread that is flushing: right away, as without
            # deferral. Queued, it could land behind a flush's marker; running the queue
            # first would process other events inside this one (the detections ignore
            # events that arrive while they raise an alert).
            return self._inline("inline.reentrant", fn, args)
        if self._closed:
            return self._inline("inline.closed", fn, args)
        queue = self._queue
        if len(queue) >= self._capacity:
            return self._inline("inline.full", fn, args)
        if not self._running() and not self._start():
            return self._inline("inline.no_thread", fn, args)
        # deque.append is atomic under the GIL
        queue.append((get_current(), _REQUEST.get(), _SCOPE.get(), fn, args))
        if self._closed:  # close() ran meanwhile: its thread may be gone
            self.flush()
            return False
        if self._sleeping:
            with self._wake:
                self._wake.notify()
        return True

    def flush(self, timeout_s: float | None = None) -> bool:
        """
        Run what was queued before this call, helping the emitter; False on timeout.

        A marker goes to the back of the queue and the call returns once it has run, so
        producers that keep the queue full cannot hold it forever. On the emitter thread
        itself (a processor that flushes) it returns at once: the emitter is already
        running the queue in order, and draining it from inside one call's processing
        would reorder them.
        """
        if threading.get_ident() == self._thread_id:
            return True
        marker = threading.Event()
        self._queue.append((None, None, None, marker.set, ()))
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not marker.is_set():
            if deadline is None:
                self._drain_lock.acquire()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._drain_lock.acquire(timeout=remaining):
                    return False
            try:
                self._run_next()
            finally:
                self._drain_lock.release()
        return True

    def close(self) -> None:
        """Stop deferring: run what is queued, then let the thread end. Safe to call twice."""
        self._closed = True
        self.flush()
        with self._wake:
            self._wake.notify_all()
        thread = self._thread
        if (
            thread is not None
            and thread.ident is not None
            and thread is not threading.current_thread()
        ):
            thread.join(1.0)

    # --- internals -----------------------------------------------------------------

    def _inline(self, counter: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        self.stats.incr(counter)
        if counter != "inline.reentrant":  # the emitter is running the queue in order
            self.flush()
        try:
            fn(*args)
        except Exception:
            self.stats.incr("errors")
        return False

    def _running(self) -> bool:
        thread = self._thread
        return thread is not None and self._pid == os.getpid() and thread.is_alive()

    def _start(self) -> bool:
        """Start the emitter thread (again, after a fork or its death); False if it cannot."""
        with self._wake:
            if self._pid != os.getpid():
                self._reset_state_locked()
            if self._running():
                return True
            if self._thread is not None:  # it died: count it, start another
                self.stats.incr("thread_restarts")
            thread = threading.Thread(target=self._loop, name="otel-audit-emitter", daemon=True)
            try:
                thread.start()  # refused in atexit handlers from Python 3.12 on
            except RuntimeError:
                self._thread = None
                return False
            self._thread = thread
            return True

    def _reset_state_locked(self) -> None:
        # A child whose at-fork hook did not run (a fork outside os.fork's hooks).
        self._queue = deque()
        self._drain_lock = threading.RLock()
        self._sleeping = False
        self._thread = None
        self._thread_id = None
        self._runner = None
        self._pid = os.getpid()

    def _wait_for_work(self) -> bool:
        """Block until there is something to run; False once closed and empty."""
        with self._wake:
            if not self._queue:
                if self._closed:
                    return False
                self._sleeping = True
                try:
                    while not self._queue and not self._closed:
                        self._wake.wait()
                finally:
                    self._sleeping = False
        if self._linger_s > 0 and not self._closed and len(self._queue) < self._capacity >> 2:
            time.sleep(self._linger_s)
        return True

    def _run_next(self) -> bool:
        """Pop and run one job (the caller holds _drain_lock); False if none was queued."""
        try:
            job = self._queue.popleft()
        except IndexError:
            return False
        outer, self._runner = self._runner, threading.get_ident()
        try:
            _run(job)
        except BaseException:  # SystemExit, GreenletExit from a processor: count, go on
            self.stats.incr("errors")
        finally:
            self._runner = outer
        return True

    def _drain(self) -> None:
        """
        Run queued calls in order until the queue is empty (the emitter thread's loop).

        The drain lock is taken per call, so a flush from another thread takes its turn
        between two calls. The GIL is given up every ``_HOLD_S`` (as the durable intake
        does): otherwise a batch of events holds it for milliseconds and each request
        thread that wants it meanwhile waits out the interpreter's 5 ms switch interval.
        Not while a backlog builds up (a quarter of the capacity): then the queue must
        shrink first.
        """
        queue = self._queue
        held = time.perf_counter()
        while queue:
            with self._drain_lock:
                if not self._run_next():
                    return
            if len(queue) <= self._capacity >> 2:
                now = time.perf_counter()
                if now - held >= _HOLD_S:
                    time.sleep(0)
                    held = time.perf_counter()

    def _loop(self) -> None:
        """The thread's body, until :meth:`close`."""
        self._thread_id = threading.get_ident()
        while True:
            try:
                if not self._wait_for_work():
                    return
                self._drain()
            except BaseException:  # never let the thread die with events queued
                with contextlib.suppress(BaseException):
                    self.stats.incr("errors")


def _run(job: _Job) -> None:
    """Run a captured call with the context it was captured in, then restore ours."""
    otel_context, request, scope, fn, args = job
    if otel_context is None:  # a flush marker
        fn(*args)
        return
    span = get_current_span(otel_context)
    if type(span) is not NonRecordingSpan:  # keep the span's identity, not the object
        otel_context = set_span_in_context(NonRecordingSpan(span.get_span_context()), otel_context)
    request_token = _REQUEST.set(request)
    scope_token = _SCOPE.set(scope)
    otel_token = attach(otel_context)
    try:
        fn(*args)
    finally:
        detach(otel_token)
        _SCOPE.reset(scope_token)
        _REQUEST.reset(request_token)


def _weak_call(method: Callable[[], None]) -> Callable[[], None]:
    """Call a bound method if its object still exists (for atexit and at-fork hooks)."""
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            with contextlib.suppress(Exception):
                bound()

    return call
