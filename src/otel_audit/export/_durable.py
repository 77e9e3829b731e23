"""
The durable delivery path for security events.

Why not the SDK's ``BatchLogRecordProcessor``: when its queue is full it drops the oldest
record, when an export fails it discards the batch, and its queue is lost on ``fork()``
and on a crash. For audit records each of those is a silent hole in the evidence.

How records move (two threads, so a slow collector never stalls the intake)::

    app thread      on_emit: select → encode (export/_wire; values that need the export
                       │   bounds: sanitize + SDK encoder) → bounded deque (queue_size)
                       │   block / drop policy.  With a pre_export step, the record itself
                       │   is queued and encoded on the intake thread after that step.
    intake thread   batch → [pre_export (tier-2) → encode] → integrity chain in
                       │   request order → append to the spool (WAL); yields the GIL
                       │   between records unless a burst is backing up the queue
                       │   spool full / unusable → bounded memory FIFO (queue_size records)
    sender thread   oldest spool entry (or memory batch) → exporter, one attempt
                       delivered → acknowledge (segment deleted when fully sent)
                       retryable → back off (Retry-After honoured, jitter), try again
                       permanent → dead-letter area of the spool, counted

Guarantees and bounds:

* At-least-once: an entry is acknowledged only after the receiver accepted it; after a
  crash or power loss some entries are sent again (``event.id`` de-duplicates).
* Order: one FIFO per process, so a stream's records leave in chain order.
* Memory: at most ``queue_size`` records waiting for the intake, plus at most
  ``queue_size`` records of encoded batches when the spool cannot take them, plus one
  batch in preparation.
* Worst-case loss on ``SIGKILL``: records accepted by ``on_emit`` that had not yet been
  appended to the spool, i.e. at most ``queue_size + max_export_batch_size`` records
  (and, while the spool is unusable, the memory FIFO as well). Everything appended to
  the spool survives and is replayed by the next process that opens the same spool root.
* When memory and spool are both full: ``overflow="block"`` makes the logging call wait
  up to ``block_timeout_ms``; after that, or at once with ``overflow="drop"``, the record
  is counted as ``dropped{reason}`` and written, as already redacted by tier 1, to the
  last-resort target (``stderr`` or a file).

Nothing here raises into the application: ``on_emit``, ``force_flush`` and ``shutdown``
catch everything and count it. Our own diagnostics go to a rate-limited logger that does
not propagate, and the worker threads run with the suppress-instrumentation context key
set; records emitted *from* our threads are ignored, so nothing loops back.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import random
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, set_value
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbLogRecord
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from otel_audit._bounded import EXPORT, bound_value
from otel_audit._processor import is_security_event, wipe_record
from otel_audit.export._codec import (
    count_records,
    decode_log_record,
    decode_request,
    sanitized_record,
)
from otel_audit.export._integrity import IntegrityChain
from otel_audit.export._internal_log import log_failure, logger
from otel_audit.export._metrics import DeliveryStats, NoOpDeliveryMetrics, OTelDeliveryMetrics
from otel_audit.export._otlp import (
    DELIVERED,
    Disposition,
    EncodedLogExporter,
    ExportOutcome,
    exporter_from_env,
)
from otel_audit.export._spool import Spool, SpoolEntry
from otel_audit.export._wire import encode_record, encode_request

if TYPE_CHECKING:
    from otel_audit._settings import AuditSettings

_SPOOL_RETRY_S: Final = 5.0
_STATS_EVERY_S: Final = 5.0
_BACKOFF_BASE_S: Final = 0.25
_HOLD_S: Final = 0.0002  # longest stretch the intake holds the GIL between records
_BACKOFF_MAX_S: Final = 30.0
_DISK_FULL: Final = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


@dataclass(slots=True)
class _Batch:
    payload: bytes
    count: int
    attempts: int = 0


@dataclass(slots=True)
class _Head:
    payload: bytes
    count: int
    entry: SpoolEntry | None = None
    batch: _Batch | None = None

    @property
    def adopted(self) -> bool:
        return self.entry is not None and self.entry.adopted


class LastResort:
    """Writes records that could be neither delivered nor kept, one JSON line each."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._lock = threading.Lock()

    def write(self, records: Sequence[ReadableLogRecord | ReadWriteLogRecord], reason: str) -> None:
        """Best effort; a failing target falls back to stderr, then to nothing."""
        try:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            lines = "".join(
                json.dumps(
                    {"otel_audit_last_resort": reason, "time": stamp, "record": _record_json(r)},
                    ensure_ascii=False,
                    default=str,
                )
                + "\n"
                for r in records
            )
        except Exception:
            return
        with self._lock:
            if self.target != "stderr":
                try:
                    fd = os.open(self.target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                    with os.fdopen(fd, "a", encoding="utf-8", errors="replace") as fh:
                        fh.write(lines)
                except OSError:
                    pass
                else:
                    return
            with contextlib.suppress(Exception):
                sys.stderr.write(lines)
                sys.stderr.flush()


def _record_json(record: ReadableLogRecord | ReadWriteLogRecord) -> dict[str, Any]:
    lr = record.log_record
    return {
        "time_unix_nano": lr.timestamp,
        "severity_number": getattr(lr.severity_number, "value", None),
        "severity_text": lr.severity_text,
        "event_name": lr.event_name,
        "trace_id": f"{lr.trace_id:032x}" if lr.trace_id else "",
        "span_id": f"{lr.span_id:016x}" if lr.span_id else "",
        "body": bound_value(lr.body, EXPORT),
        "attributes": bound_value(dict(lr.attributes or {}), EXPORT),
    }


class _WireEncoded(NamedTuple):
    """A record encoded by :mod:`otel_audit.export._wire`, not yet chained."""

    message: bytes
    canonical: bytes
    origin: tuple[Any, Any]  # SDK resource and scope


class _SdkEncoded(NamedTuple):
    """A record the SDK's encoder took (it needed the export bounds), not yet chained."""

    records: list[PbLogRecord]
    origin: tuple[Any, Any]


class _Early(NamedTuple):
    """
    A record encoded in ``on_emit``, where there is no ``pre_export`` step to wait for.

    Only bytes wait in the queue then, not the record: a ``LogRecord`` with its
    attribute mapping, context and locks is some dozens of objects the garbage collector
    tracks, and in a queue that lingers for ``schedule_delay_millis`` they lived long
    enough to be promoted to the oldest generation, making full collections (tens of
    milliseconds with the GIL held) more frequent. Encoding at once also fixes what is
    exported as the record stood when this processor saw it.
    """

    item: _WireEncoded | _SdkEncoded
    resource: Any
    instrumentation_scope: Any


_Bytes = tuple[bytes, bytes, int]
"""
The usual queued form: a record's wire bytes, canonical bytes and the index of its
(resource, scope) in the processor's table. Holding only atoms, the tuple is untracked
by the garbage collector at its first collection and never promoted.
"""

_Queued = ReadWriteLogRecord | _Early | _Bytes

_MAX_ORIGINS: Final = 256  # beyond this many (resource, scope) pairs, entries are _Early


class _Origins:
    """
    The (resource, scope) pairs that queued :data:`_Bytes` entries name by index.

    One object, replaced whole after a fork, so that an entry is always read against the
    table it was encoded with. Keyed by ``id()``: the list keeps the objects alive, so an
    id cannot be reused while its entry exists.
    """

    __slots__ = ("index", "pairs")

    def __init__(self) -> None:
        self.pairs: list[tuple[Any, Any]] = []
        self.index: dict[tuple[int, int], int] = {}


def _weak_call(method: Callable[[], None]) -> Callable[[], None]:
    ref = weakref.WeakMethod(method)

    def call() -> None:
        target = ref()
        if target is not None:
            target()

    return call


class DurableLogRecordProcessor(LogRecordProcessor):
    """
    Bounded, spooled, at-least-once delivery of security events; see the module docstring.

    Args:
        exporter: an :class:`~otel_audit.export.EncodedLogExporter` (sends the spooled
            bytes as they are and reports why a send failed) or any SDK
            ``LogRecordExporter`` (records are decoded from the spool; ``FAILURE`` is
            treated as retryable because the SDK does not say why).
        spool_dir: root of the on-disk spool (shared by processes of one service).
        spool_max_bytes: bound of everything under ``spool_dir``.
        queue_size: records held in memory before the intake thread takes them.
        overflow: ``block`` (wait up to ``block_timeout_ms``) or ``drop``.
        last_resort: ``stderr`` or a file path for records that are dropped.
        integrity: the chain to apply, or None for none.
        pre_export: tier-2 redaction hook, called on the intake thread with each batch
            before chaining and spooling; it may mutate the records.
        select: which records this path takes (default: ``audit.event.name`` present).
        meter_provider: where the counters go as OTel metrics (they are always kept in
            :attr:`stats` too).
    """

    def __init__(
        self,
        exporter: LogRecordExporter | EncodedLogExporter,
        *,
        spool_dir: Path,
        spool_max_bytes: int,
        queue_size: int,
        overflow: Literal["block", "drop"],
        block_timeout_ms: int,
        last_resort: str,
        integrity: IntegrityChain | None = None,
        pre_export: Callable[[Sequence[ReadableLogRecord]], None] | None = None,
        select: Callable[[ReadWriteLogRecord], bool] | None = None,
        meter_provider: Any = None,
        max_export_batch_size: int = 512,
        schedule_delay_millis: int = 200,
        export_timeout_millis: int | None = None,
        shutdown_timeout_millis: int = 5000,
        fsync_interval_s: float = 1.0,
        segment_bytes: int = 8 * 1024 * 1024,
        _clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _validate(queue_size, overflow, block_timeout_ms, spool_max_bytes, max_export_batch_size)
        self._exporter = exporter
        self._encoded = isinstance(exporter, EncodedLogExporter)
        self._spool_dir = Path(spool_dir)
        self._queue_size = queue_size
        self._overflow = overflow
        self._block_timeout_s = block_timeout_ms / 1000
        self._last_resort = LastResort(last_resort)
        self._integrity = integrity
        self._pre_export = pre_export
        self._select = select
        self._batch_size = max_export_batch_size
        self._linger_s = schedule_delay_millis / 1000
        self._held_since = 0.0
        self._export_timeout_s = (
            None if export_timeout_millis is None else export_timeout_millis / 1000
        )
        self._shutdown_timeout_s = shutdown_timeout_millis / 1000
        self._clock = _clock
        sink = (
            OTelDeliveryMetrics(meter_provider)
            if meter_provider is not None
            else NoOpDeliveryMetrics()
        )
        self.stats = DeliveryStats(sink=sink)
        self._spool = Spool(
            self._spool_dir,
            spool_max_bytes,
            segment_bytes=segment_bytes,
            fsync_interval_s=fsync_interval_s,
            clock=_clock,
        )
        self._shutdown = False
        self._start()
        os.register_at_fork(after_in_child=_weak_call(self._after_fork_in_child))
        atexit.register(_weak_call(self._atexit))

    @classmethod
    def from_settings(
        cls,
        exporter: LogRecordExporter | EncodedLogExporter | None,
        settings: AuditSettings,
        **kw: Any,
    ) -> DurableLogRecordProcessor:
        """
        Build from parsed settings; keyword arguments override.

        ``exporter=None`` builds the OTLP exporter the standard ``OTEL_EXPORTER_OTLP_*``
        variables describe.
        """
        params: dict[str, Any] = {
            "spool_dir": settings.resolved_spool_dir(),
            "spool_max_bytes": settings.spool_max_bytes,
            "queue_size": settings.queue_size,
            "overflow": settings.overflow,
            "block_timeout_ms": settings.block_timeout_ms,
            "last_resort": settings.last_resort,
            "integrity": IntegrityChain.from_settings(settings),
        }
        params.update(kw)
        return cls(exporter if exporter is not None else exporter_from_env(), **params)

    # --- state that a forked child must re-create ---------------------------------------

    def _start(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._queue: deque[_Queued] = deque()
        self._origins = _Origins()
        self._waiters = 0
        self._stopping = False
        self._flush_requested = False
        self._intake_busy = False
        self._flow = threading.Condition(threading.Lock())
        self._mem: deque[_Batch] = deque()
        self._mem_records = 0
        self._pressure: str | None = None
        self._spool_usable = False
        self._spool_retry_at = float("-inf")
        self._next_attempt = float("-inf")
        self._failures = 0
        self._flush_now = False
        self._stop_sender = False
        self._attempts: dict[tuple[Path, int], int] = {}
        self._last_stats = float("-inf")
        self._open_spool()
        self._intake = threading.Thread(
            target=self._intake_loop, name="otel-audit-intake", daemon=True
        )
        self._sender = threading.Thread(
            target=self._sender_loop, name="otel-audit-sender", daemon=True
        )
        self._intake.start()
        self._sender.start()
        self._own_threads = frozenset({self._intake.ident, self._sender.ident})

    def _after_fork_in_child(self) -> None:
        if self._shutdown:
            return
        self.stats.reset_after_fork()
        self._spool.reset_after_fork()
        if self._integrity is not None:
            self._integrity.reset_after_fork()
        self._start()

    def _atexit(self) -> None:
        with contextlib.suppress(Exception):
            self.shutdown()

    def _open_spool(self) -> None:
        try:
            self._spool.open()
        except OSError as exc:
            self._spool_usable = False
            self._spool_retry_at = self._clock() + _SPOOL_RETRY_S
            logger.error(
                "spool directory %s is unusable (%s); security events are held in memory "
                "only (bounded) until it becomes writable",
                self._spool_dir,
                exc.strerror or exc,
            )
        else:
            self._spool_usable = True
            pending = self._spool.pending_records
            if pending:
                logger.warning("replaying %d security events left in the spool", pending)

    # --- application thread ---------------------------------------------------------

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue a security event; cheap, bounded, never raises."""
        try:
            if not self._selected(log_record):
                return
            if threading.get_ident() in self._own_threads:
                return  # our own diagnostics, or an exporter library's; never loop
            if self._pid != os.getpid():
                self._after_fork_in_child()  # backstop when the at-fork hook did not run
            if self._shutdown:
                self._lose([log_record], "shutdown")
                return
            # Without a pre_export step the record is encoded now and only its bytes
            # wait (see _Early). With one, it is queued as it is, like the SDK's batch
            # processor: a copy (3 µs here) would protect only top-level fields.
            record: _Queued = log_record
            origins = self._origins
            if self._pre_export is None:
                early = self._encode_early(log_record, origins)
                if early is None:
                    return  # lost to an encoding failure: counted and kept as last resort
                record = early
            lost = self._enqueue(record, origins)
            if lost is not None:
                self._lose([log_record], lost)
        except Exception:
            with contextlib.suppress(Exception):
                self.stats.add("dropped", 1, "internal_error")
                log_failure("on_emit failed; the event is counted as dropped")

    def _enqueue(self, record: _Queued, origins: _Origins) -> str | None:
        """Append to the queue (waiting for room if the policy says so); why not, or None."""
        with self._lock:
            if self._shutdown:  # shut down while encoding: its leftovers are collected
                return "shutdown"
            queue = self._queue
            if len(queue) >= self._queue_size:
                if self._overflow == "block" and self._block_timeout_s > 0:
                    self._wait_for_room()
                if len(queue) >= self._queue_size:
                    return self._pressure or "queue_full"
            if self._origins is not origins and not isinstance(
                record, (_Early, ReadWriteLogRecord)
            ):
                record = _early_of(record, origins)  # encoded against a replaced table (fork)
            queue.append(record)
            n = len(queue)
            if n in (1, self._batch_size):
                self._not_empty.notify()
        return None

    def _selected(self, record: ReadWriteLogRecord) -> bool:
        if self._select is None:
            return is_security_event(record)
        try:
            return bool(self._select(record))
        except Exception:
            return True  # when in doubt, treat it as a security event

    def _wait_for_room(self) -> None:
        deadline = time.monotonic() + self._block_timeout_s
        self._waiters += 1
        try:
            while len(self._queue) >= self._queue_size and not self._shutdown:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._not_full.wait(remaining)
        finally:
            self._waiters -= 1

    def _lose(self, records: Sequence[ReadableLogRecord | ReadWriteLogRecord], reason: str) -> None:
        self.stats.add("dropped", len(records), reason)
        logger.error("security events dropped (reason=%s); see the last-resort output", reason)
        self._last_resort.write(records, reason)

    # --- intake thread ----------------------------------------------------------------

    def _intake_loop(self) -> None:
        attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))  # noqa: FBT003  # the SDK's API
        while True:
            try:
                take, stopping = self._take()
                if take:
                    self._process(take)
                    with self._lock:
                        self._intake_busy = False
                elif stopping:
                    break
            except Exception:
                with self._lock:
                    self._intake_busy = False
                log_failure("intake failed; continuing")
        self._final_checkpoint()

    def _take(self) -> tuple[list[_Queued], bool]:
        with self._lock:
            queue = self._queue
            while not queue and not self._stopping:
                self._flush_requested = False
                self._not_empty.wait(1.0)
            if (
                queue
                and len(queue) < self._batch_size
                and not self._stopping
                and not self._flush_requested
            ):
                deadline = time.monotonic() + self._linger_s
                while (
                    len(queue) < self._batch_size
                    and not self._stopping
                    and not self._flush_requested
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._not_empty.wait(remaining)
            n = min(len(queue), self._batch_size)
            take = [queue.popleft() for _ in range(n)]
            if take:
                self._intake_busy = True
            if self._waiters:
                self._not_full.notify_all()
            return take, self._stopping

    def _process(self, take: Sequence[_Queued]) -> None:
        self._held_since = time.perf_counter()
        if self._pre_export is None:
            try:
                early = [self._early_view(r) for r in take]
                payload, count = encode_request(early, _early_item, self._finish_one)
            except Exception:  # a bug: nothing here is expected to fail
                log_failure("encoding a batch failed")
                self._lose(self._decoded(take), "encode_error")
                return
            if count:
                self._put(payload, count)
            return
        readable = [
            ReadableLogRecord(
                r.log_record,
                r.resource if r.resource is not None else Resource.get_empty(),
                r.instrumentation_scope,
                r.limits,
            )
            for r in take
            if isinstance(r, ReadWriteLogRecord)  # never mixed: pre_export is fixed at start
        ]
        if self._pre_export is not None:
            try:
                self._pre_export(readable)
            except Exception:
                # Fail closed: what tier 2 could not inspect is replaced, not sent as is.
                for record in readable:
                    wipe_record(record.log_record)
                self.stats.add("pre_export_failed", len(readable))
                log_failure(
                    "pre_export (tier-2 redaction) failed; the batch's values were replaced"
                )
        try:
            payload, count = encode_request(readable, self._encode_one, self._finish_one)
        except Exception:  # a bug: per-record failures are handled inside encode_one
            log_failure("encoding a batch failed")
            self._lose(readable, "encode_error")  # counted and kept in the last resort
            return
        if count:
            self._put(payload, count)

    def _let_others_run(self) -> None:
        """
        Give up the GIL between records once this thread has held it for a while.

        A batch is a few milliseconds of pure Python; left alone, the interpreter takes
        the GIL back only after its switch interval (5 ms), and every request thread that
        wanted it meanwhile waits. On a threaded server at half load that doubled the
        median latency of requests that emit an event (bench_http, open loop); yielding
        every ~0.2 ms costs a system call per few records on this thread instead.

        Not while a burst is backing up (the queue a quarter full): then the application
        threads are producing faster than this one drains, and every yield would hand
        them another switch interval, so the intake would fall further behind.
        """
        if len(self._queue) > self._queue_size >> 2:
            return
        now = time.perf_counter()
        if now - self._held_since >= _HOLD_S:
            time.sleep(0)
            self._held_since = time.perf_counter()

    def _encode_early(
        self, record: ReadWriteLogRecord, origins: _Origins
    ) -> _Bytes | _Early | None:
        """``on_emit``'s encoding (no pre_export step); None if the record was lost."""
        resource = record.resource if record.resource is not None else Resource.get_empty()
        scope = record.instrumentation_scope
        try:
            message, canonical = encode_record(record)
        except Exception:  # the slow path wants a ReadableLogRecord, as the intake's
            readable = ReadableLogRecord(record.log_record, resource, scope, record.limits)
            item = self._encode(readable)
            if item is None:
                return None
            return _Early(item, resource, scope)
        index = origins.index.get((id(resource), id(scope)))
        if index is None:
            index = self._add_origin(resource, scope, origins)
            if index is None:
                return _Early(_WireEncoded(message, canonical, (resource, scope)), resource, scope)
        return (message, canonical, index)

    def _add_origin(self, resource: Any, scope: Any, origins: _Origins) -> int | None:
        with self._lock:
            key = (id(resource), id(scope))
            index = origins.index.get(key)
            if index is None and len(origins.pairs) < _MAX_ORIGINS:
                index = len(origins.pairs)
                origins.pairs.append((resource, scope))  # before the index publishes it
                origins.index[key] = index
            return index

    def _early_view(self, entry: _Queued) -> _Early:
        """A queued entry in the shape encode_request groups (made only while encoding)."""
        if isinstance(entry, _Early):
            return entry
        if isinstance(entry, ReadWriteLogRecord):  # pre_export mode only: never here
            msg = "a record was queued without being encoded"
            raise TypeError(msg)
        return _early_of(entry, self._origins)

    def _encode_one(self, record: ReadableLogRecord) -> _WireEncoded | _SdkEncoded | None:
        """The intake's encoding of a record that waited for the pre_export step."""
        self._let_others_run()
        return self._encode(record)

    def _encode(self, record: ReadableLogRecord) -> _WireEncoded | _SdkEncoded | None:
        """Wire bytes and canonical form, or (if a value needs bounding) an SDK-encoded record."""
        try:
            message, canonical = encode_record(record)
        except Exception:  # a value that needs bounding first (or an odd type)
            try:
                clean = sanitized_record(record)
            except Exception:  # e.g. an attribute mapping that raises when read
                self._lose([record], "encode_error")
                return None
            if clean is not None:
                self.stats.add("sanitized", 1)
                record = clean
            try:
                request = encode_logs([record])
            except Exception:
                self._lose([record], "encode_error")
                return None
            records = [
                pb for rl in request.resource_logs for sl in rl.scope_logs for pb in sl.log_records
            ]
            return _SdkEncoded(records, (record.resource, record.instrumentation_scope))
        return _WireEncoded(message, canonical, (record.resource, record.instrumentation_scope))

    def _finish_one(self, item: _WireEncoded | _SdkEncoded) -> list[bytes]:
        """Chain an encoded record in request order; the messages it becomes."""
        self._let_others_run()
        chain = self._integrity
        if isinstance(item, _SdkEncoded):
            out: list[bytes] = []
            for pb in item.records:
                if chain is not None:
                    try:
                        out.extend(chain.seal_record(pb, item.origin))
                        continue
                    except Exception:
                        self.stats.add("integrity_failed", 1)
                        log_failure("integrity chain failed; a record is sent unchained")
                out.append(pb.SerializeToString())
            return out
        message, canonical, origin = item
        if chain is None:
            return [message]
        try:
            return chain.seal_encoded(message, canonical, origin)
        except Exception:
            self.stats.add("integrity_failed", 1)
            log_failure("integrity chain failed; a record is sent unchained")
            return [message]

    def _final_checkpoint(self) -> None:
        if self._integrity is None:
            return
        try:
            request = self._integrity.final_checkpoint()
            if request is not None:
                self._put(request.SerializeToString(), count_records(request))
        except Exception:
            log_failure("could not write the final integrity checkpoint")

    def _usable_spool(self) -> Spool | None:
        if self._spool_usable:
            return self._spool
        if self._clock() >= self._spool_retry_at:
            self._spool_retry_at = self._clock() + _SPOOL_RETRY_S
            if self._spool.directory is None:
                self._open_spool()
            else:
                self._spool_usable = True
            return self._spool if self._spool_usable else None
        return None

    def _spool_failed(self, exc: OSError) -> str:
        self._spool_usable = False
        self._spool_retry_at = self._clock() + _SPOOL_RETRY_S
        reason = "spill_full" if exc.errno in _DISK_FULL else "spool_unavailable"
        logger.error(
            "spool write failed in %s (%s); holding security events in memory (bounded)",
            self._spool_dir,
            exc.strerror or exc,
        )
        return reason

    def _put(self, payload: bytes, count: int) -> None:
        """Hand one encoded batch to the sender: spool first, bounded memory second."""
        with self._flow:
            while True:
                reason = self._pressure or "spill_full"
                if not self._mem:
                    spool = self._usable_spool()
                    if spool is None:
                        reason = "spool_unavailable"
                    else:
                        try:
                            if spool.append(payload, count):
                                self._pressure = None
                                self._flow.notify_all()
                                return
                            reason = "spill_full"
                        except OSError as exc:
                            reason = self._spool_failed(exc)
                if not self._mem or self._mem_records + count <= self._queue_size:
                    self._mem.append(_Batch(payload, count))
                    self._mem_records += count
                    self._pressure = reason if self._mem_records >= self._queue_size else None
                    self._flow.notify_all()
                    return
                self._pressure = reason
                if self._stopping:
                    self._lose(decode_request(payload), reason)
                    return
                self._flow.wait(0.2)

    # --- sender thread ----------------------------------------------------------------

    def _sender_loop(self) -> None:
        attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))  # noqa: FBT003  # the SDK's API
        while True:
            try:
                if not self._wait_for_work():
                    return
                head = self._head()
                if head is None:
                    with self._flow:
                        self._flow.wait(0.05)
                    continue
                outcome = self._send(head)
                self._settle(head, outcome)
            except Exception:
                log_failure("sender failed; retrying")
                with self._flow:
                    self._next_attempt = self._clock() + _BACKOFF_BASE_S
                    self._flow.wait(_BACKOFF_BASE_S)

    def _has_work(self) -> bool:
        return bool(self._mem) or (self._spool_usable and self._spool.pending_entries > 0)

    def _wait_for_work(self) -> bool:
        """Block until there is something to send and backoff allows it; False to stop."""
        with self._flow:
            while True:
                if self._stop_sender:
                    return False
                self._periodic()
                now = self._clock()
                if self._has_work():
                    if now >= self._next_attempt or self._flush_now:
                        self._flush_now = False
                        return True
                    self._flow.wait(min(self._next_attempt - now, 1.0))
                else:
                    self._flow.wait(1.0)

    def _periodic(self) -> None:
        now = self._clock()
        if not self._spool_usable and now >= self._spool_retry_at:
            self._usable_spool()
        if now - self._last_stats >= _STATS_EVERY_S:
            self._last_stats = now
            self._write_stats()

    def _write_stats(self) -> None:
        if not self._spool_usable:
            return
        with contextlib.suppress(OSError):
            self._spool.write_stats(self.status())

    def _head(self) -> _Head | None:
        if self._spool_usable:
            try:
                result = self._spool.peek()
            except OSError as exc:
                with self._flow:
                    self._spool_failed(exc)
            else:
                if result.corrupt_records:
                    self.stats.add("dropped", result.corrupt_records, "spool_corrupt")
                    logger.error("skipped corrupt spool data (%d records)", result.corrupt_records)
                if result.entry is not None:
                    e = result.entry
                    return _Head(e.payload, e.count, entry=e)
        with self._flow:
            if self._mem:
                batch = self._mem[0]
                return _Head(batch.payload, batch.count, batch=batch)
        return None

    def _send(self, head: _Head) -> ExportOutcome:
        try:
            if self._encoded:
                exporter: Any = self._exporter
                outcome: ExportOutcome = exporter.export_encoded(
                    head.payload, self._export_timeout_s
                )
                return outcome
            records = decode_request(head.payload)
            result = self._exporter.export(records)  # type: ignore[union-attr]  # narrowed by _encoded
        except Exception as exc:
            return ExportOutcome(Disposition.RETRY, detail=f"exporter raised {type(exc).__name__}")
        if result is LogRecordExportResult.SUCCESS:
            return DELIVERED
        return ExportOutcome(Disposition.RETRY, detail="exporter returned FAILURE")

    def _attempts_of(self, head: _Head) -> int:
        if head.batch is not None:
            return head.batch.attempts
        assert head.entry is not None  # noqa: S101  # a head is a batch or an entry
        return self._attempts.get((head.entry.segment, head.entry.offset), 0)

    def _settle(self, head: _Head, outcome: ExportOutcome) -> None:
        attempts = self._attempts_of(head)
        if outcome.disposition is Disposition.RETRY:
            if attempts == 0:
                self.stats.add("spilled", head.count)
            self.stats.add("retried", head.count)
            if head.batch is not None:
                head.batch.attempts += 1
            elif head.entry is not None:
                self._attempts[(head.entry.segment, head.entry.offset)] = attempts + 1
            with self._flow:
                self._failures += 1
                delay = _BACKOFF_BASE_S * 2 ** min(self._failures - 1, 10)
                delay = min(delay, _BACKOFF_MAX_S) * random.uniform(0.5, 1.5)
                if outcome.retry_after_s is not None:
                    delay = max(outcome.retry_after_s, 0.01)
                self._next_attempt = self._clock() + delay
            logger.warning("export failed (%s); retrying from the spool", outcome.detail)
            return
        if outcome.disposition is Disposition.PERMANENT:
            self._dead_letter(head, head.count, f"refused: {outcome.detail}")
            self.stats.add("dead_lettered", head.count)
            logger.error(
                "receiver refused a batch for good (%s); kept as dead letter", outcome.detail
            )
        else:
            rejected = min(outcome.rejected, head.count)
            if rejected:
                # OTLP forbids retrying a partial success; keep the batch for an operator.
                self._dead_letter(
                    head, rejected, f"partial success: {rejected} rejected: {outcome.detail}"
                )
                self.stats.add("rejected", rejected)
                self.stats.add("dead_lettered", rejected)
            self.stats.add("exported", head.count - rejected)
            if attempts or head.adopted:
                self.stats.add("replayed", head.count - rejected)
        self._ack(head)
        with self._flow:
            self._failures = 0
            self._next_attempt = float("-inf")
            self._flow.notify_all()

    def _ack(self, head: _Head) -> None:
        if head.entry is not None:
            self._attempts.pop((head.entry.segment, head.entry.offset), None)
            try:
                self._spool.ack(head.entry)
            except OSError as exc:
                with self._flow:
                    self._spool_failed(exc)
        elif head.batch is not None:
            with self._flow:
                if self._mem and self._mem[0] is head.batch:
                    self._mem.popleft()
                    self._mem_records -= head.batch.count
                    if self._mem_records < self._queue_size:
                        self._pressure = None

    def _dead_letter(self, head: _Head, count: int, reason: str) -> None:
        """Keep ``head`` in the dead-letter area; acknowledging it is the caller's job."""
        try:
            source = str(head.entry.segment) if head.entry is not None else "memory"
            self._spool.dead_letter(head.payload, count, reason, source)
        except OSError:
            self._lose(decode_request(head.payload), "dead_letter_unavailable")

    # --- lifecycle --------------------------------------------------------------------

    def _drained(self) -> bool:
        with self._lock:
            if self._queue or self._intake_busy:
                return False
        with self._flow:
            return not self._mem and not (self._spool_usable and self._spool.pending_entries > 0)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Deliver everything queued; False if the deadline passed (it stays spooled)."""
        try:
            if self._shutdown:
                return False
            deadline = time.monotonic() + timeout_millis / 1000
            with self._lock:
                self._flush_requested = True
                self._not_empty.notify_all()
            with self._flow:
                self._flush_now = True
                self._flow.notify_all()
            while not self._drained():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with self._flow:
                    self._flow.wait(min(remaining, 0.05))
            done = self._drained()
            with contextlib.suppress(OSError):
                self._spool.flush()
        except Exception:
            log_failure("force_flush failed")
            return False
        return done

    def shutdown(self) -> None:
        """Flush within ``shutdown_timeout_millis``; what remains stays in the spool."""
        if self._shutdown:
            return
        try:
            self._shutdown_inner()
        except Exception:
            log_failure("shutdown failed")

    def _shutdown_inner(self) -> None:
        deadline = time.monotonic() + self._shutdown_timeout_s
        with self._lock:
            self._stopping = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
        self._intake.join(max(deadline - time.monotonic(), 0.1))
        self._shutdown = True
        with self._flow:
            self._flush_now = True
            self._flow.notify_all()
        while not self._drained() and time.monotonic() < deadline:
            with self._flow:
                self._flow.wait(0.05)
        with self._flow:
            self._stop_sender = True
            self._flow.notify_all()
        self._sender.join(max(deadline - time.monotonic(), 0.1))
        with self._flow:
            leftovers = list(self._mem)
            self._mem.clear()
            self._mem_records = 0
        for batch in leftovers:
            kept = False
            with contextlib.suppress(OSError):
                kept = self._spool_usable and self._spool.append(batch.payload, batch.count)
            if not kept:
                self._lose(decode_request(batch.payload), "shutdown")
        with self._lock:
            stranded = list(self._queue)
            self._queue.clear()
        if stranded:
            self._lose(self._decoded(stranded), "shutdown")
        self._write_stats()
        self._spool.close()
        with contextlib.suppress(Exception):
            self._exporter.shutdown()

    def _decoded(self, queued: Sequence[_Queued]) -> list[ReadableLogRecord | ReadWriteLogRecord]:
        """
        Queued entries as records again, for the last resort (encoded ones are decoded).

        Entry by entry: one that cannot be decoded is counted as dropped
        (``encode_error``) and the others are still returned.
        """
        records: list[ReadableLogRecord | ReadWriteLogRecord] = []
        for entry in queued:
            if isinstance(entry, ReadWriteLogRecord):
                records.append(entry)
                continue
            try:
                early = self._early_view(entry)
                item = early.item
                messages = (
                    item.records
                    if isinstance(item, _SdkEncoded)
                    else [PbLogRecord.FromString(item.message)]
                )
                records.extend(
                    decode_log_record(pb, early.resource, early.instrumentation_scope)
                    for pb in messages
                )
            except Exception:
                self.stats.add("dropped", 1, "encode_error")
        return records

    def status(self) -> dict[str, Any]:
        """Counters plus what is waiting where; what ``otel-audit spool stats`` shows."""
        with self._lock:
            queued = len(self._queue)
        return {
            "pid": self._pid,
            "time": time.time(),
            "stream": self._integrity.stream if self._integrity is not None else None,
            "queued": queued,
            "memory_batches_records": self._mem_records,
            "spool_pending_records": self._spool.pending_records,
            "spool_bytes": self._spool.usage_bytes,
            "spool_usable": self._spool_usable,
            "counters": self.stats.snapshot(),
        }


def _early_of(entry: _Bytes, origins: _Origins) -> _Early:
    message, canonical, index = entry
    origin = origins.pairs[index]
    return _Early(_WireEncoded(message, canonical, origin), *origin)


def _early_item(early: _Early) -> _WireEncoded | _SdkEncoded:
    return early.item


def _validate(
    queue_size: int, overflow: str, block_timeout_ms: int, spool_max_bytes: int, batch: int
) -> None:
    if queue_size < 1:
        msg = f"queue_size must be >= 1, got {queue_size}"
        raise ValueError(msg)
    if overflow not in ("block", "drop"):
        msg = f"overflow must be 'block' or 'drop', got {overflow!r}"
        raise ValueError(msg)
    if block_timeout_ms < 0:
        msg = f"block_timeout_ms must be >= 0, got {block_timeout_ms}"
        raise ValueError(msg)
    if spool_max_bytes < 1:
        msg = f"spool_max_bytes must be >= 1, got {spool_max_bytes}"
        raise ValueError(msg)
    if batch < 1:
        msg = f"max_export_batch_size must be >= 1, got {batch}"
        raise ValueError(msg)
