"""
Verify integrity chains in what a SIEM or the collector's JSON archive stored.

Input: OTLP JSON, one ``ExportLogsServiceRequest`` per line, as the collector's ``file``
exporter writes it (``resourceLogs``/``scopeLogs``/``logRecords``, ``traceId``/``spanId``
in hex). Each record is parsed back into the OTLP protobuf model and the canonical form of
:mod:`otel_audit.export._integrity` is rebuilt, so the verifier and the signer share one
definition.

Findings (``error`` makes the exit code non-zero):

* ``modified`` — the HMAC does not match (with a key), or a record's recomputed link
  differs from the ``prev`` the next record carries;
* ``inserted`` — two different records claim one sequence number, or a security event
  carries no chain at all (``unchained``);
* ``deleted`` — a sequence gap, a stream that does not start at 1, or a checkpoint that
  covers records that are missing or different;
* ``reordered`` — a record appears after a higher sequence number of its stream (a
  ``warning`` with ``allow_reorder``, for collectors whose exporter queues send
  batches concurrently);
* ``unsigned`` — with a key configured, a record without an HMAC (anyone can forge it);
* ``unknown_key`` — signed with a key id other than the configured one (warning);
* ``duplicate`` — the same record twice (info: at-least-once delivery does that);
* ``open_tail`` — the stream does not end in a shutdown checkpoint, so truncation of its
  last records cannot be ruled out (warning: true of every live process).

What this protects against, and what not (compare AWS CloudTrail log file integrity
validation, which signs an hourly digest file with SHA-256/RSA and chains the digests):

* With a key that the storage side does not have, any edit, insertion, deletion or
  re-ordering of chained records *inside* the covered range is detected, as CloudTrail
  detects a modified or deleted log file.
* Deleting the newest records of a live stream is detected only up to the last
  checkpoint (CloudTrail likewise cannot tell about events after the last digest). A
  stream that ended with a shutdown checkpoint is provably complete.
* Deleting a *whole* stream is not detected by the chain alone (CloudTrail has the same
  gap for a deleted digest chain start); watch for expected streams/hosts separately.
* Without a key the chain is a checksum: it finds accidental damage and careless edits,
  but anyone who can rewrite the file can recompute it. CloudTrail's RSA signatures
  allow verification without the signing secret; our HMAC needs the verifier to hold
  the key, so keep the verifying key away from the log storage's administrators.
* Nothing here proves that the application told the truth, or protects records before
  they were chained (the application process itself is trusted), nor the resource,
  scope, ``observedTimeUnixNano``, ``severityText`` or ``eventName`` fields.
"""

from __future__ import annotations

import base64
import contextlib
import hmac as hmac_mod
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbLogRecord

from otel_audit import semconv
from otel_audit.export._integrity import (
    ALG,
    ALG_DIGEST,
    ALG_HMAC,
    CHECKPOINT_EVENT,
    CP_COUNT,
    CP_FIRST,
    CP_HEAD,
    CP_LAST,
    CP_REASON,
    GENESIS,
    HMAC,
    KEY_ID,
    PREV,
    SEQ,
    STREAM,
    canonical_bytes,
    chain_message,
    link_of,
    sign,
)

Severity = Literal["error", "warning", "info"]
_MAX_LISTED: Final = 20


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem (or note) about one stream."""

    kind: str
    severity: Severity
    stream: str
    seq: int | None
    where: str
    message: str

    def __str__(self) -> str:
        seq = f" seq {self.seq}" if self.seq is not None else ""
        head = f"{self.severity.upper()} {self.kind}: stream {self.stream}{seq}"
        return f"{head} at {self.where}: {self.message}"


@dataclass
class VerifyReport:
    """Everything ``verify_files`` found, and totals."""

    records: int = 0
    chained: int = 0
    streams: int = 0
    findings: list[Finding] = field(default_factory=list)
    hmac_checked: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing error-level was found."""
        return not any(f.severity == "error" for f in self.findings)

    def add(self, *args: Any) -> None:
        """Append a :class:`Finding` built from positional fields."""
        self.findings.append(Finding(*args))


@dataclass(slots=True)
class _Rec:
    where: str
    order: int
    stream: str
    seq: int
    prev: str
    alg: str
    key_id: str
    mac: str | None
    link: str
    message: bytes
    attrs: dict[str, Any]


def _hex_to_b64(obj: dict[str, Any]) -> None:
    for rl in obj.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            for lr in sl.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    value = lr.get(key)
                    if isinstance(value, str) and value:
                        # Already base64 (plain protobuf JSON mapping)? Then leave it.
                        with contextlib.suppress(ValueError):
                            lr[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


def iter_file_records(paths: Iterable[Path]) -> Iterator[tuple[str, PbLogRecord | None, str]]:
    """``(where, record or None, parse error)`` for every log record in the files."""
    for path in paths:
        with Path(path).open(encoding="utf-8", errors="surrogateescape") as fh:
            for lineno, line in enumerate(fh, 1):
                text = line.strip()
                if not text:
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = json.loads(text)
                    _hex_to_b64(obj)
                    request = json_format.ParseDict(
                        obj, ExportLogsServiceRequest(), ignore_unknown_fields=True
                    )
                except Exception as exc:
                    yield where, None, f"{type(exc).__name__}: {exc}"[:200]
                    continue
                index = 0
                for rl in request.resource_logs:
                    for sl in rl.scope_logs:
                        for record in sl.log_records:
                            yield f"{where}#{index}", record, ""
                            index += 1


def _attrs(record: PbLogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in record.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def _to_rec(where: str, order: int, record: PbLogRecord, attrs: dict[str, Any]) -> _Rec | None:
    try:
        stream = str(attrs[STREAM])
        seq = int(attrs[SEQ])
        prev = str(attrs[PREV])
    except (KeyError, TypeError, ValueError):
        return None
    alg = str(attrs.get(ALG, ALG_DIGEST))
    key_id = str(attrs.get(KEY_ID, "")) if alg == ALG_HMAC else ""
    message = chain_message(alg, key_id, stream, seq, prev, canonical_bytes(record))
    mac = attrs.get(HMAC)
    return _Rec(
        where, order, stream, seq, prev, alg, key_id, None if mac is None else str(mac),
        link_of(message), message, attrs,
    )  # fmt: skip


def verify_files(
    paths: Iterable[Path],
    *,
    key: bytes | None = None,
    key_id: str | None = None,
    allow_reorder: bool = False,
) -> VerifyReport:
    """Rebuild every stream in ``paths`` and report what does not add up."""
    report = VerifyReport(hmac_checked=key is not None)
    streams: dict[str, list[_Rec]] = {}
    for order, (where, record, error) in enumerate(iter_file_records(paths)):
        if record is None:
            report.add("unreadable", "error", "-", None, where, error)
            continue
        report.records += 1
        attrs = _attrs(record)
        rec = _to_rec(where, order, record, attrs)
        if rec is None:
            if semconv.AUDIT_EVENT_NAME in attrs:
                report.add(
                    "inserted", "error", "-", None, where,
                    f"security event {attrs.get(semconv.EVENT_ID, '?')} carries no integrity chain",
                )  # fmt: skip
            continue
        report.chained += 1
        streams.setdefault(rec.stream, []).append(rec)
    report.streams = len(streams)
    for stream, recs in streams.items():
        _verify_stream(report, stream, recs, key, key_id, allow_reorder=allow_reorder)
    return report


def _check_mac(report: VerifyReport, rec: _Rec, key: bytes | None, key_id: str | None) -> bool:
    """False when the record is known bad (HMAC mismatch)."""
    if key is None:
        return True
    if rec.alg != ALG_HMAC or rec.mac is None:
        report.add(
            "unsigned", "error", rec.stream, rec.seq, rec.where, "no HMAC: cannot be authenticated"
        )
        return False
    if key_id is not None and rec.key_id != key_id:
        report.add(
            "unknown_key", "warning", rec.stream, rec.seq, rec.where,
            f"signed with key id {rec.key_id!r}, verifying with {key_id!r}: not checked",
        )  # fmt: skip
        return True
    if not hmac_mod.compare_digest(sign(key, rec.message), rec.mac):
        report.add(
            "modified", "error", rec.stream, rec.seq, rec.where, "HMAC does not match the content"
        )
        return False
    return True


def _verify_stream(  # noqa: C901  # one pass per property, kept together
    report: VerifyReport,
    stream: str,
    recs: list[_Rec],
    key: bytes | None,
    key_id: str | None,
    *,
    allow_reorder: bool,
) -> None:
    by_seq: dict[int, _Rec] = {}
    bad: set[int] = set()
    highest = 0
    for rec in recs:
        good = _check_mac(report, rec, key, key_id)
        seen = by_seq.get(rec.seq)
        if seen is not None:
            if seen.link == rec.link and seen.mac == rec.mac:
                report.add(
                    "duplicate", "info", stream, rec.seq, rec.where, f"same record as {seen.where}"
                )
                continue
            report.add(
                "inserted", "error", stream, rec.seq, rec.where,
                f"a different record with the same sequence number is at {seen.where}",
            )  # fmt: skip
            if not good:
                continue  # keep the authentic one
        if rec.seq < highest:
            report.add(
                "reordered", "warning" if allow_reorder else "error", stream, rec.seq, rec.where,
                f"appears after seq {highest}",
            )  # fmt: skip
        highest = max(highest, rec.seq)
        by_seq[rec.seq] = rec
        if not good:
            bad.add(rec.seq)
    seqs = sorted(by_seq)
    first = seqs[0]
    if first != 1:
        report.add(
            "deleted", "error", stream, first, by_seq[first].where,
            f"stream starts at seq {first}: seq 1..{first - 1} missing",
        )  # fmt: skip
    elif by_seq[1].prev != GENESIS:
        report.add(
            "modified", "error", stream, 1, by_seq[1].where, "seq 1 does not start from genesis"
        )
    gaps = 0
    for before, after in itertools.pairwise(seqs):
        rec = by_seq[after]
        if after != before + 1:
            gaps += 1
            if gaps <= _MAX_LISTED:
                report.add(
                    "deleted", "error", stream, before + 1, rec.where,
                    f"seq {before + 1}..{after - 1} missing",
                )  # fmt: skip
        elif rec.prev != by_seq[before].link and before not in bad:
            report.add(
                "modified", "error", stream, before, by_seq[before].where,
                f"its digest does not match 'prev' of seq {after} ({rec.where})",
            )  # fmt: skip
    _verify_checkpoints(report, stream, by_seq)


def _verify_checkpoints(report: VerifyReport, stream: str, by_seq: dict[int, _Rec]) -> None:
    last_seq = max(by_seq)
    closed = False
    for seq, rec in sorted(by_seq.items()):
        if rec.attrs.get(semconv.AUDIT_EVENT_NAME) != CHECKPOINT_EVENT:
            continue
        try:
            first, last, count = (
                int(rec.attrs[CP_FIRST]),
                int(rec.attrs[CP_LAST]),
                int(rec.attrs[CP_COUNT]),
            )
            head = str(rec.attrs[CP_HEAD])
        except (KeyError, TypeError, ValueError):
            report.add("modified", "error", stream, seq, rec.where, "checkpoint fields missing")
            continue
        if count != last - first + 1 or last != seq - 1:
            report.add(
                "modified", "error", stream, seq, rec.where, "checkpoint range is inconsistent"
            )
        covered = by_seq.get(last)
        if last >= 1 and (covered is None or covered.link != head):
            report.add(
                "deleted" if covered is None else "modified", "error", stream, last, rec.where,
                "checkpoint head does not match the covered record",
            )  # fmt: skip
        if rec.attrs.get(CP_REASON) == "shutdown" and seq == last_seq:
            closed = True
    if not closed:
        tail = by_seq[last_seq]
        report.add(
            "open_tail", "warning", stream, last_seq, tail.where,
            "no shutdown checkpoint after the last record: truncation of the newest records "
            "cannot be ruled out (normal for a process that is still running)",
        )  # fmt: skip
